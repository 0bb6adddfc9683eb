"""Alert storms with ground truth, for the correlation benchmark and its tests.

A storm is what Alertmanager would send during a bad minute: several overlapping faults,
each a root-cause service whose symptoms travel upstream to the services that depend on
it (with delays, and not always to every dependent), plus faults on infrastructure the
dependency graph does not show (a shared cache cluster, a node), background noise on
unrelated services, flapping alerts (fire, resolve, fire) and re-sent notifications of
alerts already firing. Every notification carries the id of the fault (or noise event)
that caused it, so a grouping can be scored. Everything is deterministic from a seed.

Concurrent faults are independent: no fault's root (nor a shared resource's member
service) is another one's or depends, even indirectly, on another one's; two faults on one
service at once could not be told apart by anyone. When two faults sit on one dependency
chain the upstream one's alerts are also symptoms of the downstream one and no one, human
or engine, can tell whose they are; the blast radii still overlap on shared callers (the
gateway), which is the interesting case.
A symptom alert that two faults would both raise (the gateway calling two failing
services) is one alert, with one fingerprint: it belongs to the fault whose propagation
actually raised it first in time, whichever fault was generated first. That is the causal
answer and the only one a grouping can be expected to find: at the moment the alert
fires, only the earlier fault's failures have reached that service.

The estate is a plain ``{service: [dependencies]}`` mapping: the lab's estate
(``estate_topology``, read from ``lab.estate``), or a generated layered one
(``layered_topology``) so the benchmark can vary the shape of the graph.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from lab.estate import load_estate

Topology = Mapping[str, Sequence[str]]

_EDGE = ["gateway", "web", "mobile-bff", "partner-api"]
_CORE = [
    "auth", "users", "catalog", "search", "recommendations", "cart", "checkout", "orders",
    "payments", "fraud", "shipping", "inventory", "pricing", "promotions", "reviews",
    "notifications", "email", "ledger", "billing", "accounts", "media", "loyalty",
    "tax", "returns", "warehouse", "invoices", "geo", "quotes",
]  # fmt: skip
_DATA = [
    "orders-db", "users-db", "payments-db", "catalog-db", "search-index", "kafka",
    "redis-main", "object-store", "ledger-db", "inventory-db", "session-store", "mq",
]  # fmt: skip


HOP_DELAY_S = (6.0, 25.0)  # a failure reaches a caller this long after its dependency
POD_SPREAD_S = 6.0  # a caller's per-pod alerts fire within this of the failure reaching it
SERVICE_SPREAD_S = 10.0  # and its service-wide ones within this


def estate_topology(seed: int = 7, path: str | Path | None = None) -> dict[str, list[str]]:
    """The lab's estate (the default shop unless ``path`` names another estate file) as a
    dependency mapping: storms propagate along the same call graph the lab simulates."""
    return {s.name: list(s.depends_on) for s in load_estate(path, seed=seed)}


def layered_topology(seed: int, services: int = 24) -> dict[str, list[str]]:
    """A random layered estate: edge services call core services, which call other core
    services and data stores. Deterministic from ``seed``."""
    rng = np.random.default_rng(seed)
    n_edge = max(1, services // 10)
    n_data = max(2, services // 4)
    n_core = max(2, services - n_edge - n_data)
    edge = [str(s) for s in rng.choice(_EDGE, size=min(n_edge, len(_EDGE)), replace=False)]
    core = [str(s) for s in rng.choice(_CORE, size=min(n_core, len(_CORE)), replace=False)]
    data = [str(s) for s in rng.choice(_DATA, size=min(n_data, len(_DATA)), replace=False)]
    graph: dict[str, list[str]] = {}
    for i, name in enumerate(core):
        lower = core[i + 1 :]
        deps = set()
        if lower:
            deps |= set(
                rng.choice(lower, size=min(len(lower), int(rng.integers(0, 3))), replace=False)
            )
        deps.add(str(rng.choice(data)))
        if rng.random() < 0.3:
            deps.add(str(rng.choice(data)))
        graph[name] = sorted(str(d) for d in deps)
    called = {d for deps in graph.values() for d in deps}
    orphans = [c for c in core if c not in called]
    for name in edge:
        picks = set(rng.choice(core[: max(3, len(core) // 2)], size=3, replace=False))
        graph[name] = sorted(str(p) for p in picks)
    for orphan in orphans:  # every core service has a caller
        graph[edge[int(rng.integers(len(edge)))]].append(orphan)
    for name in edge:
        graph[name] = sorted(set(graph[name]))
    for name in data:
        graph[name] = []
    return graph


def reachable(topology: Topology, service: str) -> set[str]:
    """Everything ``service`` depends on, directly or not."""
    seen: set[str] = set()
    todo = [service]
    while todo:
        for dep in topology.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def dependents(topology: Topology) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s: [] for s in topology}
    for service, deps in topology.items():
        for dep in deps:
            out.setdefault(dep, []).append(service)
    return {k: sorted(v) for k, v in out.items()}


@dataclass(frozen=True)
class StormShape:
    """How a storm looks. ``target_alerts`` is the number of notifications sent (re-sends
    are added until it is reached); the faults start within ``overlap_s`` of each other."""

    name: str = "default"
    faults: int = 4
    infra_faults: int = 1  # a shared resource the graph does not show
    node_faults: int = 1
    noise: int = 40
    flapping: int = 10
    target_alerts: int = 2000
    overlap_s: float = 40.0
    duration_s: float = 60.0
    pods: tuple[int, int] = (4, 12)
    propagation: float = 0.8  # chance a dependent shows symptoms, decaying per hop


@dataclass(frozen=True)
class StormAlert:
    """One webhook notification of one alert."""

    fingerprint: str
    name: str
    status: str
    at: float  # seconds since the storm started
    service: str | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    truth: str  # the fault or noise event that caused it

    def received_at(self, start: datetime) -> datetime:
        return start + timedelta(seconds=self.at)


@dataclass
class Storm:
    seed: int
    shape: StormShape
    topology: dict[str, list[str]]
    alerts: list[StormAlert] = field(default_factory=list)
    start: datetime = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    # the failing services of each fault (a shared resource's members for infrastructure
    # faults): ground truth for reference scorers, never shown to a grouping under test
    roots: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def truth_groups(self) -> int:
        return len({a.truth for a in self.alerts if a.status == "firing"})


@dataclass(frozen=True)
class EstateProfile:
    """What the dependency graph does not show but failures reveal: services sharing an
    undeclared resource, and which nodes run which service's pods."""

    couplings: tuple[tuple[str, tuple[str, ...]], ...]  # (resource, services)
    nodes: Mapping[str, tuple[str, ...]]  # node -> services with pods on it


