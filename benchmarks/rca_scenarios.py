"""Scenarios for ``make bench-rca``: a fault, the Prometheus that holds its telemetry (served
over loopback HTTP), the estate's services with their dependencies, the alert that opens
the incident, and the ground truth. Two families:

- ``lab``: the telemetry lab (``lab.sim.build_history``) with every fault kind, several
  seeds, overlapping faults and background noise (a harmless rollout elsewhere); the first
  alert the fault raises anchors the analysis, as an incident would.
- ``cadvisor``: an RCAEval-style estate of our own (a Sock-Shop-like graph, its own
  generator below): only cAdvisor ``container_*`` metrics and exporter request metrics
  labelled ``service=<name>``, a few minutes of normal data, faults cpu / mem / disk /
  delay / loss, only the user-facing ``front-end`` alerting, data ending shortly after the
  alert. Nothing of the lab's names or thresholds.

The benchmark reads these only through the product's Prometheus client; the lab is
imported here, never by the product.
"""

from __future__ import annotations

import math
import random
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from incidents.correlation.topology import Topology
from lab.faults import KINDS as LAB_KINDS
from lab.prometheus_api import serve
from lab.server import LabServer
from lab.sim import build_history
from lab.tsdb import TSDB

# lab fault kind -> the hypothesis kind RCA should name
LAB_KIND_TO_HYPOTHESIS = {
    "bad_deploy": "bad_deploy",
    "cpu_saturation": "resource_exhaustion",
    "memory_leak": "resource_exhaustion",
    "slow_dependency": "slow_dependency",
    "db_pool_exhaustion": "resource_exhaustion",
    "packet_loss": "network_loss",
    "bad_feature_flag": "config_or_flag",
    "cache_failure": "unavailable",
    "noisy_neighbour": "noisy_neighbour",
}
CADVISOR_KIND_TO_HYPOTHESIS = {
    "cpu": "resource_exhaustion",
    "mem": "resource_exhaustion",
    "disk": "resource_exhaustion",
    "delay": "slow_dependency",
    "loss": "network_loss",
}


@dataclass
class Scenario:
    name: str
    family: str
    kind: str  # the fault kind (lab's or cadvisor's)
    truth: list[str]  # root-cause services (two for overlapping faults)
    truth_kind: str  # the hypothesis kind expected for truth[0]
    prometheus_url: str
    dependencies: dict[str, list[str]]
    alert_at: float  # the first alert's startsAt (epoch seconds)
    alerting: list[str]  # services whose alerts fired by then
    data_start: float  # the earliest data the Prometheus holds
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    kubernetes_url: str | None = None

    @property
    def probable_origin(self) -> str | None:
        return Topology(self.dependencies).probable_origin(self.alerting)


# -- the lab family ------------------------------------------------------------------------------

LAB_TARGETS = {
    "bad_deploy": ["payments", "catalog", "inventory", "cart", "auth"],
    "cpu_saturation": ["search", "catalog", "auth", "payments", "inventory"],
    "memory_leak": ["cart", "inventory", "search", "checkout", "auth"],
    "slow_dependency": ["inventory", "catalog", "payments", "database", "auth"],
    "db_pool_exhaustion": ["payments", "inventory", "catalog", "checkout", "payments"],
    "packet_loss": ["payments", "inventory", "catalog", "cart", "database"],
    "bad_feature_flag": ["checkout", "search", "cart", "payments", "catalog"],
    "cache_failure": ["cache", "cache", "cache", "cache", "cache"],
    "noisy_neighbour": ["catalog", "search", "payments", "inventory", "cart"],
}
HISTORY_S = 3600.0
FAULT_AGO_S = 1500.0  # the fault starts 25 minutes before the end of the history


