"""The incident core: services and their graph, SLOs, integrations, alerts, incidents and
their timelines."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from incidents.correlation.rules import CorrelationRule as PlainRule
from incidents.lifecycle import IncidentStatus, Severity
from reliability.models import Team


class Tier(models.IntegerChoices):
    CRITICAL = 1, "tier 1 (critical)"
    IMPORTANT = 2, "tier 2"
    STANDARD = 3, "tier 3"


class Service(models.Model):
    """Something a team runs. ``alert_labels`` says which alerts are about it."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="services")
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="owned_services"
    )
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, default=Tier.STANDARD)
    description = models.TextField(blank=True)
    alert_labels = models.JSONField(
        default=dict,
        blank=True,
        help_text='Labels that identify this service\'s alerts, e.g. {"service": "payments"}. '
        "Empty means the default {'service': <slug>}.",
    )
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, through="Dependency", related_name="dependents", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        permissions = [
            ("respond_service", "Act on incidents of this service"),
            ("remediate_service", "Run remediation on this service"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def identifying_labels(self) -> dict[str, str]:
        return self.alert_labels or {"service": self.slug}


class Dependency(models.Model):
    """``service`` calls (depends on) ``depends_on``."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="dependency_links")
    depends_on = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="dependent_links"
    )
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "depends_on"], name="unique_dependency"),
            models.CheckConstraint(
                condition=~Q(service=models.F("depends_on")), name="no_self_dependency"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} → {self.depends_on}"


class SLO(models.Model):
    """A service level objective measured as good/total events over a rolling window."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="slos")
    name = models.CharField(max_length=100)
    objective = models.DecimalField(
        max_digits=6, decimal_places=3, help_text="target in percent, e.g. 99.9"
    )
    window_days = models.PositiveSmallIntegerField(
        default=28, validators=[MinValueValidator(1), MaxValueValidator(366)]
    )
    good_query = models.TextField(help_text="PromQL counting good events")
    total_query = models.TextField(help_text="PromQL counting all events")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["service__slug", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="unique_slo_name"),
            models.CheckConstraint(
                condition=Q(objective__gt=0) & Q(objective__lt=100), name="objective_in_range"
            ),
        ]
        verbose_name = "SLO"

    def __str__(self) -> str:
        return f"{self.service}: {self.name} ({self.objective}%)"

    @property
    def error_budget(self) -> float:
        """The fraction of events allowed to be bad."""
        return 1 - float(self.objective) / 100


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Integration(models.Model):
    """A source of alerts with its own webhook URL and secret."""

    SECRET_FIELDS = ("secret", "token")  # never in audit diffs or logs (reliability.redaction)

    class Kind(models.TextChoices):
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        GRAFANA = "grafana", "Grafana alerting"
        GENERIC = "generic", "Generic JSON"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="integrations")
    token = models.SlugField(
        max_length=64,
        unique=True,
        default=new_secret,
        editable=False,
        help_text="the unguessable part of the webhook URL",
    )
    secret = models.CharField(
        max_length=128,
        blank=True,
        default=new_secret,
        help_text="sent by the source as 'Authorization: Bearer <secret>' (or ?secret=)",
    )
    enabled = models.BooleanField(default=True)
    group_by = models.JSONField(
        default=list,
        blank=True,
        help_text="labels that form the group key when the source gives none "
        "(Alertmanager's groupKey is used as is)",
    )
    group_window_minutes = models.PositiveIntegerField(default=60)
    auto_resolve = models.BooleanField(
        default=True, help_text="resolve an incident when all its alerts are resolved"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Incident(models.Model):
    number = models.PositiveIntegerField(unique=True, editable=False)
    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(
        max_length=20,
        choices=IncidentStatus.choices,
        default=IncidentStatus.TRIGGERED,
        db_index=True,
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
        help_text="the team of the integration that opened it",
    )
    services = models.ManyToManyField(Service, blank=True, related_name="incidents")
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="commanded_incidents",
    )
    group_key = models.CharField(max_length=500, blank=True, db_index=True)
    summary = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_alert_at = models.DateTimeField(default=timezone.now)
    alert_count = models.PositiveIntegerField(default=0)
    firing_count = models.PositiveIntegerField(default=0)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged"
    )
    origin_service = models.ForeignKey(
        Service,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="probable origin: the most downstream affected dependency (set by correlation)",
    )
    correlation = models.JSONField(
        default=dict, blank=True, help_text="what correlation knows of it (roots, causes)"
    )

    class Meta:
        ordering = ["-created_at", "-number"]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"INC-{self.number}: {self.title}"

    @property
    def reference(self) -> str:
        return f"INC-{self.number}"


