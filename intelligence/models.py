"""Results of incident analysis (``intelligence_insights`` in the design)."""

from django.db import models

from incidents.models import SLO, Incident


class Insight(models.Model):
    """One analysis of an incident: a summary, its confidence and the evidence behind it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETE = "complete"
        PARTIAL = "partial"  # some data sources were unavailable; the gaps are in evidence
        FAILED = "failed"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="insights")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    summary = models.TextField(blank=True)
    confidence_score = models.FloatField(default=0.0)
    evidence = models.JSONField(
        default=dict, blank=True, help_text="findings with pointers to metrics, logs and traces"
    )
    hypotheses = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "intelligence_insights"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.incident.reference} insight ({self.status}, {self.confidence_score:.2f})"


class SLOStatus(models.Model):
    """The last evaluation of an SLO by the beat job: SLI, budget left, burn per window.

    Stored rather than computed per request so the API answers without asking Prometheus
    (fast, and still there, with ``error`` said, when Prometheus is down).
    """

    slo = models.OneToOneField(
        SLO, on_delete=models.CASCADE, primary_key=True, related_name="burn_status"
    )
    evaluated_at = models.DateTimeField(null=True, blank=True)
    sli = models.FloatField(null=True, blank=True, help_text="good/total over the SLO window")
    window_error_ratio = models.FloatField(null=True, blank=True)
    budget_remaining = models.FloatField(
        null=True, blank=True, help_text="1 untouched, 0 spent, negative overspent"
    )
    windows = models.JSONField(
        default=dict, blank=True, help_text="per window: good, total, error_ratio, burn_rate"
    )
    firing = models.JSONField(default=list, blank=True, help_text="window pairs burning now")
    severity = models.CharField(max_length=10, blank=True, help_text="page, ticket or empty")
    queries = models.JSONField(default=dict, blank=True, help_text="window -> [good, total]")
    error = models.TextField(blank=True, help_text="why the last evaluation failed, if it did")
    error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "intelligence_slo_status"
        verbose_name = "SLO status"
        verbose_name_plural = "SLO statuses"

    def __str__(self) -> str:
        return f"{self.slo}: {self.severity or 'ok'}"