def profile(topology: Topology, seed: int) -> EstateProfile:
    """Hidden structure of an estate, fixed per estate (history and storms share it)."""
    rng = np.random.default_rng(seed + 7919)
    services = sorted(s for s, deps in topology.items() if deps)  # not the data stores
    resources = ["redis-sessions", "nfs-shared", "memcached-2", "dns-internal"]
    couplings = []
    for resource in resources[: max(1, len(services) // 8)]:
        members = rng.choice(
            services, size=min(len(services), int(rng.integers(2, 4))), replace=False
        )
        couplings.append((resource, tuple(sorted(str(m) for m in members))))
    nodes: dict[str, list[str]] = {}
    for i in range(max(3, len(topology) // 3)):
        nodes[f"node-{i + 1}"] = sorted(
            str(s) for s in rng.choice(sorted(topology), size=min(4, len(topology)), replace=False)
        )
    return EstateProfile(tuple(couplings), {k: tuple(v) for k, v in nodes.items()})


def fingerprint(labels: Mapping[str, str]) -> str:
    text = "\x00".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


ROOT_CAUSES = {
    # leaves of the graph (data stores)
    "data": [
        ("DatastoreConnectionsSaturated", "critical", "{s}: {v:.0f}% of connections in use"),
        ("DatastoreHighQueryLatency", "warning", "{s}: p99 query latency {v:.0f} ms"),
        ("DatastoreReplicationLag", "warning", "{s}: replica {v:.0f} s behind"),
    ],
    "crashloop": [
        ("KubePodCrashLooping", "critical", "{s}: pod restarting {v:.0f} times in 10 min"),
        ("HighErrorRate", "critical", "{s}: 5xx ratio {v:.1f}% over 5 min"),
    ],
    "memory": [
        ("ContainerMemoryNearLimit", "warning", "{s}: memory at {v:.0f}% of limit"),
        ("KubePodOOMKilled", "critical", "{s}: container OOM-killed"),
        ("HighLatencyP99", "warning", "{s}: p99 latency {v:.0f} ms"),
    ],
    "deploy": [
        ("HighErrorRate", "critical", "{s}: 5xx ratio {v:.1f}% over 5 min"),
        ("KubeDeploymentReplicasMismatch", "warning", "{s}: {v:.0f} replicas unavailable"),
    ],
}
SYMPTOMS = [
    ("HighErrorRate", "critical", "{s}: 5xx ratio {v:.1f}% over 5 min", True),
    ("HighLatencyP99", "warning", "{s}: p99 latency {v:.0f} ms", True),
    ("UpstreamTimeouts", "warning", "{s}: calls to {u} timing out ({v:.0f}/s)", False),
    ("SLOErrorBudgetBurn", "critical", "{s}: burning error budget {v:.0f}x too fast", False),
]
NOISE = [
    ("CertificateExpiringSoon", "info", "{s}: TLS certificate expires in {v:.0f} days"),
    ("KubeJobFailed", "warning", "{s}: job {s}-cron failed"),
    ("DiskSpaceLow", "warning", "{s}: volume {v:.0f}% full"),
    ("KubeHpaMaxedOut", "warning", "{s}: autoscaler at max replicas"),
    ("HighLatencyP99", "warning", "{s}: p99 latency {v:.0f} ms"),
    ("HighErrorRate", "warning", "{s}: 5xx ratio {v:.1f}% over 5 min"),
]


class _Builder:
    def __init__(self, storm: Storm, rng: np.random.Generator, estate: EstateProfile) -> None:
        self.storm = storm
        self.rng = rng
        self.estate = estate
        self.firing: dict[str, StormAlert] = {}  # fingerprint -> first firing notification
        self.pods: dict[str, list[str]] = {}

    def pods_of(self, service: str) -> list[str]:
        if service not in self.pods:
            lo, hi = self.storm.shape.pods
            count = int(self.rng.integers(lo, hi + 1))
            stem = hashlib.sha1(service.encode()).hexdigest()[:8]
            self.pods[service] = [f"{service}-{stem[:6]}-{stem[6:]}{i}" for i in range(count)]
        return self.pods[service]

    def fire(
        self,
        name: str,
        severity: str,
        template: str,
        service: str | None,
        at: float,
        truth: str,
        **extra: str,
    ) -> None:
        labels = {"alertname": name, "severity": severity, "namespace": "prod", **extra}
        if service:
            labels["service"] = service
        fp = fingerprint(labels)
        known = self.firing.get(fp)
        if known is not None and known.at <= at:  # already firing from an earlier cause
            return
        value = float(self.rng.uniform(5, 95))
        summary = template.format(
            s=service or extra.get("node", ""), v=value, u=extra.get("upstream", "")
        )
        alert = StormAlert(
            fp, name, "firing", round(at, 3), service, labels, {"summary": summary}, truth
        )
        self.firing[fp] = alert
        if known is not None:  # this cause's propagation raised it first: it is this one's
            self.storm.alerts[self.storm.alerts.index(known)] = alert
        else:
            self.storm.alerts.append(alert)

    def per_pod(self, name, severity, template, service, at, truth, spread=POD_SPREAD_S, **extra):
        for pod in self.pods_of(service):
            self.fire(
                name,
                severity,
                template,
                service,
                at + self.rng.uniform(0, spread),
                truth,
                pod=pod,
                **extra,
            )


def _fault(
    b: _Builder,
    truth: str,
    roots: Sequence[str],
    start: float,
    kind: str,
    origin_labels: Mapping[str, str],
) -> None:
    """Root-cause alerts on ``roots`` and symptoms travelling upstream from them."""
    topology = b.storm.topology
    b.storm.roots[truth] = tuple(roots)
    up = dependents(topology)
    shape = b.storm.shape
    for root in roots:
        catalogue = ROOT_CAUSES["data" if not topology.get(root) else kind]
        for name, severity, template in catalogue:
            at = start + b.rng.uniform(0, 15)
            if name.startswith("Kube") or name.startswith("Container"):
                b.per_pod(name, severity, template, root, at, truth, **origin_labels)
            else:
                b.fire(name, severity, template, root, at, truth, **origin_labels)
    frontier = [(r, 0, start) for r in roots]
    seen = set(roots)
    while frontier:
        service, hop, at = frontier.pop(0)
        for caller in up.get(service, []):
            if caller in seen or b.rng.random() > shape.propagation ** (hop + 1) + 0.15:
                continue
            seen.add(caller)
            t = at + b.rng.uniform(*HOP_DELAY_S)
            for name, severity, template, pod_level in SYMPTOMS:
                if b.rng.random() < 0.25:
                    continue
                extra = {"upstream": service} if name == "UpstreamTimeouts" else {}
                if pod_level:
                    b.per_pod(name, severity, template, caller, t, truth, **extra)
                else:
                    b.fire(
                        name,
                        severity,
                        template,
                        caller,
                        t + b.rng.uniform(0, SERVICE_SPREAD_S),
                        truth,
                        **extra,
                    )
            frontier.append((caller, hop + 1, t))


def generate_storm(topology: Topology, seed: int, shape: StormShape | None = None) -> Storm:
    """A deterministic alert storm on ``topology`` (see the module docstring)."""
    shape = shape or StormShape()
    rng = np.random.default_rng(seed)
    storm = Storm(seed=seed, shape=shape, topology={k: list(v) for k, v in topology.items()})
    estate = profile(topology, estate_seed(topology))
    b = _Builder(storm, rng, estate)
    services = sorted(topology)
    starts = iter(
        sorted(
            rng.uniform(
                0, shape.overlap_s, size=shape.faults + shape.infra_faults + shape.node_faults
            )
        )
    )
    below = {service: reachable(topology, service) for service in services}

    def independent(candidate: str, chosen: list[str]) -> bool:
        return all(
            candidate != c and candidate not in below[c] and c not in below[candidate]
            for c in chosen
        )

    # shared resources first, then faults independent of them and of each other
    shared: list[tuple[str, tuple[str, ...]]] = []
    taken: list[str] = []
    for _ in range(shape.infra_faults):
        options = [c for c in estate.couplings if all(independent(m, taken) for m in c[1])]
        if not options:
            break
        resource, members = options[int(rng.integers(len(options)))]
        shared.append((resource, members))
        taken.extend(members)
    roots: list[str] = []
    for service in rng.permutation(services):
        if len(roots) < shape.faults and independent(str(service), taken + roots):
            roots.append(str(service))
    for i, root in enumerate(roots):
        kind = str(rng.choice(["crashloop", "memory", "deploy"]))
        _fault(b, f"fault-{i}:{root}", [root], next(starts), kind, {})
    for i, (resource, members) in enumerate(shared):
        _fault(
            b,
            f"infra-{i}:{resource}",
            list(members),
            next(starts),
            "deploy",
            {"upstream": resource},
        )
    for _ in range(shape.infra_faults - len(shared)):
        next(starts)
    for i in range(shape.node_faults):
        node = str(rng.choice(sorted(estate.nodes)))
        at = next(starts)
        truth = f"node-{i}:{node}"
        b.fire("KubeNodeNotReady", "critical", "{s} is not ready", None, at, truth, node=node)
        for service in estate.nodes[node]:
            pod = b.pods_of(service)[0]
            b.fire(
                "KubePodNotReady",
                "warning",
                "{s}: pod not ready",
                service,
                at + rng.uniform(2, 20),
                truth,
                pod=pod,
                node=node,
            )
    for i in range(shape.noise):
        name, severity, template = NOISE[int(rng.integers(len(NOISE)))]
        service = str(rng.choice(services))
        b.fire(
            name,
            severity,
            template,
            service,
            float(rng.uniform(0, shape.duration_s)),
            f"noise-{i}",
            pod=b.pods_of(service)[-1],
        )
    _flap(b, rng, shape, services)
    _resend(b, rng, shape)
    owner = {fp: alert.truth for fp, alert in b.firing.items()}
    storm.alerts = [  # every notification of an alert carries the truth of its first firing
        a if a.truth == owner[a.fingerprint] else replace(a, truth=owner[a.fingerprint])
        for a in storm.alerts
    ]
    storm.alerts.sort(key=lambda a: (a.at, a.fingerprint, a.status))
    return storm


def _flap(b: _Builder, rng: np.random.Generator, shape: StormShape, services: list[str]) -> None:
    """Flapping alerts: half are background noise of their own, half are alerts of a fault
    that resolve and fire again."""
    for i in range(shape.flapping):
        if i % 2 == 0 or not b.storm.alerts:
            service = str(rng.choice(services))
            at = float(rng.uniform(0, shape.duration_s / 2))
            b.fire(
                "ProbeFlapping",
                "warning",
                "{s}: blackbox probe unstable",
                service,
                at,
                f"flap-{i}",
                instance=f"https://{service}.shop.internal/healthz",
            )
            base = b.storm.alerts[-1]
        else:
            base = b.storm.alerts[int(rng.integers(len(b.storm.alerts)))]
        t = base.at
        for _ in range(2):
            t += float(rng.uniform(4, 12))
            b.storm.alerts.append(_copy(base, "resolved", t))
            t += float(rng.uniform(4, 12))
            b.storm.alerts.append(_copy(base, "firing", t))


def _copy(alert: StormAlert, status: str, at: float) -> StormAlert:
    return StormAlert(
        alert.fingerprint,
        alert.name,
        status,
        round(at, 3),
        alert.service,
        alert.labels,
        alert.annotations,
        alert.truth,
    )


def _resend(b: _Builder, rng: np.random.Generator, shape: StormShape) -> None:
    """Re-sent notifications of alerts still firing, until the storm has its size."""
    flapping = {a.fingerprint for a in b.storm.alerts if a.status == "resolved"}
    firing = [a for a in b.storm.alerts if a.status == "firing" and a.fingerprint not in flapping]
    missing = shape.target_alerts - len(b.storm.alerts)
    if missing <= 0 or not firing:
        return
    picks = rng.integers(len(firing), size=missing)
    for index in picks:
        base = firing[int(index)]
        at = base.at + float(rng.uniform(1, max(2.0, shape.duration_s - base.at + 5)))
        b.storm.alerts.append(_copy(base, "firing", at))


def estate_seed(topology: Topology) -> int:
    text = "|".join(f"{k}:{','.join(sorted(v))}" for k, v in sorted(topology.items()))
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def history(
    topology: Topology, seed: int, storms: int = 30, *, end: datetime | None = None
) -> list[tuple[datetime, list[StormAlert]]]:
    """Past incidents on an estate (the alerts of each ground-truth incident), from one
    small storm a day before ``end``: what co-occurrence learns from."""
    end = end or Storm(0, StormShape(), {}).start
    shape = StormShape(
        name="history",
        faults=2,
        infra_faults=1,
        node_faults=0,
        noise=5,
        flapping=0,
        target_alerts=0,
    )
    past = []
    for day in range(storms):
        storm = generate_storm(topology, seed * 1000 + day, shape)
        groups: dict[str, list[StormAlert]] = {}
        for alert in storm.alerts:
            groups.setdefault(alert.truth, []).append(alert)
        at = end - timedelta(days=storms - day)
        past.extend((at, alerts) for alerts in groups.values())
    return past
