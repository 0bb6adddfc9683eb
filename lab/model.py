"""The signal model: expected latency, error mix and resource use of every route and
service over a time grid, with fault effects carried up the call graph.

Everything here is an analytic function of time (no hidden state), so history and live
ticks agree, and a caller can look at a callee "a hop earlier" (``HOP_DELAY_S``): that is
how symptoms reach upstream services later than the root cause shows them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from lab.estate import Estate, Service, seed_for
from lab.faults import Fault

HOP_DELAY_S = 20.0  # how much later a caller feels a callee's trouble
RECOVERY_S = 45.0  # how long symptoms take to fade once a fault is cleared
TIMEOUT_MS = {"edge": 2500.0}  # client timeouts by caller tier; others use the default
DEFAULT_TIMEOUT_MS = 1000.0
LEAK_PERIOD_S = 540.0  # a leaking pod goes from normal to OOMKilled in about nine minutes
LATENCY_SIGMA = 0.55  # log-normal spread of request latency
BLIP_BUCKET_S = 1800.0


def activation(fault: Fault, t: np.ndarray) -> np.ndarray:
    """0 before the fault, ramping to 1 over its onset, fading after it is cleared."""
    ramp = max(fault.spec.ramp_s, 1e-6)
    up = np.clip((t - fault.start) / ramp, 0.0, 1.0)
    up = np.where(t >= fault.start, np.maximum(up, 1e-3 if fault.spec.ramp_s else 1.0), 0.0)
    if fault.end is not None:
        up = up * np.clip(1.0 - (t - fault.end) / RECOVERY_S, 0.0, 1.0)
    return up


def daily(t: np.ndarray) -> np.ndarray:
    """Traffic through the day: quiet at night, a peak in the afternoon (UTC)."""
    phase = (t % 86400.0) / 86400.0
    return 1.0 + 0.35 * np.sin(2 * np.pi * (phase - 0.375))


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26: plenty for bucket fractions, and no scipy needed."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (
        ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * np.exp(-x * x)
    return sign * y


def lognormal_cdf(
    x: float | np.ndarray, median: np.ndarray, sigma: float = LATENCY_SIGMA
) -> np.ndarray:
    """P(latency <= x); ``x`` may be a column of bucket bounds (one row per bound)."""
    z = (np.log(x) - np.log(np.maximum(median, 1e-9))) / (sigma * np.sqrt(2))
    return 0.5 * (1.0 + erf(z))


def poisson(rnd: random.Random, lam: float) -> int:
    """Knuth's method: small means only, which is all the line and trace sampling needs."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(rnd.gauss(lam, math.sqrt(lam)) + 0.5))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rnd.random()
        if p <= limit:
            return k
        k += 1


@dataclass
class RouteState:
    """Expected behaviour of one route: median latency and the share of each 5xx code."""

    latency_ms: np.ndarray
    e500: np.ndarray
    e503: np.ndarray
    e504: np.ndarray
    blame503: list[str | None]  # per step: which callee the 503s come from (None: own)
    blame504: list[str | None]

    @property
    def errors(self) -> np.ndarray:
        return self.e500 + self.e503 + self.e504


