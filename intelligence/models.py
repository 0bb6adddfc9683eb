"""Results of incident analysis (``intelligence_insights`` in the design)."""

from django.db import models

from incidents.models import Incident


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
