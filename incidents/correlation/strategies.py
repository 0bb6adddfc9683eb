"""Correlation strategies. Each looks at one alert and the candidate incidents and either
returns a ``Decision`` or ``None`` to let the next strategy try."""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass
class GroupKey:
    """Alerts with the same group key join the open incident of that group within a window."""

    window: timedelta = timedelta(hours=1)
    name: str = "group_key"

    def decide(self, alert, incidents, now):
        if not alert.group_key:
            return None
        matches = [
            incident
            for incident in incidents
            if incident.is_open
            and alert.group_key in incident.group_keys
            and alert.received_at - incident.last_alert_at <= self.window
        ]
        if not matches:
            return None
        target = max(matches, key=lambda i: i.last_alert_at)
        return Decision(
            alert.id,
            Action.ATTACH,
            target.id,
            self.name,
            f"same group {alert.group_key}, "
            f"{humanize_delta(alert.received_at - target.opened_at)} after the first alert",
            alert.group_key,
        )
