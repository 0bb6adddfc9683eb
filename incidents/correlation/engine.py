"""The correlation pipeline: strategies in order, the first decision wins.

When a strategy finds several equally good incidents it names them as ``alternatives``;
the later strategies that can rank candidates (learned co-occurrence, text similarity)
break the tie, so weak evidence only ever chooses among options strong evidence allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from incidents.correlation.cooccurrence import CooccurrenceModel, CooccurrenceStrategy
from incidents.correlation.kinds import AlertKinds, Kind
from incidents.correlation.rules import CorrelationRule, RuleStrategy
from incidents.correlation.similarity import TextSimilarity
from incidents.correlation.strategies import (
    FingerprintDedup,
    GroupKey,
    SameCheck,
    Strategy,
    check_of,
    evidence_weight,
    fired_on_replica,
)
from incidents.correlation.topology import Topology, TopologyStrategy
from incidents.correlation.types import (
    PENDING,
    Action,
    AlertFacts,
    Decision,
    IncidentFacts,
    IncidentId,
)


def default_pipeline(
    window: timedelta = timedelta(hours=1), reopen_grace: timedelta = timedelta(minutes=10)
) -> list[Strategy]:
    return [FingerprintDedup(reopen_grace=reopen_grace), GroupKey(window=window)]


def build_pipeline(
    *,
    rules: Sequence[CorrelationRule] = (),
    topology: Topology | None = None,
    cooccurrence: CooccurrenceModel | None = None,
    similarity: bool = True,
    window: timedelta = timedelta(minutes=10),
    group_window: timedelta = timedelta(hours=1),
    reopen_grace: timedelta = timedelta(minutes=10),
    max_hops: int = 4,
) -> list[Strategy]:
    """The full engine: fingerprint → rules → group key → same check on another replica →
    topology → co-occurrence → text similarity (tie-break and near-identical) → new."""
    pipeline: list[Strategy] = [FingerprintDedup(reopen_grace=reopen_grace)]
    if rules:
        pipeline.append(RuleStrategy(list(rules)))
    pipeline.append(GroupKey(window=group_window))
    pipeline.append(SameCheck(window=window))
    if topology is not None:
        pipeline.append(TopologyStrategy(topology, max_hops=max_hops, window=window))
    if cooccurrence is not None:
        pipeline.append(CooccurrenceStrategy(cooccurrence, window=window))
    if similarity:
        pipeline.append(TextSimilarity(window=window))
    return pipeline


def build_correlator(*, kinds: AlertKinds | None = None, **options) -> Correlator:
    """``build_pipeline(**options)`` with alert classification (default kinds)."""
    return Correlator(build_pipeline(**options), kinds=kinds or AlertKinds())


@dataclass
class Correlator:
    """Runs the strategies; ``kinds`` classifies alerts (cause/symptom/other) first when
    the caller did not."""

    strategies: Sequence[Strategy] = field(default_factory=default_pipeline)
    kinds: AlertKinds | None = None

    def classify(self, alert: AlertFacts) -> AlertFacts:
        if alert.kind or self.kinds is None:
            return alert
        return replace(alert, kind=self.kinds.of(alert))

    def decide(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], now: datetime
    ) -> Decision:
        alert = self.classify(alert)
        for index, strategy in enumerate(self.strategies):
            decision = strategy.decide(alert, incidents, now)
            if decision is None:
                continue
            if decision.alternatives:
                decision = self._break_tie(alert, incidents, now, index, decision)
            return self._merges(alert, incidents, decision)

        if alert.status != "firing":
            return Decision(alert.id, Action.IGNORE, None, "none", "resolved alert, no incident")
        key = alert.group_key or f"fingerprint:{alert.fingerprint}"
        return Decision(
            alert.id,
            Action.OPEN,
            None,
            "new",
            "no related open incident",
            key,
            origin_service=alert.service,
            root_service=alert.service,
        )

    def _merges(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], decision: Decision
    ) -> Decision:
        """Let strategies that can merge incidents fold others into the chosen one."""
        if decision.action not in (Action.ATTACH, Action.REOPEN):
            return decision
        target = next((i for i in incidents if i.id == decision.incident_id), None)
        if target is None:
            return decision
        for strategy in self.strategies:
            hook = getattr(strategy, "merges", None)
            if hook is None:
                continue
            extra, note = hook(alert, target, incidents)
            extra = tuple(i for i in extra if i not in decision.merges)
            if extra:
                decision = replace(
                    decision, merges=decision.merges + extra, reason=f"{decision.reason}; {note}"
                )
        return decision

    def _break_tie(
        self,
        alert: AlertFacts,
        incidents: Sequence[IncidentFacts],
        now: datetime,
        index: int,
        decision: Decision,
    ) -> Decision:
        by_id = {incident.id: incident for incident in incidents}
        candidates = [
            by_id[i] for i in (decision.incident_id, *decision.alternatives) if i in by_id
        ]
        for ranker in self.strategies[index + 1 :]:
            rank = getattr(ranker, "rank", None)
            if rank is None:
                continue
            choice = rank(alert, candidates)
            if choice is None:
                continue
            chosen, note = choice
            if chosen != decision.incident_id:
                redo = self.strategies[index].decide(alert, [by_id[chosen]], now)
                decision = redo or replace(decision, incident_id=chosen)
            return replace(decision, reason=f"{decision.reason}; {note}")
        return decision

    def run(
        self, alerts: Iterable[AlertFacts], incidents: Iterable[IncidentFacts], now: datetime
    ) -> list[Decision]:
        """Decide a batch in order; incidents opened by earlier alerts are candidates for
        later ones (their provisional ids are ``"new-<n>"``, candidate groups waiting for
        a rule's minimum are ``"pending-<n>"``)."""
        return self.run_batch(alerts, incidents, now)[0]

    def run_batch(
        self, alerts: Iterable[AlertFacts], incidents: Iterable[IncidentFacts], now: datetime
    ) -> tuple[list[Decision], dict[IncidentId, IncidentFacts]]:
        """``run``, also returning the incidents as the batch left them (keyed by id), so
        a caller replaying a stream can carry them into the next batch."""
        pool = {incident.id: replace(incident) for incident in incidents}
        decisions = []
        opened = held = 0
        for alert in map(self.classify, alerts):
            decision = self.decide(alert, list(pool.values()), now)
            if decision.action is Action.HOLD and decision.incident_id is None:
                held += 1
                decision = replace(decision, incident_id=f"pending-{held}")
                pool[decision.incident_id] = IncidentFacts(
                    id=decision.incident_id,
                    status=PENDING,
                    opened_at=alert.received_at,
                    last_alert_at=alert.received_at,
                    group_keys={decision.group_key},
                    rule=decision.strategy,
                )
            if decision.action is Action.OPEN:
                opened += 1
                decision = replace(decision, incident_id=f"new-{opened}")
                incident = IncidentFacts(
                    id=decision.incident_id,
                    status="triggered",
                    opened_at=alert.received_at,
                    last_alert_at=alert.received_at,
                    group_keys={decision.group_key},
                    origin_service=decision.origin_service,
                    rule=rule_name(decision.group_key),
                )
                if decision.promoted:
                    promote(pool, incident, decision.group_key)
                pool[decision.incident_id] = incident
            if decision.incident_id in pool and decision.action is not Action.IGNORE:
                absorb(pool[decision.incident_id], alert, decision)
                for merged in decision.merges:
                    if merged in pool and merged != decision.incident_id:
                        fold(pool[decision.incident_id], pool.pop(merged))
            decisions.append(decision)
        return decisions, pool


def rule_name(group_key: str) -> str:
    """``rule:<name>:<values>`` keys mark incidents a rule opened."""
    return group_key.split(":", 2)[1] if group_key.startswith("rule:") else ""


def fold(into: IncidentFacts, other: IncidentFacts) -> None:
    """Merge ``other``'s facts into ``into`` (an automatic merge or a promoted group)."""
    into.opened_at = min(into.opened_at, other.opened_at)
    into.last_alert_at = max(into.last_alert_at, other.last_alert_at)
    into.fingerprints |= other.fingerprints
    into.services |= other.services
    into.alert_names |= other.alert_names
    into.summaries |= other.summaries
    into.cause_services |= other.cause_services
    into.checks |= other.checks
    into.alert_count += other.alert_count
    for service, count in other.service_alerts.items():
        into.service_alerts[service] = into.service_alerts.get(service, 0) + count
    for service, at in other.service_seen.items():
        into.service_seen[service] = max(at, into.service_seen.get(service, at))
    for service, at in other.service_first.items():
        into.service_first[service] = min(at, into.service_first.get(service, at))


def promote(pool: dict, incident: IncidentFacts, group_key: str) -> None:
    """Move a rule's candidate group into the incident it finally opens."""
    for key, group in list(pool.items()):
        if group.is_pending and group_key in group.group_keys:
            fold(incident, group)
            incident.root_services |= group.root_services
            del pool[key]


def absorb(incident: IncidentFacts, alert: AlertFacts, decision: Decision) -> None:
    """Update the in-memory incident with an alert just attached to it."""
    new = alert.fingerprint not in incident.fingerprints
    incident.fingerprints.add(alert.fingerprint)
    incident.alert_names.add(alert.name)
    if alert.service:
        incident.services.add(alert.service)
        incident.checks.add(check_of(alert))
    if alert.group_key:
        incident.group_keys.add(alert.group_key)
    if alert.summary and len(incident.summaries) < 50:
        incident.summaries.add(alert.summary)
    if alert.service and alert.kind == Kind.CAUSE:
        incident.cause_services.add(alert.service)
    if new:
        incident.alert_count += 1
        if alert.service and alert.kind != Kind.OTHER:
            incident.service_alerts[alert.service] = incident.service_alerts.get(
                alert.service, 0
            ) + evidence_weight(fired_on_replica(alert.labels))
            seen = incident.service_seen.get(alert.service, alert.received_at)
            incident.service_seen[alert.service] = max(seen, alert.received_at)
            first = incident.service_first.get(alert.service, alert.received_at)
            incident.service_first[alert.service] = min(first, alert.received_at)
        if incident.is_pending:
            incident.pending_alert_ids.append(alert.id)
    moved = decision.origin_service and decision.origin_service != incident.origin_service
    if moved and decision.root_service == decision.origin_service and incident.origin_service:
        # a deeper cause: the old origin was only showing its symptoms
        incident.root_services.discard(incident.origin_service)
    if decision.origin_service:
        incident.origin_service = decision.origin_service
    if decision.root_service:
        incident.root_services.add(decision.root_service)
    incident.last_alert_at = max(incident.last_alert_at, alert.received_at)
    if decision.action is Action.REOPEN:
        incident.status = "triggered"
        incident.resolved_at = None