class Model:
    def __init__(self, estate: Estate, faults: list[Fault], seed: int) -> None:
        self.estate = estate
        self.faults = faults
        self.seed = seed
        self._blips: dict[tuple[str, int], tuple[float, float, float] | None] = {}

    def faults_on(self, service: str, kind: str | None = None) -> list[Fault]:
        return [f for f in self.faults if f.service == service and kind in (None, f.kind)]

    def blips(self, service: str, t: np.ndarray) -> np.ndarray:
        """Harmless short latency blips: a few per service per day, from the seed."""
        mult = np.ones_like(t)
        for bucket in np.unique(np.floor(t / BLIP_BUCKET_S)):
            blip = self._blip(service, int(bucket))
            if blip is not None:
                at, length, factor = blip
                mult = np.where((t >= at) & (t < at + length), factor, mult)
        return mult

    def _blip(self, service: str, bucket: int) -> tuple[float, float, float] | None:
        key = (service, bucket)
        if key not in self._blips:
            rng = np.random.default_rng(seed_for(self.seed, "blip", service, bucket))
            blip = None
            if rng.random() < 0.2:
                at = bucket * BLIP_BUCKET_S + rng.uniform(0, BLIP_BUCKET_S - 200)
                blip = (at, rng.uniform(45, 120), rng.uniform(1.8, 3.0))
            self._blips[key] = blip
        return self._blips[key]

    def leak(
        self, fault: Fault, t: np.ndarray, pod_index: int, born: float = -np.inf
    ) -> tuple[np.ndarray, np.ndarray]:
        """(fraction of the way to the memory limit, OOM restarts so far) for one pod;
        a pod started after the leak began leaks from its own start."""
        rate = 1.0 + 0.12 * ((pod_index * 7) % 5 - 2)  # pods leak at slightly different speeds
        end = np.inf if fault.end is None else fault.end
        since = max(fault.start, born)
        elapsed = np.clip(np.minimum(t, end) - since, 0.0, None) * rate / LEAK_PERIOD_S
        frac = np.where((t >= since) & (t < end), elapsed % 1.0, 0.0)
        return frac, np.floor(elapsed)

    def own(self, service: Service, route_index: int, t: np.ndarray) -> dict[str, np.ndarray]:
        """Effects of faults located at ``service`` itself on one of its routes."""
        zeros = np.zeros_like(t)
        lat_add, lat_mult = zeros.copy(), self.blips(service.name, t)
        e500, e503, e504 = zeros.copy(), zeros.copy(), zeros.copy()
        for f in self.faults:
            if f.kind == "cache_failure" and f.service in service.depends_on:
                lat_add += 30.0 * activation(f, t)  # reads fall back to the database
            if f.kind == "cache_failure" and service.name == "database":
                lat_add += 4.0 * activation(f, t)
            if f.service != service.name:
                continue
            a = activation(f, t)
            if f.kind == "bad_deploy":
                e500 += 0.35 * a
                lat_mult *= 1 + 0.3 * a
            elif f.kind == "cpu_saturation":
                lat_add += 450.0 * a
                e504 += 0.03 * a
            elif f.kind == "memory_leak":
                frac, _ = self.leak(f, t, 0)
                lat_add += 250.0 * frac**4  # GC thrash near the limit
                e503 += 0.15 * frac**8
            elif f.kind == "slow_dependency":  # a slow store is slow on every query
                lat_add += (700.0 if service.tier == "data" else 1400.0) * a
                e504 += 0.04 * a
            elif f.kind == "db_pool_exhaustion":
                lat_add += 1800.0 * a
                e503 += 0.3 * a
            elif f.kind == "bad_feature_flag" and route_index == 0:
                e500 += 0.5 * a
            elif f.kind == "cache_failure":
                e503 += 0.97 * a
            elif f.kind == "noisy_neighbour":
                lat_add += 250.0 * a
                lat_mult *= 1 + 0.6 * a
                e504 += 0.01 * a
        return {"lat_add": lat_add, "lat_mult": lat_mult, "e500": e500, "e503": e503, "e504": e504}

    def edge(self, caller: str, callee: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Extra latency and failure on the network path caller → callee (packet loss)."""
        lat, err = np.zeros_like(t), np.zeros_like(t)
        for f in self.faults:
            if f.kind == "packet_loss" and f.service == callee and f.peer == caller:
                a = activation(f, t)
                lat += 350.0 * a
                err += 0.12 * a
        return lat, err

    def retry_factor(self, service: str, t: np.ndarray) -> np.ndarray:
        """Retries inflate traffic to a service behind a lossy link."""
        out = np.ones_like(t)
        for f in self.faults:
            if f.kind == "packet_loss" and f.service == service:
                out += 0.15 * activation(f, t)
        return out

    def evaluate(self, t: np.ndarray) -> Evaluation:
        return Evaluation(self, t)

    # Resources -----------------------------------------------------------------------
    def cpu_util(self, service: Service, t: np.ndarray, pods: np.ndarray) -> np.ndarray:
        """CPU used per pod as a share of its limit."""
        util = (0.10 + 0.28 * daily(t)) * service.replicas / np.maximum(pods, 1)
        for f in self.faults:
            a = activation(f, t)
            if f.service == service.name and f.kind == "cpu_saturation":
                util = util + (0.97 - util) * a
            elif f.service == service.name and f.kind in ("slow_dependency", "bad_deploy"):
                util = util * (1 + 0.15 * a)
            elif f.kind == "cache_failure" and service.name == "database":
                util = util + 0.35 * a
        return np.clip(util, 0.01, 0.99)

    def memory_fraction(
        self, service: Service, t: np.ndarray, pod_index: int, born: float = -np.inf
    ) -> np.ndarray:
        base = 0.45 + 0.03 * np.sin(t / 900.0 + pod_index)
        for f in self.faults_on(service.name, "memory_leak"):
            frac, _ = self.leak(f, t, pod_index, born)
            base = base + (0.995 - base) * frac
        return base

    def pool_usage(self, service: Service, t: np.ndarray) -> np.ndarray:
        """Share of the DB connection pool in use."""
        usage = 0.18 + 0.12 * daily(t)
        for f in self.faults_on(service.name, "db_pool_exhaustion"):
            usage = usage + (1.0 - usage) * activation(f, t)
        for f in self.faults_on(service.name, "slow_dependency"):
            usage = usage + 0.3 * activation(f, t)
        return np.clip(usage, 0.0, 1.0)

    def throttled_ratio(self, service: Service, t: np.ndarray) -> np.ndarray:
        """Share of CFS periods in which the pods were throttled."""
        ratio = 0.02 + 0.01 * daily(t)
        for f in self.faults_on(service.name, "noisy_neighbour"):
            ratio = ratio + 0.6 * activation(f, t)
        for f in self.faults_on(service.name, "cpu_saturation"):
            ratio = ratio + 0.3 * activation(f, t)
        return np.clip(ratio, 0.0, 1.0)

    def cache_hit_ratio(self, t: np.ndarray) -> np.ndarray:
        ratio = 0.93 + 0.02 * np.sin(t / 1300.0)
        for f in self.faults_on("cache", "cache_failure"):
            ratio = ratio * (1 - activation(f, t))
        return ratio


class Evaluation:
    """Route states over one time grid, memoised per (service, route, hop delay)."""

    def __init__(self, model: Model, t: np.ndarray) -> None:
        self.model = model
        self.t = t
        self._memo: dict[tuple[str, str, float], RouteState] = {}

    def route(self, service: str, route_key: str, shift: float = 0.0) -> RouteState:
        key = (service, route_key, shift)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._route(service, route_key, shift)
        return hit

    def _route(self, service: str, route_key: str, shift: float) -> RouteState:
        model = self.model
        svc = model.estate[service]
        index = next(i for i, r in enumerate(svc.routes) if route_key in (r.key, r.path))
        route = svc.routes[index]
        t = self.t - shift
        own = model.own(svc, index, t)
        latency = route.latency_ms * own["lat_mult"] + own["lat_add"]
        ok = np.clip(1.0 - own["e500"] - own["e503"] - own["e504"], 0.0, 1.0)
        e500, e503, e504 = own["e500"].copy(), own["e503"].copy(), own["e504"].copy()
        n = len(t)
        best503, best504 = np.zeros(n), np.zeros(n)
        blame503: list[str | None] = [None] * n
        blame504: list[str | None] = [None] * n
        timeout = TIMEOUT_MS.get(svc.tier, DEFAULT_TIMEOUT_MS)
        for call in route.calls:
            sub = self.route(call.service, call.route, shift + HOP_DELAY_S)
            edge_lat, edge_err = model.edge(service, call.service, t)
            sub_lat = sub.latency_ms + edge_lat
            p_timeout = 1.0 / (1.0 + np.exp(-(sub_lat - timeout) / (0.08 * timeout)))
            latency = latency + call.count * np.minimum(sub_lat, timeout)
            f503 = call.weight * np.clip(sub.errors + edge_err, 0.0, 1.0) * (1 - p_timeout)
            f504 = call.weight * p_timeout
            e503 = e503 + ok * f503
            e504 = e504 + ok * (1 - f503) * f504
            ok = ok * (1 - f503) * (1 - f504)
            for arr, best, blame in ((f503, best503, blame503), (f504, best504, blame504)):
                better = np.flatnonzero(arr > np.maximum(best, 0.005))
                best[better] = arr[better]
                for i in better:
                    blame[i] = call.service
        return RouteState(latency, e500, e503, e504, blame503, blame504)
