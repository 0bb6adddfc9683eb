"""Co-occurrence learned from history: services that keep failing together are grouped
even when no dependency edge explains it (a shared cache, a node, a network segment).

The model is a decayed Jaccard index over incident membership: for keys ``a`` and ``b``,
``w(a and b) / w(a or b)`` where each past incident counts ``0.5 ** (age / half_life)``.
Hubs that appear everywhere (the frontend) score low against everything, which is what
an on-call engineer means by "these two always go together". Manual merge, split and
move decisions are extra evidence for or against a pair.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations

from incidents.correlation.strategies import humanize_delta, open_to
from incidents.correlation.types import Action, AlertFacts, Decision, IncidentFacts, IncidentId


def service_key(service: str) -> str:
    return f"service:{service}"


def cause_key(service: str) -> str:
    return f"cause:{service}"


def alert_keys(alert: AlertFacts) -> frozenset[str]:
    """What the model learns about an alert: the service it fires on, and whether that
    service itself was failing (a cause alert). Two services whose *causes* keep showing
    up in the same incidents share something the dependency graph does not show."""
    if not alert.service:
        return frozenset()
    keys = {service_key(alert.service)}
    if alert.kind == "cause":
        keys.add(cause_key(alert.service))
    return frozenset(keys)


def incident_keys(incident: IncidentFacts, min_alerts: int = 1) -> frozenset[str]:
    """The incident's roots with enough evidence and its failing services: what a new
    alert is compared with (symptoms co-occur with everything their cause does)."""
    roots = incident.roots() or incident.services
    keys = {service_key(s) for s in roots if incident.evidence(s) >= min_alerts}
    keys |= {cause_key(s) for s in incident.cause_services}
    return frozenset(keys)


def same_kind(a: str, b: str) -> bool:
    return a.split(":", 1)[0] == b.split(":", 1)[0]


@dataclass(frozen=True)
class Membership:
    """One past incident: when it happened and the keys of the alerts it contained."""

    at: datetime
    keys: frozenset[str]

    @classmethod
    def of(cls, at: datetime, alerts: Iterable[AlertFacts]) -> Membership:
        """A past incident from its (classified) alerts."""
        return cls(at, frozenset(k for alert in alerts for k in alert_keys(alert)))


@dataclass(frozen=True)
class Feedback:
    """A human correction: ``together`` for a merge or a move into an incident, not
    together for a split or a move out of one. Counts ``weight`` incidents' worth."""

    at: datetime
    left: frozenset[str]
    right: frozenset[str]
    together: bool
    weight: float = 3.0


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass
class CooccurrenceModel:
    key_weight: dict[str, float] = field(default_factory=dict)
    pair_weight: dict[tuple[str, str], float] = field(default_factory=dict)
    half_life: timedelta = timedelta(days=30)
    trained_at: datetime | None = None
    incidents: int = 0

    def support(self, a: str, b: str) -> float:
        """Decayed number of past incidents in which both fired."""
        if a == b:
            return self.key_weight.get(a, 0.0)
        return max(self.pair_weight.get(_pair(a, b), 0.0), 0.0)

    def score(self, a: str, b: str) -> float:
        """Decayed Jaccard in [0, 1]; 0 for keys never seen together."""
        both = self.support(a, b)
        if both <= 0:
            return 0.0
        either = self.key_weight.get(a, 0.0) + self.key_weight.get(b, 0.0) - both
        return min(both / either, 1.0) if either > 0 else 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "half_life_s": self.half_life.total_seconds(),
                "trained_at": self.trained_at.isoformat() if self.trained_at else None,
                "incidents": self.incidents,
                "keys": self.key_weight,
                "pairs": [[a, b, w] for (a, b), w in sorted(self.pair_weight.items())],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> CooccurrenceModel:
        data = json.loads(text)
        return cls(
            key_weight={k: float(v) for k, v in data["keys"].items()},
            pair_weight={_pair(a, b): float(w) for a, b, w in data["pairs"]},
            half_life=timedelta(seconds=data["half_life_s"]),
            trained_at=datetime.fromisoformat(data["trained_at"]) if data["trained_at"] else None,
            incidents=int(data["incidents"]),
        )


def fit(
    history: Iterable[Membership],
    feedback: Iterable[Feedback] = (),
    *,
    now: datetime | None = None,
    half_life: timedelta = timedelta(days=30),
    max_keys_per_incident: int = 200,
) -> CooccurrenceModel:
    """Learn pair weights from past incidents and human corrections."""
    now = now or datetime.now(UTC)
    keys: dict[str, float] = defaultdict(float)
    pairs: dict[tuple[str, str], float] = defaultdict(float)

    def decay(at: datetime) -> float:
        age = max((now - at).total_seconds(), 0.0)
        return 0.5 ** (age / half_life.total_seconds())

    count = 0
    for item in history:
        members = sorted(item.keys)[:max_keys_per_incident]
        if not members:
            continue
        count += 1
        weight = decay(item.at)
        for key in members:
            keys[key] += weight
        for a, b in combinations(members, 2):
            pairs[(a, b)] += weight
    for item in feedback:
        weight = decay(item.at) * item.weight
        for a in item.left:
            for b in item.right:
                if a == b:
                    continue
                if item.together:
                    keys[a] += weight
                    keys[b] += weight
                    pairs[_pair(a, b)] += weight
                else:
                    pairs[_pair(a, b)] -= weight
    return CooccurrenceModel(
        key_weight=dict(keys),
        pair_weight={p: w for p, w in pairs.items() if w > 0},
        half_life=half_life,
        trained_at=now,
        incidents=count,
    )


