"""The incident state machine: one status field and one transition table."""

from __future__ import annotations

from django.db import models


class IncidentStatus(models.TextChoices):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"


class Severity(models.TextChoices):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


SEVERITY_RANK = {Severity.CRITICAL: 4, Severity.ERROR: 3, Severity.WARNING: 2, Severity.INFO: 1}

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], IncidentStatus]] = {
    "acknowledge": (frozenset({IncidentStatus.TRIGGERED}), IncidentStatus.ACKNOWLEDGED),
    "mitigate": (
        frozenset({IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED}),
        IncidentStatus.MITIGATED,
    ),
    "resolve": (
        frozenset(
            {IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED}
        ),
        IncidentStatus.RESOLVED,
    ),
    "reopen": (
        frozenset({IncidentStatus.RESOLVED, IncidentStatus.MITIGATED}),
        IncidentStatus.TRIGGERED,
    ),
}

# the timestamp field each target status stamps
STAMPS = {
    IncidentStatus.ACKNOWLEDGED: "acknowledged_at",
    IncidentStatus.MITIGATED: "mitigated_at",
    IncidentStatus.RESOLVED: "resolved_at",
}


class IllegalTransition(Exception):
    def __init__(self, action: str, current: str):
        self.action, self.current = action, current
        allowed = ", ".join(sorted(TRANSITIONS[action][0])) if action in TRANSITIONS else "-"
        super().__init__(f"cannot {action} an incident that is {current} (allowed from: {allowed})")


def next_status(current: str, action: str) -> IncidentStatus:
    """The status ``action`` leads to from ``current``, or ``IllegalTransition``."""
    if action not in TRANSITIONS:
        raise ValueError(f"unknown action {action!r}")
    sources, target = TRANSITIONS[action]
    if current not in sources:
        raise IllegalTransition(action, current)
    return target


def severity_from_labels(labels: dict[str, str]) -> Severity:
    raw = (labels.get("severity") or labels.get("priority") or "").lower()
    aliases = {
        "critical": Severity.CRITICAL,
        "crit": Severity.CRITICAL,
        "page": Severity.CRITICAL,
        "p1": Severity.CRITICAL,
        "high": Severity.ERROR,
        "error": Severity.ERROR,
        "major": Severity.ERROR,
        "p2": Severity.ERROR,
        "warning": Severity.WARNING,
        "warn": Severity.WARNING,
        "medium": Severity.WARNING,
        "p3": Severity.WARNING,
        "info": Severity.INFO,
        "low": Severity.INFO,
        "none": Severity.INFO,
    }
    return aliases.get(raw, Severity.WARNING)