def lab_specs(seeds: list[int]) -> list[tuple[str, str, list[str], int, list[str]]]:
    """(name, kind, fault strings, seed, noise rollouts) for every kind x seed, plus
    overlapping pairs: two unrelated faults 90 s apart (both are the truth when both started
    before the first alert)."""
    specs = []
    for i, seed in enumerate(seeds):
        for kind in LAB_KINDS:
            target = LAB_TARGETS[kind][i % len(LAB_TARGETS[kind])]
            if kind == "memory_leak":
                fault = f"{kind}:{target}@-{int(FAULT_AGO_S + 900)}s"  # a leak needs time
            else:
                fault = f"{kind}:{target}@-{int(FAULT_AGO_S)}s"
            noise = [] if (i + len(kind)) % 3 else [_noise_target(target, seed)]
            specs.append((f"lab/{kind}/{target}/s{seed}", kind, [fault], seed, noise))
        # overlapping: two unrelated faults a few minutes apart
        rnd = random.Random(seed)
        a, b = rnd.sample(["bad_deploy", "cpu_saturation", "slow_dependency", "noisy_neighbour"], 2)
        ta = LAB_TARGETS[a][i % 5]
        tb = next(t for t in LAB_TARGETS[b] if t != ta)
        faults = [f"{a}:{ta}@-{int(FAULT_AGO_S)}s", f"{b}:{tb}@-{int(FAULT_AGO_S - 90)}s"]
        specs.append((f"lab/overlap/{a}+{b}/s{seed}", a, faults, seed, []))
    return specs


def _noise_target(target: str, seed: int) -> str:
    options = [s for s in ("notifications", "gateway", "search", "auth", "cart") if s != target]
    return options[seed % len(options)]


@contextmanager
def lab_scenario(
    name: str, kind: str, faults: list[str], seed: int, noise: list[str]
) -> Iterator[Scenario | None]:
    end = 1_790_000_000.0 + seed * 86_400.0
    lab = build_history(seed, HISTORY_S, faults, end=end)
    for service in noise:  # a harmless rollout elsewhere, ten minutes before the fault
        version = lab.cluster.image_version(service)
        major, minor = [*version.split("."), "0"][:2]
        lab.cluster.set_image(service, f"{major}.{int(minor) + 1}.1", end - FAULT_AGO_S - 600)
    truth_faults = lab.faults
    start = min(f.start for f in truth_faults)
    fired = sorted(
        (h["at"], h["labels"]["service"])
        for h in lab.alerts.history
        if h["status"] == "firing" and h["at"] >= start
    )
    if not fired:
        yield None
        return
    alert_at = fired[0][0]
    alerting = list(dict.fromkeys(s for at, s in fired if at <= alert_at + 120))
    server = LabServer(lab, port=0).start()
    try:
        deps = {s.name: list(s.depends_on) for s in lab.estate}
        yield Scenario(
            name=name,
            family="lab",
            kind=kind,
            # a fault that starts after the alert cannot be what the alert is about
            truth=[f.service for f in truth_faults if f.start <= alert_at],
            truth_kind=LAB_KIND_TO_HYPOTHESIS[kind],
            prometheus_url=server.base_url,
            kubernetes_url=server.base_url,
            dependencies=deps,
            alert_at=alert_at,
            alerting=alerting,
            data_start=end - HISTORY_S,
            labels={s: {"service": s} for s in deps},
        )
    finally:
        server.stop()


# -- the cAdvisor (RCAEval-style) family ---------------------------------------------------------

SOCK_SHOP = {
    "front-end": ["orders", "carts", "catalogue", "user"],
    "orders": ["carts", "user", "payment", "shipping", "orders-db"],
    "carts": ["carts-db"],
    "catalogue": ["catalogue-db"],
    "user": ["user-db"],
    "payment": [],
    "shipping": ["rabbitmq"],
    "queue-master": ["rabbitmq"],
    "rabbitmq": [],
    "orders-db": [],
    "carts-db": [],
    "catalogue-db": [],
    "user-db": [],
}
CADVISOR_KINDS = ("cpu", "mem", "disk", "delay", "loss")
CADVISOR_TARGETS = ["carts", "catalogue", "orders", "payment", "user", "shipping", "front-end"]


def cadvisor_specs(seeds: list[int]) -> list[tuple[str, str, str, int]]:
    specs = []
    for i, seed in enumerate(seeds):
        for j, kind in enumerate(CADVISOR_KINDS):
            target = CADVISOR_TARGETS[(i * 3 + j) % len(CADVISOR_TARGETS)]
            specs.append((f"cadvisor/{kind}/{target}/s{seed}", kind, target, seed))
    return specs


def _callers(graph: dict[str, list[str]]) -> dict[str, list[str]]:
    up: dict[str, list[str]] = {s: [] for s in graph}
    for s, deps in graph.items():
        for d in deps:
            up[d].append(s)
    return up