@dataclass
class CooccurrenceStrategy:
    """Join the open incident whose services most often failed together with this
    alert's service in the past, when that is a repeated pattern (``min_support``) and a
    strong one (``threshold``)."""

    model: CooccurrenceModel
    threshold: float = 0.4
    min_support: float = 2.0
    min_root_alerts: int = 1
    window: timedelta = timedelta(minutes=10)
    name: str = "cooccurrence"

    def best(
        self, alert: AlertFacts, incident: IncidentFacts
    ) -> tuple[float, float, str, str] | None:
        best = None
        for a in alert_keys(alert):
            for b in incident_keys(incident, self.min_root_alerts):
                if a == b or not same_kind(a, b):
                    continue
                support = self.model.support(a, b)
                if support < self.min_support:
                    continue
                score = self.model.score(a, b)
                if best is None or score > best[0]:
                    best = (score, support, a, b)
        return best

    def _scored(self, alert: AlertFacts, incidents: Sequence[IncidentFacts]):
        for incident in incidents:
            if not open_to(incident, alert, self.window):
                continue
            found = self.best(alert, incident)
            if found and found[0] >= self.threshold:
                yield found, incident

    def _decision(self, alert: AlertFacts, found, incident: IncidentFacts, note: str = ""):
        score, support, a, b = found
        reason = (
            f"{a.split(':', 1)[1]} and {b.split(':', 1)[1]} fired together in "
            f"{support:.0f} past incidents (Jaccard {score:.2f}), "
            f"{humanize_delta(alert.received_at - incident.opened_at)} after the first alert"
            f"{note}"
        )
        return Decision(
            alert.id,
            Action.ATTACH,
            incident.id,
            self.name,
            reason,
            origin_service=incident.origin_service,
            root_service=alert.service,
            score=score,
        )

    def decide(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], now: datetime
    ) -> Decision | None:
        if alert.status != "firing" or alert.kind == "other" or not self.model.key_weight:
            return None
        scored = sorted(self._scored(alert, incidents), key=lambda x: -x[0][0])
        if not scored:
            return None
        found, incident = scored[0]
        return self._decision(alert, found, incident)

    def merges(
        self, alert: AlertFacts, target: IncidentFacts, incidents: Sequence[IncidentFacts]
    ) -> tuple[tuple[IncidentId, ...], str]:
        """Open incidents that failed together with this cause alert's service in the
        past (a cause-to-cause link) and are still young: the same hidden failure seen
        from another service before the link was visible. Folded into ``target``."""
        if alert.kind != "cause" or not alert.service or not self.model.key_weight:
            return (), ""
        mine = cause_key(alert.service)
        found = []
        for incident in incidents:
            if (
                target.rule_owned
                or incident.id == target.id
                or not incident.is_open
                or incident.rule_owned
                or alert.received_at - incident.opened_at > self.window
            ):
                continue
            for other in incident.cause_services or {incident.origin_service or ""}:
                if other in ("", alert.service):
                    continue  # the same service elsewhere is not a learned link
                key = cause_key(other)
                if (
                    self.model.support(mine, key) >= self.min_support
                    and self.model.score(mine, key) >= self.threshold
                ):
                    found.append((incident.id, other, self.model.score(mine, key)))
                    break
        if not found:
            return (), ""
        names = ", ".join(f"{i} ({o}, J {j:.2f})" for i, o, j in found)
        return tuple(i for i, _, _ in found), f"merged {names}: failed together before"

    def rank(
        self, alert: AlertFacts, candidates: Sequence[IncidentFacts]
    ) -> tuple[IncidentId, str] | None:
        """Break a tie: the candidate with the clearly strongest learned association."""
        scores = []
        for incident in candidates:
            found = self.best(alert, incident)
            scores.append((found[0] if found else 0.0, incident, found))
        scores.sort(key=lambda x: -x[0])
        if not scores or scores[0][0] <= 0 or (len(scores) > 1 and scores[0][0] == scores[1][0]):
            return None
        score, incident, found = scores[0]
        a, b = found[2].split(":", 1)[1], found[3].split(":", 1)[1]
        return incident.id, f"tie broken by history: {a} and {b} fired together (J {score:.2f})"
