"""Runbooks and the actions taken from them (``remediation_actions`` in the design)."""

from django.conf import settings
from django.db import models

from incidents.models import Incident, Service
from reliability.models import Team


class Runbook(models.Model):
    """A named, versioned recipe of actions for a kind of incident (synced from git or
    curated in the admin)."""

    name = models.CharField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="runbooks")
    description = models.TextField(blank=True)
    match = models.JSONField(
        default=dict, blank=True, help_text="which incidents/hypotheses it applies to"
    )
    steps = models.JSONField(default=list, help_text="ordered actions with their payloads")
    automatic = models.BooleanField(default=False)
    min_confidence = models.FloatField(default=0.9)
    enabled = models.BooleanField(default=True)
    source_path = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RemediationAction(models.Model):
    class ActionType(models.TextChoices):
        KUBERNETES = "kubernetes"
        SCRIPT = "script"
        WEBHOOK = "webhook"

    class Status(models.TextChoices):
        PENDING = "pending"
        EXECUTING = "executing"
        SUCCESS = "success"
        FAILED = "failed"

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="remediation_actions"
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    runbook = models.ForeignKey(
        Runbook, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    name = models.CharField(max_length=200)
    action_type = models.CharField(max_length=12, choices=ActionType.choices)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "remediation_actions"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}]"