def generate_cadvisor(
    kind: str, target: str, seed: int, *, step: float = 5.0
) -> tuple[TSDB, float, float, float]:
    """Telemetry of one fault on the Sock-Shop-like estate: (tsdb, data start, fault start,
    alert time). Normal for 6-10 minutes, then the fault; latency and errors travel to the
    callers (scaled by how much of their work goes through the faulty service); the alert
    fires when the front-end's latency or error ratio stays high for a minute."""
    rng = np.random.default_rng(seed * 7919 + zlib.crc32(f"{kind}/{target}".encode()) % 10_000)
    normal_s = float(rng.integers(360, 600))
    start = 1_800_000_000.0 + seed * 3600.0
    fault_at = start + normal_s
    end_s = normal_s + 360.0
    t = start + np.arange(0.0, end_s, step)
    graph = SOCK_SHOP
    # per-service behaviour
    base_latency = {s: float(rng.uniform(0.005, 0.08)) for s in graph}
    base_rps = {s: float(rng.uniform(5, 60)) for s in graph}
    base_cpu = {s: float(rng.uniform(0.05, 0.6)) for s in graph}
    base_mem = {s: float(rng.uniform(80, 900)) * 2**20 for s in graph}
    base_net = {s: float(rng.uniform(2e4, 4e5)) for s in graph}
    base_fs = {s: float(rng.uniform(1e3, 5e5)) for s in graph}
    ramp = np.clip((t - fault_at) / float(rng.uniform(15, 60)), 0, 1)
    severity = float(rng.uniform(0.7, 1.3))
    own_latency = {s: np.zeros_like(t) for s in graph}  # added seconds
    own_errors = {s: np.zeros_like(t) for s in graph}  # error ratio
    cpu = {s: np.full_like(t, base_cpu[s]) for s in graph}
    mem = {s: np.full_like(t, base_mem[s]) for s in graph}
    fs = {s: np.full_like(t, base_fs[s]) for s in graph}
    drops = {s: np.zeros_like(t) for s in graph}
    if kind == "cpu":
        cpu[target] = cpu[target] + ramp * severity * 1.5
        own_latency[target] += ramp * severity * base_latency[target] * 4
    elif kind == "mem":
        mem[target] = mem[target] + ramp * severity * 1.5e9 * np.clip((t - fault_at) / 240, 0, 1)
        own_latency[target] += ramp * severity * base_latency[target] * 1.5
    elif kind == "disk":
        fs[target] = fs[target] + ramp * severity * 4e7
        own_latency[target] += ramp * severity * base_latency[target] * 2.5
    elif kind == "delay":
        own_latency[target] += ramp * severity * float(rng.uniform(0.2, 1.0))
    elif kind == "loss":
        drops[target] = ramp * severity * float(rng.uniform(20, 200))
        own_errors[target] += ramp * severity * float(rng.uniform(0.05, 0.3))
        own_latency[target] += ramp * severity * 0.2
    # propagate to callers, one hop per 10 s, diluted by the share of calls
    order = _topo_order(graph)
    latency = {}
    errors = {}
    for s in order:  # dependencies first
        lat = base_latency[s] + own_latency[s]
        err = 0.002 + own_errors[s]
        for d in graph[s]:
            share = 0.6 if len(graph[s]) <= 2 else float(rng.uniform(0.3, 0.8))
            lag = int(10 / step)
            lat = lat + share * np.concatenate([np.zeros(lag), (latency[d] - base_latency[d])])[
                : len(t)
            ].clip(0)
            err = err + share * np.concatenate([np.zeros(lag), errors[d] - 0.002])[: len(t)].clip(0)
        latency[s] = lat
        errors[s] = np.clip(err, 0, 1)
    # the alert: the front-end's mean latency over twice its normal, or errors over 5 %, for 60 s
    fe = latency["front-end"]
    bad = (fe > 2 * base_latency["front-end"]) | (errors["front-end"] > 0.05)
    alert_at = None
    run = 0
    for i, flag in enumerate(bad):
        run = run + 1 if flag else 0
        if run * step >= 60:
            alert_at = float(t[i])
            break
    if alert_at is None:
        alert_at = float(t[-1])
    keep = t <= alert_at + 60  # the data ends shortly after the alert, as a replay cuts it
    tsdb = TSDB()
    daily = 1 + 0.05 * np.sin(2 * math.pi * (t - start) / 1800.0)
    for s in graph:
        pods = 1 if s.endswith("-db") or s == "rabbitmq" else int(rng.integers(1, 3))
        for p in range(pods):
            pod = f"{s}-{rng.integers(10**8, 10**9):x}-{p}"
            base = {"service": s, "pod": pod, "namespace": "sock-shop", "container": s}

            def noise(scale: float) -> np.ndarray:
                return 1 + scale * rng.standard_normal(len(t))

            rps = base_rps[s] / pods * daily * noise(0.05)
            cpu_rate = np.clip(cpu[s] / pods * noise(0.08), 0.001, None)
            _counter(
                tsdb, {**base, "__name__": "container_cpu_usage_seconds_total"}, t, cpu_rate, keep
            )
            _gauge(
                tsdb,
                {**base, "__name__": "container_memory_working_set_bytes"},
                t,
                mem[s] / pods * noise(0.01),
                keep,
            )
            _gauge(
                tsdb,
                {**base, "__name__": "container_memory_usage_bytes"},
                t,
                mem[s] / pods * 1.2 * noise(0.01),
                keep,
            )
            for direction in ("receive", "transmit"):
                _counter(
                    tsdb,
                    {**base, "__name__": f"container_network_{direction}_bytes_total"},
                    t,
                    np.clip(base_net[s] / pods * daily * noise(0.1), 0, None),
                    keep,
                )
                _counter(
                    tsdb,
                    {**base, "__name__": f"container_network_{direction}_packets_total"},
                    t,
                    np.clip(base_net[s] / 800 / pods * daily * noise(0.1), 0, None),
                    keep,
                )
            _counter(
                tsdb,
                {**base, "__name__": "container_network_receive_packets_dropped_total"},
                t,
                np.clip(drops[s] / pods * noise(0.3), 0, None),
                keep,
            )
            for op in ("reads", "writes"):
                _counter(
                    tsdb,
                    {**base, "__name__": f"container_fs_{op}_bytes_total"},
                    t,
                    np.clip(fs[s] / pods * noise(0.15), 0, None),
                    keep,
                )
            if s.endswith("-db") or s == "rabbitmq":
                continue  # the data stores export no request metrics
            lat = np.clip(latency[s] * noise(0.06), 1e-4, None)
            err = np.clip(errors[s], 0, 1)
            for code, frac in (("200", 1 - err), ("500", err)):
                _counter(
                    tsdb,
                    {**base, "__name__": "http_requests_total", "code": code},
                    t,
                    np.clip(rps * frac, 0, None),
                    keep,
                )
            _counter(
                tsdb, {**base, "__name__": "http_request_duration_seconds_count"}, t, rps, keep
            )
            _counter(
                tsdb, {**base, "__name__": "http_request_duration_seconds_sum"}, t, rps * lat, keep
            )
    return tsdb, start, fault_at, alert_at


