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

from incidents.correlation.strategies import humanize_delta
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
    """Join the open incident nearest in the dependency graph, within a time window.

    Candidates are ranked by distance to their probable origin; equally near incidents
    are left to the tie-breakers (learned co-occurrence, then text similarity).
    """

    topology: Topology
    max_hops: int = 2
    window: timedelta = timedelta(minutes=10)
    cause_window: timedelta = timedelta(minutes=5)
    name: str = "topology"

    def decide(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], now: datetime
    ) -> Decision | None:
        service = alert.service
        if alert.status != "firing" or not service or service not in self.topology:
            return None
        below = self.topology.dependencies_within(service, self.max_hops)
        ranked: list[tuple[int, float, IncidentFacts, str, str | None]] = []
        for incident in incidents:
            if not incident.is_open or alert.received_at - incident.last_alert_at > self.window:
                continue
            origin = incident.origin_service
            if service in incident.services or below & incident.services:
                near = min(
                    (s for s in below & incident.services),
                    key=lambda s: (self.topology.hops(service, s) or 0, s),
                    default=service,
                )
                rank = self.topology.distance(service, origin) if origin else 0
                why = f"{service} is already affected" if service == near else arrow(service, near)
                ranked.append((rank, -incident.last_alert_at.timestamp(), incident, why, origin))
            elif (
                origin
                and origin in self.topology
                and (hops := self.topology.hops(origin, service)) is not None
                and hops <= self.max_hops
                and alert.received_at - incident.opened_at <= self.cause_window
            ):
                why = f"{arrow(origin, service)}: {service} is the new probable origin"
                ranked.append((hops, -incident.last_alert_at.timestamp(), incident, why, service))
        if not ranked:
            return None
        ranked.sort(key=lambda item: item[:2])
        best_rank, _, target, why, origin = ranked[0]
        ties = tuple(item[2].id for item in ranked[1:] if item[0] == best_rank)
        since = humanize_delta(alert.received_at - target.opened_at)
        origin_note = f"; probable origin {origin}" if origin else ""
        return Decision(
            alert.id,
            Action.ATTACH,
            target.id,
            self.name,
            f"{why}, {since} after the first alert{origin_note}",
            origin_service=origin,
            alternatives=ties,
            score=float(best_rank),
        )
