"""The correlation pipeline: strategies in order, the first decision wins."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from incidents.correlation.strategies import FingerprintDedup, GroupKey, Strategy
from incidents.correlation.types import Action, AlertFacts, Decision, IncidentFacts


def default_pipeline(
    window: timedelta = timedelta(hours=1), reopen_grace: timedelta = timedelta(minutes=10)
) -> list[Strategy]:
    return [FingerprintDedup(reopen_grace=reopen_grace), GroupKey(window=window)]


@dataclass
class Correlator:
    strategies: Sequence[Strategy] = field(default_factory=default_pipeline)

    def decide(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], now: datetime
    ) -> Decision:
        for strategy in self.strategies:
            decision = strategy.decide(alert, incidents, now)
            if decision is not None:
                return decision
        if alert.status != "firing":
            return Decision(alert.id, Action.IGNORE, None, "none", "resolved alert, no incident")
        key = alert.group_key or f"fingerprint:{alert.fingerprint}"
        return Decision(alert.id, Action.OPEN, None, "new", "no related open incident", key)

    def run(
        self, alerts: Iterable[AlertFacts], incidents: Iterable[IncidentFacts], now: datetime
    ) -> list[Decision]:
        """Decide a batch in order; incidents opened by earlier alerts are candidates for
        later ones (their provisional ids are ``"new-<n>"``)."""
        pool = {incident.id: replace(incident) for incident in incidents}
        decisions = []
        opened = 0
        for alert in alerts:
            decision = self.decide(alert, list(pool.values()), now)
            if decision.action is Action.OPEN:
                opened += 1
                decision = replace(decision, incident_id=f"new-{opened}")
                pool[decision.incident_id] = IncidentFacts(
                    id=decision.incident_id,
                    status="triggered",
                    opened_at=alert.received_at,
                    last_alert_at=alert.received_at,
                    group_keys={decision.group_key},
                )
            if decision.incident_id in pool and decision.action is not Action.IGNORE:
                absorb(pool[decision.incident_id], alert, decision)
            decisions.append(decision)
        return decisions


def absorb(incident: IncidentFacts, alert: AlertFacts, decision: Decision) -> None:
    """Update the in-memory incident with an alert just attached to it."""
    incident.fingerprints.add(alert.fingerprint)
    incident.alert_names.add(alert.name)
    if alert.service:
        incident.services.add(alert.service)
    if alert.group_key:
        incident.group_keys.add(alert.group_key)
    incident.last_alert_at = max(incident.last_alert_at, alert.received_at)
    if decision.action is Action.REOPEN:
        incident.status = "triggered"
        incident.resolved_at = None
