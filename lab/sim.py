"""The lab: estate + faults + cluster + the generator that writes metrics, logs, traces
and events for any stretch of time, in history (fast) or live (ticking with the clock).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from lab.alerts import AlertEngine
from lab.estate import Estate, Route, Service, load_estate, seed_for
from lab.faults import Fault, FaultSpec, place
from lab.kube import Cluster, Pod
from lab.loggen import LineMaker
from lab.logs import LogStore
from lab.model import (
    LATENCY_SIGMA,
    Evaluation,
    Model,
    RouteState,
    activation,
    daily,
    lognormal_cdf,
    poisson,
)
from lab.tracegen import generate_traces
from lab.traces import TraceStore
from lab.tsdb import TSDB, LabelKey, label_key

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BUCKET_ARRAY = np.array(BUCKETS)[:, None]
ACCESS_LINES_PER_S = 0.12  # sampled access-log lines per pod per second


class Lab:
    """Everything the APIs serve. ``clock`` is the lab's notion of now."""

    def __init__(
        self,
        seed: int = 7,
        estate: Estate | None = None,
        *,
        start: float,
        step: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seed = seed
        self.estate = estate or load_estate(seed=seed)
        self.clock = clock
        self.step = step
        self.start = start
        self.tsdb = TSDB()
        self.logs = LogStore()
        self.traces = TraceStore()
        self.faults: list[Fault] = []
        self.model = Model(self.estate, self.faults, seed)
        self.cluster = Cluster(self.estate, start, clock)
        self.cluster.on_change.append(self._on_change)
        self.flags = {s.name: dict(s.flags) for s in self.estate}
        self.alerts = AlertEngine(self)
        self.lock = threading.RLock()
        self._counters: dict[tuple, float] = {}
        self._label_keys: dict[tuple, LabelKey] = {}
        self._oom_seen: dict[str, float] = {}
        self._backlog = 40.0
        self._t = start - step
        self.samples = 0

    # -- faults and remediation -------------------------------------------------------------
    def inject(self, spec: FaultSpec | str, now: float | None = None) -> Fault:
        """Place a fault (relative starts count back from ``now``) and make its changes
        visible in the cluster: a bad deploy is a real rollout, a flag is really flipped."""
        with self.lock:
            now = self.clock() if now is None else now
            fault = place(spec, self.estate, now, fault_id=len(self.faults) + 1)
            svc = self.estate[fault.service]
            c = self.cluster
            if fault.kind == "bad_deploy":
                fault.version_from = c.image_version(svc.name)
                major, minor = [*fault.version_from.split("."), "0"][:2]
                fault.version_to = f"{major}.{int(minor) + 1}.0"
                c.set_image(svc.name, fault.version_to, fault.start)
            elif fault.kind == "bad_feature_flag":
                self.flags[svc.name][fault.flag or ""] = True
                c.add_event(
                    "Deployment",
                    svc.name,
                    "FeatureFlagChanged",
                    f"feature flag {fault.flag} set to true (config/{svc.name}-flags)",
                    fault.start,
                    component="flag-controller",
                )
            else:
                self._probe_events(fault)
            self.faults.append(fault)
            return fault

    def _probe_events(self, fault: Fault) -> None:
        message = {
            "cpu_saturation": 'Readiness probe failed: Get "http://{ip}:8080/healthz": '
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            "slow_dependency": 'Readiness probe failed: Get "http://{ip}:8080/healthz": '
            "context deadline exceeded",
            "db_pool_exhaustion": "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "packet_loss": 'Liveness probe failed: Get "http://{ip}:8080/livez": '
            "read tcp: i/o timeout",
            "noisy_neighbour": 'Readiness probe failed: Get "http://{ip}:8080/healthz": '
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            "cache_failure": "Liveness probe failed: dial tcp {ip}:6379: connect: connection "
            "refused",
        }.get(fault.kind)
        if message is None:
            return
        at = fault.start + fault.spec.ramp_s
        for pod in self.cluster.pods_of(fault.service):
            if pod.alive(at):
                self.cluster.add_event(
                    "Pod",
                    pod.name,
                    "Unhealthy",
                    message.format(ip=pod.ip),
                    at,
                    warning=True,
                    repeat_s=30.0,
                    until=lambda f=fault, p=pod: _min_end(f.end, p.died),
                )
        if fault.kind == "cache_failure":
            for pod in self.cluster.pods_of(fault.service):
                if pod.alive(at):
                    self.cluster.add_event(
                        "Pod",
                        pod.name,
                        "BackOff",
                        f"Back-off restarting failed container {pod.service} in pod {pod.name}",
                        at + 20,
                        warning=True,
                        repeat_s=60.0,
                        until=lambda f=fault: f.end,
                    )

    def clear(self, fault_id: int, cause: str = "manual", at: float | None = None) -> Fault:
        """End a fault. Takes no lock: it runs inside cluster callbacks (lock order is
        always lab, then cluster)."""
        fault = next(f for f in self.faults if f.id == fault_id)
        at = self.clock() if at is None else at
        if fault.end is None or fault.end > at:
            fault.end = at
            fault.cleared_by = cause
            if fault.kind == "bad_feature_flag":
                self.flags[fault.service][fault.flag or ""] = False
        return fault

    def active_faults(self, at: float | None = None) -> list[Fault]:
        t = self.clock() if at is None else at
        return [f for f in self.faults if f.active_at(t)]

    def _on_change(self, kind: str, service: str, at: float, detail: dict) -> None:
        """Cluster changes that remediate: rollback, restart and scale-up."""
        for f in self.active_faults(at):
            if f.service != service:
                continue
            if f.kind == "bad_deploy" and kind in ("rollback", "rollout"):
                # any rollout back to the version before the bad one is the fix
                if self.cluster.image_version(service) == f.version_from:
                    self.clear(f.id, "rollback", at)
            elif f.spec.action == "restart" and kind == "restart":
                self.clear(f.id, "restart", at)
            elif f.kind == "cpu_saturation" and kind == "scale" and detail["to"] > detail["from"]:
                self.clear(f.id, "scale", at)

    def set_flag(self, service: str, flag: str, enabled: bool) -> None:
        with self.lock:
            if service not in self.flags:
                raise KeyError(service)
            self.flags[service][flag] = enabled
            now = self.clock()
            self.cluster.add_event(
                "Deployment",
                service,
                "FeatureFlagChanged",
                f"feature flag {flag} set to {str(enabled).lower()} (config/{service}-flags)",
                now,
                component="flag-controller",
            )
            for f in self.active_faults(now):
                if (
                    f.kind == "bad_feature_flag"
                    and f.service == service
                    and f.flag == flag
                    and not enabled
                ):
                    self.clear(f.id, "disable_flag", now)

    def remediate(self, action: dict) -> dict:
        """Apply a remediation the way an operator would (the ground truth's format)."""
        now = self.clock()
        kind = action.get("action")
        name = action.get("deployment") or action.get("service")
        if name not in self.estate.services:
            raise ValueError(f"unknown deployment {name!r}")
        if kind == "rollback":
            self.cluster.rollback(name, now)
        elif kind == "restart":
            self.cluster.restart(name, now)
        elif kind == "scale":
            self.cluster.scale(
                name, int(action.get("replicas", self.cluster.replicas(name) * 2)), now
            )
        elif kind == "disable_flag":
            self.set_flag(name, str(action.get("flag")), False)
        else:
            raise ValueError(f"unknown action {kind!r}")
        return {
            "applied": action,
            "active_faults": [f.ground_truth(1) for f in self.active_faults(now)],
        }

    def ground_truth(self) -> list[dict]:
        out = []
        for f in self.faults:
            truth = f.ground_truth(self.estate[f.service].replicas)
            out.append(truth)
        return out

    # -- generation --------------------------------------------------------------------------------
    def generate_until(self, end: float, step: float | None = None) -> int:
        """Write every signal from the last generated instant up to ``end``."""
        step = step or self.step
        with self.lock:
            grid = np.arange(self._t + step, end + 1e-6, step)
            if len(grid) == 0:
                return 0
            before = self.samples
            for lo in range(0, len(grid), 480):
                chunk = grid[lo : lo + 480]
                self._generate(chunk)
                self._t = float(chunk[-1])
            return self.samples - before

    def _counter(self, key: tuple, labels: dict, times: np.ndarray, incs: np.ndarray) -> None:
        cum = np.cumsum(incs) + self._counters.get(key, 0.0)
        self._counters[key] = float(cum[-1])
        self._gauge(labels, times, cum)

    def _gauge(self, labels: dict, times: np.ndarray, values: np.ndarray) -> None:
        # a call site always builds its dict in the same order, so the values identify the
        # series; caching the sorted label key keeps live ticks cheap
        ident = tuple(labels.values())
        key = self._label_keys.get(ident)
        if key is None:
            key = self._label_keys[ident] = label_key(labels)
        self.tsdb.add_series_key(key, times, values)
        self.samples += len(times)

    def _generate(self, t: np.ndarray) -> None:
        rng = np.random.default_rng(seed_for(self.seed, "chunk", int(t[0] * 1000)))
        rnd = random.Random(seed_for(self.seed, "lines", int(t[0] * 1000)))
        dt = np.diff(np.concatenate([[self._t], t]))
        ev = self.model.evaluate(t)
        signals: dict[str, dict[str, np.ndarray]] = {}
        for svc in self.estate:
            signals[svc.name] = self._service(svc, t, dt, ev, rng, rnd)
        self._queue(t, dt, ev, signals)
        generate_traces(self, t, dt, rnd)
        self.alerts.observe(t, signals)

    def _service(
        self,
        svc: Service,
        t: np.ndarray,
        dt: np.ndarray,
        ev: Evaluation,
        rng: np.random.Generator,
        rnd: random.Random,
    ) -> dict[str, np.ndarray]:
        name, ns = svc.name, self.estate.namespace
        pods = [
            p
            for p in self.cluster.pods_of(name)
            if p.born <= t[-1] and (p.died is None or p.died > t[0])
        ]
        masks = [(t >= p.born) & (t < (p.died if p.died is not None else np.inf)) for p in pods]
        n_alive = np.maximum(np.sum(masks, axis=0), 1) if masks else np.ones_like(t)
        traffic = (
            daily(t) * (1 + 0.04 * rng.standard_normal(len(t))) * self.model.retry_factor(name, t)
        )
        states = {r.key: ev.route(name, r.key) for r in svc.routes}
        own_causes = [f for f in self.faults if f.service == name]
        total = np.zeros_like(t)
        errors = np.zeros_like(t)
        maker = LineMaker(svc, rnd)
        cpu_util = self.model.cpu_util(svc, t, n_alive)  # expected, like rate() smooths it
        mem_max = np.zeros_like(t)
        restarts = np.zeros_like(t)
        for pod, mask in zip(pods, masks, strict=True):
            idx = np.flatnonzero(mask)
            if len(idx) == 0:
                continue
            tp, dtp = t[idx], dt[idx]
            base = {
                "service": name,
                "namespace": ns,
                "pod": pod.name,
                "job": name,
                "instance": f"{pod.ip}:8080",
            }
            version = self._pod_version(pod)
            lines: list[tuple[int, str, str]] = []
            pod_errors = np.zeros(len(idx))
            for ri, route in enumerate(svc.routes):
                st = states[route.key]
                lam = route.rps * traffic[idx] / n_alive[idx] * dtp
                f500, f503, f504 = st.e500[idx], st.e503[idx], st.e504[idx]
                client = 0.012 if svc.tier == "edge" else 0.004 if svc.tier != "data" else 0.0
                f404 = client * 0.4
                f200 = np.clip(1 - f500 - f503 - f504 - client - f404, 0, 1)
                by_code = {
                    "200": f200,
                    "400": np.full(len(idx), client),
                    "404": np.full(len(idx), f404),
                    "500": f500,
                    "503": f503,
                    "504": f504,
                }
                route_total = np.zeros(len(idx))
                rlabels = {**base, "method": route.method, "route": route.path}
                five = {}
                for code, frac in by_code.items():
                    counts = rng.poisson(lam * frac).astype(float)
                    route_total += counts
                    if code[0] == "5":
                        five[code] = counts
                    self._counter(
                        (pod.name, "req", route.key, code),
                        {**rlabels, "__name__": "http_requests_total", "code": code},
                        tp,
                        counts,
                    )
                route_err = five["500"] + five["503"] + five["504"]
                pod_errors += route_err
                total[idx] += route_total
                errors[idx] += route_err
                median = st.latency_ms[idx] / 1000.0 * np.exp(0.05 * rng.standard_normal(len(idx)))
                hl = {**rlabels, "__name__": "http_request_duration_seconds_bucket"}
                cdf = lognormal_cdf(_BUCKET_ARRAY, median)
                for b, le in enumerate(BUCKETS):
                    incs = route_total * cdf[b]
                    key = (pod.name, "hist", route.key, le)
                    cum = np.cumsum(incs) + self._counters.get(key, 0.0)
                    self._counters[key] = float(cum[-1])
                    self._gauge({**hl, "le": _le(le)}, tp, np.floor(cum + 0.5))
                self._counter(
                    (pod.name, "hist", route.key, "inf"), {**hl, "le": "+Inf"}, tp, route_total
                )
                self._counter(
                    (pod.name, "count", route.key),
                    {**rlabels, "__name__": "http_request_duration_seconds_count"},
                    tp,
                    route_total,
                )
                self._counter(
                    (pod.name, "sum", route.key),
                    {**rlabels, "__name__": "http_request_duration_seconds_sum"},
                    tp,
                    route_total * median * math.exp(LATENCY_SIGMA**2 / 2),
                )
                self._route_lines(
                    maker, pod, route, ri, st, idx, tp, dtp, five, version, own_causes, lines, rnd
                )
            # resources
            util = self.model.cpu_util(svc, tp, n_alive[idx]) * (
                1 + 0.03 * rng.standard_normal(len(idx))
            )
            util = np.clip(util, 0.01, 0.995)
            self._counter(
                (pod.name, "cpu"),
                {**base, "__name__": "container_cpu_usage_seconds_total", "container": name},
                tp,
                util * svc.cpu_limit * dtp,
            )
            periods = 10.0 * dtp  # CFS periods of 100 ms
            throttled = rng.binomial(
                np.round(periods).astype(int), self.model.throttled_ratio(svc, tp)
            ).astype(float)
            cfs = {**base, "container": name}
            self._counter(
                (pod.name, "cfs"),
                {**cfs, "__name__": "container_cpu_cfs_periods_total"},
                tp,
                periods,
            )
            self._counter(
                (pod.name, "cfs_throttled"),
                {**cfs, "__name__": "container_cpu_cfs_throttled_periods_total"},
                tp,
                throttled,
            )
            mem = self.model.memory_fraction(svc, tp, pod.index, pod.born) * (
                1 + 0.01 * rng.standard_normal(len(idx))
            )
            mem = np.clip(mem, 0.05, 0.999)
            clean = self.model.memory_fraction(svc, tp, pod.index, pod.born)
            mem_max[idx] = np.maximum(mem_max[idx], clean)  # alerts use noise-free signals
            self._gauge(
                {**base, "__name__": "container_memory_working_set_bytes", "container": name},
                tp,
                np.round(mem * svc.memory_limit_bytes),
            )
            ooms = self._ooms(svc, pod, tp, maker, lines)
            restarts[idx] += ooms
            self._gauge(
                {
                    **base,
                    "__name__": "kube_pod_container_status_restarts_total",
                    "container": name,
                    "job": "kube-state-metrics",
                },
                tp,
                ooms + 0.0,
            )
            self._gauge({**base, "__name__": "up"}, tp, np.ones(len(idx)))
            for resource, unit, value in (
                ("cpu", "core", svc.cpu_limit),
                ("memory", "byte", svc.memory_limit_bytes),
            ):
                self._gauge(
                    {
                        **base,
                        "__name__": "kube_pod_container_resource_limits",
                        "container": name,
                        "resource": resource,
                        "unit": unit,
                        "job": "kube-state-metrics",
                    },
                    tp,
                    np.full(len(idx), value),
                )
            sat = np.maximum(util, mem)
            if svc.db_pool:
                pool = self.model.pool_usage(svc, tp)
                active = np.clip(
                    np.round(pool * svc.db_pool + rng.normal(0, 0.6, len(idx))), 0, svc.db_pool
                )
                self._gauge(
                    {**base, "__name__": "db_pool_connections_active", "pool": "primary"},
                    tp,
                    active,
                )
                self._gauge(
                    {**base, "__name__": "db_pool_connections_max", "pool": "primary"},
                    tp,
                    np.full(len(idx), float(svc.db_pool)),
                )
                pending = np.where(pool > 0.97, rng.poisson(25, len(idx)), 0).astype(float)
                self._gauge(
                    {**base, "__name__": "db_pool_pending_requests", "pool": "primary"}, tp, pending
                )
                sat = np.maximum(sat, active / svc.db_pool)
            self._gauge({**base, "__name__": "service_saturation_ratio"}, tp, np.round(sat, 4))
            self._gauge(
                {**base, "__name__": "app_build_info", "version": version}, tp, np.ones(len(idx))
            )
            for flag, _ in self.flags[name].items():
                on = self._flag_series(name, flag, tp)
                self._gauge({**base, "__name__": "feature_flag_enabled", "flag": flag}, tp, on)
            dropped = np.zeros(len(idx))
            for f in own_causes:
                if f.kind == "packet_loss":
                    dropped += rng.poisson(40 * activation(f, tp) * dtp)
            self._counter(
                (pod.name, "drop"),
                {
                    **base,
                    "__name__": "container_network_receive_packets_dropped_total",
                    "interface": "eth0",
                },
                tp,
                dropped,
            )
            self._extras(svc, pod, base, tp, dtp, idx, rng)
            # background and fault symptom lines
            self._symptom_lines(maker, svc, pod, tp, dtp, own_causes, lines, rnd)
            self._write_lines(name, pod.name, lines)
        ratio = np.where(total > 0, errors / np.maximum(total, 1), 0.0)
        expected = np.zeros_like(t)
        weight = np.zeros_like(t)
        p99 = np.zeros_like(t)
        for route in svc.routes:
            st = states[route.key]
            expected += route.rps * st.errors
            weight += route.rps
            p99 = np.maximum(p99, st.latency_ms / 1000 * math.exp(2.326 * LATENCY_SIGMA))
        out = {
            "error_ratio": expected / np.maximum(weight, 1e-9),
            "observed_error_ratio": ratio,
            "latency_p99_s": p99,
            "cpu_util": cpu_util,
            "memory_ratio": mem_max,
            "restarts": restarts,
            "requests": total,
        }
        out["throttled_ratio"] = self.model.throttled_ratio(svc, t)
        if svc.db_pool:
            out["pool_ratio"] = self.model.pool_usage(svc, t)
        if name == "cache":
            out["cache_hit_ratio"] = self.model.cache_hit_ratio(t)
        return out

    def _pod_version(self, pod: Pod) -> str:
        dep = self.cluster.deployments[pod.service]
        rs = next(r for r in dep.replica_sets if r.name == pod.rs)
        return rs.template["spec"]["containers"][0]["image"].rsplit(":", 1)[-1]

    def _flag_series(self, service: str, flag: str, t: np.ndarray) -> np.ndarray:
        on = np.full(len(t), 1.0 if self.estate[service].flags.get(flag) else 0.0)
        for f in self.faults:
            if f.kind == "bad_feature_flag" and f.service == service and f.flag == flag:
                end = np.inf if f.end is None else f.end
                on = np.where((t >= f.start) & (t < end), 1.0, on)
        return on

    def _ooms(
        self, svc: Service, pod: Pod, tp: np.ndarray, maker: LineMaker, lines: list
    ) -> np.ndarray:
        """OOM restarts of one pod so far; records each new one as a pod restart + event."""
        total = np.zeros(len(tp))
        for f in self.faults:
            if f.kind != "memory_leak" or f.service != svc.name:
                continue
            total += self.model.leak(f, tp, pod.index, pod.born)[1]
        seen = self._oom_seen.get(pod.name, 0.0)
        for i in np.flatnonzero(np.diff(np.concatenate([[seen], total])) > 0):
            at = float(tp[i])
            self.cluster.record_oom(pod, at)
            for ns_, level, line in maker.oom(int(at * 1e9), pod.restarts):
                lines.append((ns_, level, line))
        if len(total):
            self._oom_seen[pod.name] = float(total[-1])
        return total

    def _extras(
        self,
        svc: Service,
        pod: Pod,
        base: dict,
        tp: np.ndarray,
        dtp: np.ndarray,
        idx: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Service-specific metrics: cache hits, disk, certificates, batch jobs."""
        name = svc.name
        if name == "cache":
            calls = sum(r.rps for r in svc.routes) * daily(tp) * dtp
            hit = self.model.cache_hit_ratio(tp)
            self._counter(
                (pod.name, "hits"),
                {**base, "__name__": "cache_hits_total"},
                tp,
                rng.poisson(calls * hit).astype(float),
            )
            self._counter(
                (pod.name, "miss"),
                {**base, "__name__": "cache_misses_total"},
                tp,
                rng.poisson(calls * (1 - hit)).astype(float),
            )
        if name == "database":
            used = 0.86 + 0.0000004 * (tp - self.start)
            self._gauge(
                {
                    **base,
                    "__name__": "volume_used_ratio",
                    "persistentvolumeclaim": "data-database-0",
                },
                tp,
                np.round(used, 4),
            )
        if name == "gateway":
            expiry = 1_767_225_600.0  # the gateway certificate renews on 2026-01-01... it did not
            left = np.maximum(expiry + 86400 * 330 - tp, 86400 * 9)
            self._gauge(
                {**base, "__name__": "ssl_certificate_expiry_seconds", "cn": "shop.example.com"},
                tp,
                left,
            )
        if name == "notifications":
            age = tp % 2820.0
            self._gauge(
                {
                    **base,
                    "__name__": "batch_job_last_success_age_seconds",
                    "job_name": "nightly-export",
                },
                tp,
                age,
            )

    def _queue(self, t: np.ndarray, dt: np.ndarray, ev: Evaluation, signals: dict) -> None:
        """Orders published by checkout, consumed by notifications; backlog in between."""
        if "queue" not in self.estate.services or "notifications" not in self.estate.services:
            return
        pub_route = (
            self.estate["checkout"].routes[0] if "checkout" in self.estate.services else None
        )
        publish = (pub_route.rps if pub_route else 4.0) * daily(t)
        consumer = self.estate["notifications"].routes[0]
        st = ev.route("notifications", consumer.key)
        capacity = (
            publish
            * 1.6
            * consumer.latency_ms
            / np.maximum(st.latency_ms, 1)
            * (1 - np.clip(st.errors, 0, 1))
        )
        depth = np.zeros_like(t)
        backlog = self._backlog
        for i in range(len(t)):
            backlog = max(5.0, backlog + (publish[i] - capacity[i]) * dt[i])
            depth[i] = backlog
        self._backlog = backlog
        pods = [p for p in self.cluster.pods_of("queue") if p.died is None]
        pod = pods[0] if pods else None
        labels = {
            "service": "queue",
            "namespace": self.estate.namespace,
            "pod": pod.name if pod else "",
            "job": "queue",
            "queue": "orders",
            "__name__": "queue_messages_ready",
        }
        self._gauge(labels, t, np.round(depth))
        signals["queue"]["queue_depth"] = depth

    # -- logs --------------------------------------------------------------------------------------
    def _route_lines(
        self,
        maker: LineMaker,
        pod: Pod,
        route: Route,
        ri: int,
        st: RouteState,
        idx: np.ndarray,
        tp: np.ndarray,
        dtp: np.ndarray,
        five: dict,
        version: str,
        own: list[Fault],
        lines: list,
        rnd: random.Random,
    ) -> None:
        n_routes = len(maker.svc.routes)
        kinds = {f.kind: f for f in own}
        for j, i in enumerate(idx):
            ns0 = int((tp[j] - dtp[j]) * 1e9)
            span = int(dtp[j] * 1e9)
            n_access = poisson(rnd, ACCESS_LINES_PER_S * dtp[j] / n_routes)
            for _ in range(n_access):
                at = ns0 + int(rnd.random() * span)
                lines.append((at, *maker.access(at, route, float(st.latency_ms[i]))))
            for code in ("500", "503", "504"):
                n = min(int(five[code][j]), 6)
                if n == 0:
                    continue
                for _ in range(poisson(rnd, n * 0.7) if n < 6 else n):
                    at = ns0 + int(rnd.random() * span)
                    upstream = (
                        st.blame503[i]
                        if code == "503"
                        else st.blame504[i]
                        if code == "504"
                        else None
                    )
                    cause = ""
                    if code == "500":
                        cause = (
                            "bad_feature_flag"
                            if "bad_feature_flag" in kinds
                            and ri == 0
                            and ("bad_deploy" not in kinds or rnd.random() < 0.5)
                            else ("bad_deploy" if "bad_deploy" in kinds else "")
                        )
                        if cause == "bad_feature_flag":
                            upstream = kinds["bad_feature_flag"].flag
                    elif upstream is None:
                        cause = next(
                            (
                                k
                                for k in ("db_pool_exhaustion", "memory_leak", "cache_failure")
                                if k in kinds
                            ),
                            "",
                        )
                    elif self._lossy(maker.svc.name, upstream, float(tp[j])):
                        cause = "packet_loss"
                    lines.append((at, *maker.error(at, route, int(code), cause, upstream, version)))

    def _lossy(self, caller: str, callee: str, at: float) -> bool:
        return any(
            f.kind == "packet_loss" and f.service == callee and f.peer == caller and f.active_at(at)
            for f in self.faults
        )

    def _symptom_lines(
        self,
        maker: LineMaker,
        svc: Service,
        pod: Pod,
        tp: np.ndarray,
        dtp: np.ndarray,
        own: list[Fault],
        lines: list,
        rnd: random.Random,
    ) -> None:
        related = [(f, f.kind) for f in own]
        related += [
            (f, "cache_fallback")
            for f in self.faults
            if f.kind == "cache_failure" and f.service in svc.depends_on
        ]
        related += [
            (f, "packet_loss")
            for f in self.faults
            if f.kind == "packet_loss" and f.peer == svc.name
        ]
        for j in range(len(tp)):
            ns0 = int((tp[j] - dtp[j]) * 1e9)
            span = int(dtp[j] * 1e9)
            for _ in range(poisson(rnd, 0.02 * dtp[j])):
                at = ns0 + int(rnd.random() * span)
                lines.append((at, *maker.background(at)))
            for f, cause in related:
                a = float(activation(f, tp[j : j + 1])[0])
                if a <= 0.05 or (cause == "packet_loss" and f.service == svc.name):
                    continue
                detail = {"target": f.service, "flag": f.flag}
                if cause == "memory_leak":
                    detail["frac"] = float(
                        self.model.leak(f, tp[j : j + 1], pod.index, pod.born)[0][0]
                    )
                for _ in range(poisson(rnd, 0.1 * dtp[j] * a)):
                    at = ns0 + int(rnd.random() * span)
                    out = maker.symptom(at, cause, detail)
                    if out is not None:
                        lines.append((at, *out))

    def _write_lines(self, service: str, pod: str, lines: list[tuple[int, str, str]]) -> None:
        by_level: dict[str, list[tuple[int, str]]] = {}
        for at, level, line in lines:
            by_level.setdefault(level, []).append((at, line))
        for level, entries in by_level.items():
            self.logs.append(
                {
                    "service": service,
                    "namespace": self.estate.namespace,
                    "pod": pod,
                    "level": level,
                },
                entries,
            )


def _le(x: float) -> str:
    return (
        repr(float(x)).rstrip("0").rstrip(".")
        if x < 1
        else str(int(x))
        if float(x).is_integer()
        else repr(x)
    )


def _min_end(a: float | None, b: float | None) -> float | None:
    vals = [v for v in (a, b) if v is not None]
    return min(vals) if vals else None


def build_history(
    seed: int = 7,
    duration_s: float = 7200,
    faults: Sequence[FaultSpec | str] = (),
    end: float | None = None,
    step: float = 15.0,
    estate: Estate | None = None,
    clock: Callable[[], float] | None = None,
) -> Lab:
    """A lab with ``duration_s`` of history ending at ``end`` (default: now)."""
    end = time.time() if end is None else end
    end = math.floor(end / step) * step if clock is None else end
    lab = Lab(seed, estate, start=end - duration_s, step=step, clock=clock or (lambda: end))
    for spec in faults:
        lab.inject(spec, now=end)
    lab.generate_until(end)
    return lab