def _topo_order(graph: dict[str, list[str]]) -> list[str]:
    seen: list[str] = []

    def visit(s: str) -> None:
        if s in seen:
            return
        for d in graph[s]:
            visit(d)
        seen.append(s)

    for s in graph:
        visit(s)
    return seen


def _counter(tsdb: TSDB, labels: dict, t: np.ndarray, rate: np.ndarray, keep) -> None:
    dt = np.diff(np.concatenate([[t[0] - (t[1] - t[0])], t]))
    tsdb.add_series(labels, t[keep], (np.cumsum(rate * dt) + 1000.0)[keep])


def _gauge(tsdb: TSDB, labels: dict, t: np.ndarray, values: np.ndarray, keep) -> None:
    tsdb.add_series(labels, t[keep], values[keep])


@contextmanager
def cadvisor_scenario(name: str, kind: str, target: str, seed: int) -> Iterator[Scenario]:
    tsdb, start, _fault_at, alert_at = generate_cadvisor(kind, target, seed)
    server, url = serve(tsdb)
    try:
        yield Scenario(
            name=name,
            family="cadvisor",
            kind=kind,
            truth=[target],
            truth_kind=CADVISOR_KIND_TO_HYPOTHESIS[kind],
            prometheus_url=url,
            dependencies={s: list(d) for s, d in SOCK_SHOP.items()},
            alert_at=alert_at,
            alerting=["front-end"],
            data_start=start,
            labels={s: {"service": s} for s in SOCK_SHOP},
        )
    finally:
        server.shutdown()
        server.server_close()


def now() -> float:
    return time.perf_counter()
