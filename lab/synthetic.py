"""A small deterministic metrics generator: a stand-in estate for the PromQL engine's
tests until the lab's simulation plugs in.

Every value is a function of the tick number, so two stores fed the same ticks (the lab's
TSDB, and a real Prometheus scraping the lab's ``/metrics``) hold the same sequences.
Series: ``http_requests_total`` counters per service/pod/code with rates that differ
across series and drift slowly over time (one pod restarts once: a counter reset),
a ``queue_depth`` gauge per pod, and an ``http_request_duration_seconds`` histogram per
service whose latency distribution drifts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from lab.tsdb import TSDB

# service -> [(pod, requests per second)]
PODS: dict[str, list[tuple[str, float]]] = {
    "checkout": [("checkout-0", 12.0), ("checkout-1", 9.0)],
    "cart": [("cart-0", 6.0), ("cart-1", 5.0)],
    "search": [("search-0", 20.0), ("search-1", 16.0)],
}
ERROR_RATIO = {"checkout": 0.05, "cart": 0.02, "search": 0.1}
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, math.inf)
OBSERVATIONS_PER_TICK = {"checkout": 40, "cart": 25, "search": 60}


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


class SyntheticMetrics:
    """Deterministic series; ``tick`` writes one sample of each at time ``t``."""

    def __init__(
        self,
        *,
        job: str = "lab",
        instance: str = "synthetic:9100",
        reset_pod: str = "cart-1",
        reset_tick: int = 8,
        seconds_per_tick: float = 1.0,
    ) -> None:
        self.base = {"job": job, "instance": instance}
        self.reset_pod = reset_pod
        self.reset_tick = reset_tick
        self.seconds_per_tick = seconds_per_tick
        self.ticks = 0
        self.tick_times: list[float] = []
        self._counters: dict[tuple[str, ...], float] = {}

    def _add(self, key: tuple[str, ...], amount: float) -> float:
        self._counters[key] = self._counters.get(key, 0.0) + amount
        return self._counters[key]

    def tick(self, tsdb: TSDB, t: float) -> None:
        k = self.ticks
        samples = []
        for phase, (service, pods) in enumerate(PODS.items()):
            for pod, rps in pods:
                if pod == self.reset_pod and k == self.reset_tick:
                    for code in ("200", "500"):
                        self._counters[(pod, code)] = 0.0  # the pod restarted
                drift = 1 + 0.25 * math.sin(2 * math.pi * k / 40 + phase)
                requests = rps * drift * self.seconds_per_tick
                errors = requests * ERROR_RATIO[service]
                for code, amount in (("200", requests - errors), ("500", errors)):
                    labels = {"service": service, "pod": pod, "code": code}
                    value = self._add((pod, code), amount)
                    samples.append(({"__name__": "http_requests_total", **labels}, value))
                depth = 40 + 8 * math.sin(2 * math.pi * k / 60 + phase + len(pod))
                samples.append(({"__name__": "queue_depth", "service": service, "pod": pod}, depth))
            median = 0.2 * (1 + 0.3 * math.sin(2 * math.pi * k / 50 + phase))
            n = OBSERVATIONS_PER_TICK[service]
            name = "http_request_duration_seconds"
            for bound in BUCKETS:
                share = 1.0 if math.isinf(bound) else _normal_cdf(math.log(bound / median) / 0.6)
                value = self._add((service, "le", _le(bound)), float(round(n * share)))
                labels = {"__name__": f"{name}_bucket", "service": service, "le": _le(bound)}
                samples.append((labels, value))
            total = self._add((service, "sum"), n * median * math.exp(0.18))
            count = self._add((service, "count"), float(n))
            samples.append(({"__name__": f"{name}_sum", "service": service}, total))
            samples.append(({"__name__": f"{name}_count", "service": service}, count))
        tsdb.add_many(({**self.base, **labels}, t, value) for labels, value in samples)
        self.tick_times.append(t)
        self.ticks += 1


class LiveGenerator:
    """Ticks ``metrics`` into ``tsdb`` every ``interval`` seconds of wall time, in a thread."""

    def __init__(
        self,
        tsdb: TSDB,
        metrics: SyntheticMetrics,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tsdb = tsdb
        self.metrics = metrics
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self, first: float) -> None:
        k = 0
        while not self._stop.is_set():
            due = first + k * self.interval
            delay = due - self.clock()
            if delay > 0 and self._stop.wait(delay):
                return
            # Stamped with the scheduled time, not the wake-up time: samples stay exactly
            # one interval apart however late the thread runs.
            self.metrics.tick(self.tsdb, due)
            k += 1

    def start(self, first_tick_at: float | None = None) -> LiveGenerator:
        """Start ticking; the first tick at ``first_tick_at`` (wall time) or now."""
        first = self.clock() if first_tick_at is None else first_tick_at
        self._thread = threading.Thread(
            target=self._run, args=(first,), name="lab-synthetic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