class Alert(models.Model):
    class Status(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="alerts")
    fingerprint = models.CharField(max_length=128)
    name = models.CharField(max_length=200, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    generator_url = models.URLField(max_length=1000, blank=True)
    group_key = models.CharField(max_length=500, blank=True)
    check_variant = models.CharField(
        max_length=16,
        blank=True,
        help_text="digest of the labels that make it another check than its name and service"
        " (severity, named dependency...), replica labels left out",
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    raw = models.JSONField(default=dict, help_text="the alert as the source sent it")
    received_at = models.DateTimeField(default=timezone.now)
    last_received_at = models.DateTimeField(default=timezone.now)
    receive_count = models.PositiveIntegerField(default=1)
    correlation_pending = models.BooleanField(
        default=False, help_text="stored by a webhook, not yet seen by correlation"
    )

    class Meta:
        ordering = ["-last_received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "fingerprint"], name="one_alert_per_fingerprint"
            )
        ]
        indexes = [
            models.Index(fields=["incident", "status"]),
            models.Index(fields=["group_key", "incident"]),
            models.Index(
                fields=["last_received_at", "id"],
                condition=models.Q(correlation_pending=True),
                name="alert_correlation_backlog",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}] {self.fingerprint[:12]}"

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


class TimelineEvent(models.Model):
    class Kind(models.TextChoices):
        CREATED = "created"
        ALERT_ATTACHED = "alert_attached"
        ALERT_RESOLVED = "alert_resolved"
        STATUS_CHANGED = "status_changed"
        COMMANDER_ASSIGNED = "commander_assigned"
        NOTE = "note"
        MERGED = "merged"
        SEVERITY_CHANGED = "severity_changed"
        ANALYSIS = "analysis"
        REMEDIATION = "remediation"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.incident.reference} {self.kind}: {self.message[:60]}"


class IncidentCounter(models.Model):
    """One row holding the last incident number; locked to hand out the next one."""

    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"last incident number {self.last}"


class CorrelationRule(models.Model):
    """A correlation rule curated in the admin (the same fields as correlation-rules.yml).

    A rule belongs to a team and applies only to the alerts of that team's integrations; a
    rule without a team applies to every team's alerts and only superusers may write one
    (a team role must never reach another team's alerts)."""

    name = models.SlugField(max_length=100)
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="correlation_rules",
        help_text="whose alerts it applies to; empty: every team's (superusers only)",
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=100, help_text="lower runs first")
    matchers = models.JSONField(
        default=list, blank=True, help_text='label matchers, e.g. ["node=~\\".+\\""]'
    )
    group_by = models.JSONField(default=list, blank=True, help_text="label names")
    window_seconds = models.PositiveIntegerField(default=3600)
    min_alerts = models.PositiveIntegerField(default=1)
    reuse_resolved = models.BooleanField(
        default=False, help_text="let new firing alerts reopen a resolved incident of the group"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="one_rule_name_per_team"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(team__isnull=True), name="one_global_rule_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def as_rule(self):
        """The plain rule the engine runs; raises ValueError on bad matchers."""
        return PlainRule.from_dict(
            {
                "name": self.name,
                "matchers": list(self.matchers or []),
                "group_by": list(self.group_by or []),
                "window": int(self.window_seconds),
                "min_alerts": int(self.min_alerts),
                "reuse_resolved": bool(self.reuse_resolved),
            }
        )

    def clean(self) -> None:
        try:
            self.as_rule()
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError(str(exc)) from exc


class CorrelationFeedback(models.Model):
    """A human correction of grouping: kept for the audit trail and learned from."""

    class Kind(models.TextChoices):
        MERGE = "merge"
        SPLIT = "split"
        MOVE = "move"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    incident = models.ForeignKey(
        Incident,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="alerts went here",
    )
    source = models.ForeignKey(
        Incident, null=True, on_delete=models.SET_NULL, related_name="+", help_text="from here"
    )
    alerts = models.JSONField(default=list, blank=True, help_text="ids of the alerts moved")
    moved_keys = models.JSONField(default=list, help_text="what the moved alerts were about")
    stayed_keys = models.JSONField(default=list, help_text="what the other side was about")
    together = models.BooleanField(help_text="the two sides belong together")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.created_at:%Y-%m-%d %H:%M}"


class CooccurrenceSnapshot(models.Model):
    """The co-occurrence model as last trained by the beat job (JSON of the plain model)."""

    trained_at = models.DateTimeField(default=timezone.now, db_index=True)
    incidents = models.PositiveIntegerField(default=0)
    feedback = models.PositiveIntegerField(default=0)
    model = models.TextField()

    class Meta:
        ordering = ["-trained_at"]

    def __str__(self) -> str:
        return (
            f"co-occurrence model of {self.trained_at:%Y-%m-%d %H:%M} ({self.incidents} incidents)"
        )
