"""Topology: alerts on services close in the dependency graph belong to one incident.

Symptoms travel upstream: when ``payments-db`` fails, ``payments`` (which depends on it)
errors, then ``checkout``, then the ``frontend``. So an alert joins an open incident when
its service depends, within ``max_hops``, on a service already affected; or when it is a
dependency of the incident's probable origin (a deeper cause that alerted a little late),
in which case it becomes the new origin. The probable origin is the most downstream
affected service: the first signal for root-cause analysis.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from incidents.correlation.kinds import Kind
from incidents.correlation.strategies import humanize_delta, open_to
from incidents.correlation.types import Action, AlertFacts, Decision, IncidentFacts

UNRELATED = 1_000


class Topology:
    """A service dependency graph from a plain ``{service: [dependencies]}`` mapping."""

    def __init__(self, dependencies: Mapping[str, Iterable[str]]) -> None:
        deps: dict[str, tuple[str, ...]] = {s: tuple(d) for s, d in dependencies.items()}
        for targets in list(deps.values()):
            for target in targets:
                deps.setdefault(target, ())
        self.dependencies = deps
        # _down[a][b] = hops from a to b following "depends on" edges (a needs b).
        self._down = {service: self._bfs(service) for service in deps}
        self._near_down: dict[tuple[str, int], frozenset[str]] = {}

    def _bfs(self, start: str) -> dict[str, int]:
        hops = {start: 0}
        queue = deque([start])
        while queue:
            current = queue.popleft()
            for nxt in self.dependencies[current]:
                if nxt not in hops:
                    hops[nxt] = hops[current] + 1
                    queue.append(nxt)
        return hops

    def __contains__(self, service: object) -> bool:
        return service in self.dependencies

    @property
    def services(self) -> list[str]:
        return sorted(self.dependencies)

    def hops(self, dependent: str, dependency: str) -> int | None:
        """How many edges ``dependent`` is above ``dependency``, or None if it does not
        (transitively) depend on it."""
        return self._down.get(dependent, {}).get(dependency)

    def distance(self, a: str, b: str) -> int:
        """Hops along dependency edges in either direction; ``UNRELATED`` if neither
        depends on the other."""
        down, up = self.hops(a, b), self.hops(b, a)
        options = [h for h in (down, up) if h is not None]
        return min(options) if options else UNRELATED

    def dependencies_within(self, service: str, max_hops: int) -> frozenset[str]:
        """Services ``service`` depends on within ``max_hops`` (itself included)."""
        key = (service, max_hops)
        if key not in self._near_down:
            self._near_down[key] = frozenset(
                s for s, h in self._down.get(service, {}).items() if h <= max_hops
            )
        return self._near_down[key]

    def probable_origin(self, services: Iterable[str]) -> str | None:
        """The most downstream affected service: one no other affected service lies below;
        among several, the one that explains most of the others."""
        affected = [s for s in dict.fromkeys(services) if s in self]
        if not affected:
            return None
        roots = [
            s for s in affected if not any(t != s and self.hops(s, t) is not None for t in affected)
        ]
        return max(
            roots,
            key=lambda r: sum(1 for s in affected if self.hops(s, r) is not None),
        )


def arrow(dependent: str, dependency: str) -> str:
    return f"{dependent} → {dependency} dependency"


@dataclass
class TopologyStrategy:
    """Join the open incident whose probable origin this alert's service depends on
    (a symptom upstream of it) or which depends on this alert's service (a deeper cause,
    only while the incident is young), within a time window.

    Only an incident's roots (its origin and services that joined as causes or by learned
    co-occurrence) with at least ``min_root_alerts`` distinct alerts extend its reach: a
    stray alert does not pull in everything that depends on its service, and a lone noise
    alert on a shared database does not swallow the next outage above it. Candidates are
    ranked by hops to the nearest root; equally near incidents are left to the
    tie-breakers (learned co-occurrence, then text similarity).
    """

    topology: Topology
    max_hops: int = 4
    min_root_alerts: int = 2
    window: timedelta = timedelta(minutes=10)
    cause_window: timedelta = timedelta(minutes=2)
    # a failure's symptoms reach a caller this long after its dependency started failing
    travel: tuple[timedelta, timedelta] = (timedelta(seconds=5), timedelta(seconds=40))
    # and all of one failure's alerts on a service fire within this of each other
    burst: timedelta = timedelta(seconds=15)
    name: str = "topology"

    def relate(
        self, service: str, alert: AlertFacts, incident: IncidentFacts
    ) -> tuple[int, str, str | None, str | None] | None:
        """(rank, why, new origin, new root) if ``service`` belongs with ``incident``.

        Any cause or symptom on a root joins (after stronger links when the root has little
        evidence and the alert adds none); a symptom joins when it is upstream of a root
        with enough evidence; a cause on a dependency of the origin joins as
        the new probable origin while the incident is young and its origin shows only
        symptoms. Other alerts (housekeeping) and causes on services above the origin
        (their own failure) do not join. Only a cause alert on a dependency becomes the new
        origin: a lone symptom there (a slow query, a noisy warning) is as likely its own
        small problem, and a symptom-only incident it opens is merged later if a cause
        below both alerts.
        """
        if alert.kind == Kind.OTHER:
            return None
        named = alert.labels.get("upstream")
        if (
            named
            and named != service
            and named in incident.services
            and self.topology.hops(service, named) is not None
        ):
            return -1, f"{service} names {named} as the dependency it is failing on", None, None
        roots = {r for r in incident.roots() or incident.services if r in self.topology}
        if service in roots:
            strong = alert.kind == Kind.CAUSE or incident.evidence(service) >= self.min_root_alerts
            return (
                (0 if strong else self.max_hops + 1),
                f"{service} is a probable origin",
                None,
                None,
            )
        if alert.kind != Kind.CAUSE:
            strong = {r for r in roots if incident.evidence(r) >= self.min_root_alerts}
            below = self.topology.dependencies_within(service, self.max_hops) & strong
            if below:
                hops, root = min((self.topology.hops(service, r) or 0, r) for r in below)
                plural = "hop" if hops == 1 else "hops"
                return hops, f"{arrow(service, root)} ({hops} {plural})", None, None
        if alert.kind != Kind.CAUSE or not self.unexplained(incident, alert):
            return None
        origin = incident.origin_service
        hops = self.topology.hops(origin, service) if origin in self.topology else None
        if hops is None or hops > self.max_hops:
            return None
        why = f"{arrow(origin, service)}: {service} may be the cause"
        return hops, why, service, service

    def arrival(
        self, service: str, alert: AlertFacts, incident: IncidentFacts, rank: int
    ) -> tuple[tuple[float, float], str]:
        """How likely it is that ``incident``'s failure raised this alert, as a sort key
        (lower first) and a note for the timeline.

        A named dependency and the failing service itself come first. Then the incident
        whose failure reached this service moments ago (within ``burst``): one failure's
        symptoms reach a caller together. Then, among failures that reached one of this
        service's direct dependencies recently enough to have travelled here (``travel``),
        the one that got there first: symptoms move one hop at a time, so of two failures
        that can reach a caller, the one at its door earlier arrives first, however deep
        its origin. Then hops to a root; equal keys go to the tie-breakers."""
        if rank <= 0:
            return (rank, 0.0), ""
        now = alert.received_at
        arrived = incident.service_first.get(service)
        if arrived is not None and now - arrived <= self.burst:
            return (0.5, -arrived.timestamp()), ""
        soonest, latest = self.travel
        reached = [
            (at, dep)
            for dep in self.topology.dependencies.get(service, ())
            if (at := incident.service_first.get(dep)) is not None
            and soonest <= now - at <= latest
            and incident.evidence(dep) >= self.min_root_alerts
        ]
        if reached:
            at, dep = min(reached)
            return (0.75, at.timestamp()), f"; {dep} failed {humanize_delta(now - at)} before"
        return (1.0 + rank, 0.0), ""

    def unexplained(self, incident: IncidentFacts, alert: AlertFacts) -> bool:
        """Young, open, only symptoms so far: its cause may still show up below it."""
        return (
            incident.is_open
            and not incident.rule_owned
            and not incident.cause_services
            and alert.received_at - incident.opened_at <= self.cause_window
        )

    def decide(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], now: datetime
    ) -> Decision | None:
        service = alert.service
        if alert.status != "firing" or not service or service not in self.topology:
            return None
        ranked = []
        for incident in incidents:
            if not open_to(incident, alert, self.window):
                continue
            found = self.relate(service, alert, incident)
            if found is not None:
                seen = incident.service_seen.get(service)
                recency = (
                    -seen.timestamp()
                    if seen and (alert.received_at - seen).total_seconds() <= 60
                    else 0.0
                )
                key, arrival = self.arrival(service, alert, incident, found[0])
                ranked.append(
                    (key, recency, -incident.last_alert_at.timestamp(), incident, found, arrival)
                )
        if not ranked:
            return self.adopt(alert, incidents) if alert.kind == Kind.CAUSE else None
        # equally likely: the incident whose symptoms reached this service last is the one
        # this alert most likely comes from (one failure's symptoms reach a caller
        # together); only incidents not seen on it at all are left to the tie-breakers
        ranked.sort(key=lambda item: item[:3])
        best, recency, _, target, (rank, why, new_origin, new_root), arrival = ranked[0]
        ties = tuple(
            item[3].id for item in ranked[1:] if item[0] == best and item[1] == recency == 0.0
        )
        # say why this failure and not another one below it
        why_first = arrival if len(ranked) > 1 else ""
        origin = new_origin or target.origin_service
        since = humanize_delta(alert.received_at - target.opened_at)
        origin_note = f"; probable origin {origin}" if origin else ""
        merges: tuple = ()
        if alert.kind == Kind.CAUSE and origin == service:
            merges = self.explained(service, alert, target, incidents)
            ties = tuple(t for t in ties if t not in merges)
            if merges:
                names = ", ".join(str(m) for m in merges)
                origin_note += f"; merged {names}: their symptoms are upstream of {service}"
        return Decision(
            alert.id,
            Action.ATTACH,
            target.id,
            self.name,
            f"{why}, {since} after the first alert{why_first}{origin_note}",
            origin_service=origin,
            root_service=new_root,
            alternatives=ties,
            score=float(rank),
            merges=merges,
        )

    def adopt(self, alert: AlertFacts, incidents: Sequence[IncidentFacts]) -> Decision | None:
        """A cause alert below several young symptom-only incidents: they are one failure
        seen from different callers. Join the largest and merge the others."""
        service = alert.service or ""
        by_id = {i.id: i for i in incidents}
        found = [by_id[i] for i in self.explained(service, alert, None, incidents)]
        if not found:
            return None
        target = max(found, key=lambda i: (i.alert_count, -i.opened_at.timestamp()))
        merges = tuple(i.id for i in found if i.id != target.id)
        callers = ", ".join(sorted({s for i in found for s in i.roots() or i.services}))
        merged = f"; merged {', '.join(str(m) for m in merges)}" if merges else ""
        return Decision(
            alert.id,
            Action.ATTACH,
            target.id,
            self.name,
            f"{callers} depend on {service}, which is failing: {service} is the probable "
            f"origin, {humanize_delta(alert.received_at - target.opened_at)} after the first "
            f"alert{merged}",
            origin_service=service,
            root_service=service,
            merges=merges,
        )

    def explained(
        self,
        cause: str,
        alert: AlertFacts,
        target: IncidentFacts | None,
        incidents: Sequence[IncidentFacts],
    ) -> tuple:
        """Young open incidents with only symptoms, all on services that depend on
        ``cause``: the same failure seen from another branch before its cause alerted."""
        out = []
        for incident in incidents:
            if (target and incident.id == target.id) or not self.unexplained(incident, alert):
                continue
            roots = incident.roots() or incident.services
            if roots and all(
                (h := self.topology.hops(r, cause)) is not None and h <= self.max_hops
                for r in roots
            ):
                out.append(incident.id)
        return tuple(out)
