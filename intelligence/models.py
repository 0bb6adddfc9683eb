"""Results of incident analysis (``intelligence_insights`` in the design): one row per run."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from incidents.models import SLO, Incident


class Insight(models.Model):
    """One analysis run of an incident: its progress, then its summary, confidence and the
    ranked evidence behind it (each finding with a pointer to the query that produced it)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETE = "complete"
        PARTIAL = "partial"  # a step failed or its source was down; the gaps say which
        FAILED = "failed"
        SUPERSEDED = "superseded"  # a newer request for the same incident replaced it

    FINISHED = (Status.COMPLETE, Status.PARTIAL, Status.FAILED, Status.SUPERSEDED)

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="insights")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(
        max_length=30, blank=True, help_text="why it ran: opened, alerts_joined, scheduled, manual"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.TextField(blank=True)
    confidence_score = models.FloatField(default=0.0)
    evidence = models.JSONField(
        default=dict,
        blank=True,
        help_text="ranked findings with pointers to metrics, logs, traces and changes; impact",
    )
    hypotheses = models.JSONField(default=list, blank=True)
    context = models.JSONField(
        default=dict, blank=True, help_text="what was analysed: services, windows, triggers"
    )
    steps = models.JSONField(
        default=list, blank=True, help_text="per step: status, timings, findings, calls, gaps"
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="percent of steps finished")
    gaps = models.JSONField(
        default=list, blank=True, help_text="what could not be looked at, and why"
    )
    calls = models.PositiveIntegerField(default=0, help_text="data-source calls made")
    call_seconds = models.FloatField(default=0.0, help_text="time spent in data-source calls")
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    first_finding_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "intelligence_insights"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident"],
                condition=Q(status="running"),
                name="one_running_analysis_per_incident",
            )
        ]
        indexes = [models.Index(fields=["incident", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.incident.reference} analysis #{self.pk} ({self.status})"

    @property
    def findings(self) -> list[dict]:
        return list((self.evidence or {}).get("findings") or [])


class HypothesisVerdict(models.Model):
    """A responder's verdict on a root-cause hypothesis: confirmed or rejected. Every
    verdict is kept (a later one does not erase an earlier one) to evaluate and tune RCA."""

    class Verdict(models.TextChoices):
        CONFIRMED = "confirmed"
        REJECTED = "rejected"

    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, related_name="verdicts")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="rca_verdicts")
    service = models.CharField(max_length=100)
    kind = models.CharField(max_length=40)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    note = models.TextField(blank=True)
    rank = models.PositiveSmallIntegerField(null=True, blank=True, help_text="its rank then")
    confidence = models.FloatField(null=True, blank=True, help_text="its confidence then")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "intelligence_hypothesis_verdicts"
        ordering = ["-decided_at", "-id"]

    def __str__(self) -> str:
        return f"{self.incident.reference}: {self.service} / {self.kind} {self.verdict}"


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
