"""Fault kinds, their ground truth and the remediation that clears each.

A fault is local to its root-cause service (or, for packet loss, to one call edge); the
model in ``lab.model`` carries its effects upstream along the call graph.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from lab.estate import Estate


@dataclass(frozen=True)
class FaultKind:
    name: str
    description: str
    action: str  # the remediation: rollback | scale | restart | disable_flag
    ramp_s: float  # how long the onset takes (a rolling update, a filling pool...)
    tiers: tuple[str, ...] = ("edge", "core", "support", "data")
    needs_db_pool: bool = False


KINDS: dict[str, FaultKind] = {
    k.name: k
    for k in [
        FaultKind(
            "bad_deploy",
            "a new version throws 5xx after a rollout",
            "rollback",
            60.0,
            ("edge", "core", "support"),
        ),
        FaultKind("cpu_saturation", "CPU pinned at the limit, requests queue", "scale", 120.0),
        FaultKind(
            "memory_leak", "working set grows until the container is OOMKilled", "restart", 0.0
        ),
        FaultKind("slow_dependency", "a service answers slowly; callers time out", "restart", 90.0),
        FaultKind(
            "db_pool_exhaustion",
            "connections leak until the pool is empty",
            "restart",
            180.0,
            ("core",),
            needs_db_pool=True,
        ),
        FaultKind(
            "packet_loss",
            "packets dropped between a caller and this service",
            "restart",
            30.0,
            ("core", "data", "support"),
        ),
        FaultKind(
            "bad_feature_flag",
            "a feature flag turned on breaks one route",
            "disable_flag",
            20.0,
            ("edge", "core", "support"),
        ),
        FaultKind(
            "cache_failure",
            "the cache refuses connections; callers fall back to the DB",
            "restart",
            30.0,
            ("data",),
        ),
        FaultKind(
            "noisy_neighbour",
            "a co-located pod starves this service's pods of CPU (throttling, not usage)",
            "restart",
            60.0,
            ("edge", "core", "support"),
        ),
    ]
}

DEFAULT_TARGETS = {
    "bad_deploy": "payments",
    "cpu_saturation": "search",
    "memory_leak": "cart",
    "slow_dependency": "inventory",
    "db_pool_exhaustion": "payments",
    "packet_loss": "payments",
    "bad_feature_flag": "checkout",
    "cache_failure": "cache",
    "noisy_neighbour": "catalog",
}

_ids = itertools.count(1)
_DURATION = re.compile(r"^(-?)(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r} (e.g. -20m, 90s, 1h)")
    value = float(m.group(2)) * _UNITS[m.group(3)]
    return -value if m.group(1) else value


@dataclass
class FaultSpec:
    """A fault to inject: ``start`` is an epoch time, or relative to now when ``relative``.

    String form: ``kind:service[/peer][@-20m][~10m]`` (``peer`` is the caller side of a
    packet loss; ``~`` gives a duration after which the fault clears by itself).
    """

    kind: str
    service: str
    start: float = 0.0
    relative: bool = True
    duration: float | None = None
    peer: str | None = None
    flag: str | None = None

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        m = re.match(r"^(\w+):([\w-]+)(?:/([\w-]+))?(?:@(-?[\d.]+\w*))?(?:~([\d.]+\w*))?$", text)
        if not m:
            raise ValueError(f"bad fault {text!r}: expected kind:service[@-20m][~10m]")
        kind, service, peer, at, dur = m.groups()
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        return cls(
            kind=kind,
            service=service,
            start=parse_duration(at) if at else 0.0,
            duration=parse_duration(dur) if dur else None,
            peer=peer,
        )

    def validate(self, estate: Estate) -> None:
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.service not in estate.services:
            raise ValueError(f"unknown service {self.service!r}")
        svc = estate[self.service]
        if svc.tier not in kind.tiers:
            raise ValueError(f"{self.kind} does not apply to {svc.tier} service {svc.name}")
        if kind.needs_db_pool and not svc.db_pool:
            raise ValueError(f"{svc.name} has no connection pool")
        if self.kind == "packet_loss" and not estate.callers_of(self.service):
            raise ValueError(f"{svc.name} has no callers to lose packets with")
        if self.peer is not None and self.peer not in estate.callers_of(self.service):
            raise ValueError(f"{self.peer} does not call {self.service}")


@dataclass
class Fault:
    """A fault placed on the timeline; ``end`` is set when it clears."""

    id: int
    kind: str
    service: str
    start: float
    end: float | None = None
    peer: str | None = None
    flag: str | None = None
    version_from: str | None = None
    version_to: str | None = None
    cleared_by: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def spec(self) -> FaultKind:
        return KINDS[self.kind]

    def active_at(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def remediation(self, replicas: int) -> dict:
        action = self.spec.action
        if action == "disable_flag":
            return {"action": action, "service": self.service, "flag": self.flag}
        if action == "scale":
            return {"action": action, "deployment": self.service, "replicas": replicas * 2}
        return {"action": action, "deployment": self.service}

    def ground_truth(self, replicas: int) -> dict:
        truth = {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "root_cause": {"service": self.service, "kind": self.kind},
            "start": self.start,
            "end": self.end,
            "remediation": self.remediation(replicas),
            "description": self.spec.description,
        }
        if self.peer:
            truth["peer"] = self.peer
        if self.flag:
            truth["flag"] = self.flag
        if self.version_to:
            truth["version_from"], truth["version_to"] = self.version_from, self.version_to
        if self.cleared_by:
            truth["cleared_by"] = self.cleared_by
        return truth


def place(spec: FaultSpec | str, estate: Estate, now: float, fault_id: int | None = None) -> Fault:
    """Turn a spec into a fault on the timeline (relative starts count back from ``now``)."""
    if isinstance(spec, str):
        spec = FaultSpec.parse(spec)
    spec.validate(estate)
    start = now + spec.start if spec.relative else spec.start
    fault = Fault(
        id=next(_ids) if fault_id is None else fault_id,
        kind=spec.kind,
        service=spec.service,
        start=start,
        end=start + spec.duration if spec.duration is not None else None,
        peer=spec.peer,
        flag=spec.flag,
    )
    if fault.kind == "packet_loss" and fault.peer is None:
        fault.peer = estate.callers_of(fault.service)[0]
    if fault.kind == "bad_feature_flag" and fault.flag is None:
        off = [f for f, on in estate[fault.service].flags.items() if not on]
        fault.flag = (off or list(estate[fault.service].flags) or ["experiment"])[0]
    return fault
