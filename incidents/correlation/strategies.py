"""Correlation strategies. Each looks at one alert and the candidate incidents and either
returns a ``Decision`` or ``None`` to let the next strategy try."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from incidents.correlation.types import Action, AlertFacts, Decision, IncidentFacts


def humanize_delta(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


class Strategy(Protocol):
    name: str

    def decide(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], now: datetime
    ) -> Decision | None: ...


@dataclass
class FingerprintDedup:
    """A re-sent alert stays where it is; a flapping one may bring its incident back."""

    reopen_grace: timedelta = timedelta(minutes=10)
    name: str = "fingerprint"

    def decide(self, alert, incidents, now):
        for incident in incidents:
            if alert.fingerprint not in incident.fingerprints:
                continue
            if incident.is_open:
                if alert.incident_id == incident.id:
                    return Decision(alert.id, Action.KEEP, incident.id, self.name, "same alert")
                return Decision(
                    alert.id,
                    Action.ATTACH,
                    incident.id,
                    self.name,
                    f"same fingerprint {alert.fingerprint[:12]} already in this incident",
                )
            if (
                alert.status == "firing"
                and incident.resolved_at is not None
                and now - incident.resolved_at <= self.reopen_grace
            ):
                return Decision(
                    alert.id,
                    Action.REOPEN,
                    incident.id,
                    self.name,
                    f"alert {alert.name} fired again "
                    f"{humanize_delta(now - incident.resolved_at)} after resolution (flapping)",
                )
        return None


def open_to(incident: IncidentFacts, alert: AlertFacts, window: timedelta) -> bool:
    """Whether ``incident`` may take ``alert`` by correlation: open, not owned by a rule
    (only that rule adds to it), and active within ``window`` before the alert."""
    return (
        incident.is_open
        and not incident.rule_owned
        and alert.received_at - incident.last_alert_at <= window
    )


def latest_active(
    incidents: Sequence[IncidentFacts],
    alert: AlertFacts,
    window: timedelta,
    holds: Callable[[IncidentFacts], bool],
) -> IncidentFacts | None:
    """Of the open incidents active within ``window`` before the alert that ``holds``,
    the one active last."""
    matches = [
        i
        for i in incidents
        if i.is_open and alert.received_at - i.last_alert_at <= window and holds(i)
    ]
    return max(matches, key=lambda i: i.last_alert_at, default=None)


@dataclass
class GroupKey:
    """Alerts with the same group key join the open incident of that group within a window."""

    window: timedelta = timedelta(hours=1)
    name: str = "group_key"

    def decide(self, alert, incidents, now):
        if not alert.group_key:
            return None
        target = latest_active(
            incidents, alert, self.window, lambda i: alert.group_key in i.group_keys
        )
        if target is None:
            return None
        return Decision(
            alert.id,
            Action.ATTACH,
            target.id,
            self.name,
            f"same group {alert.group_key}, "
            f"{humanize_delta(alert.received_at - target.opened_at)} after the first alert",
            alert.group_key,
        )


# labels that tell replicas of one check apart: the same failure fires on all of them
REPLICA_LABELS = frozenset({"pod", "pod_name", "instance", "container_id", "replica", "host"})
_NAMED = frozenset({"alertname", "service"})  # a check's name and service are kept apart


def check_variant(labels: Mapping[str, str]) -> str:
    """A short digest of what, beyond its name and service, makes an alert a different
    check: its severity, the dependency it names, its route... but not the replica it fired
    on. Empty when nothing does."""
    rest = sorted((k, v) for k, v in labels.items() if k not in REPLICA_LABELS and k not in _NAMED)
    if not rest:
        return ""
    text = "\x00".join(f"{k}={v}" for k, v in rest)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def check_of(alert: AlertFacts) -> str:
    """The check an alert comes from, whatever pod or instance it fired on: a warning and a
    critical alert of one name, or timeouts towards two dependencies, are two checks."""
    return check_key(alert.name, alert.service, check_variant(alert.labels))


def fired_on_replica(labels: Mapping[str, str]) -> bool:
    return any(label in labels for label in REPLICA_LABELS)


def evidence_weight(replicated: bool) -> int:
    """How much one alert says its service is failing: a service-wide check (no replica
    label) speaks for the whole service, one replica's alert for one replica."""
    return 1 if replicated else 2


def check_key(name: str, service: str | None, variant: str) -> str:
    return f"{name}@{service}#{variant}" if variant else f"{name}@{service}"


@dataclass
class SameCheck:
    """The same check on another pod or instance of the same service joins the incident
    that already holds it: one failure shows on every replica at once."""

    window: timedelta = timedelta(minutes=10)
    name: str = "same_check"

    def decide(self, alert, incidents, now):
        if alert.status != "firing" or not alert.service or alert.kind == "other":
            return None
        check = check_of(alert)
        target = latest_active(
            incidents, alert, self.window, lambda i: not i.rule_owned and check in i.checks
        )
        if target is None:
            return None
        return Decision(
            alert.id,
            Action.ATTACH,
            target.id,
            self.name,
            f"{alert.name} on {alert.service} fires on other replicas in this incident, "
            f"{humanize_delta(alert.received_at - target.opened_at)} after the first alert",
            origin_service=target.origin_service,
        )
