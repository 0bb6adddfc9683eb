"""Reading the lab's signals in tests: counters, gauges, log lines, spans and events, all
through the same stores (and public JSON) the APIs serve."""

from __future__ import annotations

import json

import numpy as np

from lab.kube_api import KubernetesAPI
from lab.logs import LokiAPI
from lab.sim import Lab
from lab.tsdb import Matcher

END = 1_795_000_050.0 // 15 * 15  # a fixed "now" so scenarios are reproducible


def matchers(name: str, **labels: str) -> list[Matcher]:
    out = [Matcher("__name__", "=", name)]
    for key, value in labels.items():
        op = "=~" if any(c in value for c in ".*|+") else "="
        out.append(Matcher(key, op, value))
    return out


def increase(lab: Lab, name: str, t0: float, t1: float, **labels: str) -> float:
    """Sum over series of how much a counter grew in [t0, t1]."""
    total = 0.0
    for s in lab.tsdb.select(matchers(name, **labels), t0, t1):
        total += float(s.values[-1] - s.values[0]) if len(s.values) > 1 else 0.0
    return total


def error_ratio(lab: Lab, service: str, t0: float, t1: float, **labels: str) -> float:
    bad = increase(lab, "http_requests_total", t0, t1, service=service, code="5..", **labels)
    every = increase(lab, "http_requests_total", t0, t1, service=service, **labels)
    return bad / max(every, 1.0)


def mean_latency(lab: Lab, service: str, t0: float, t1: float, **labels: str) -> float:
    s = increase(lab, "http_request_duration_seconds_sum", t0, t1, service=service, **labels)
    c = increase(lab, "http_request_duration_seconds_count", t0, t1, service=service, **labels)
    return s / max(c, 1.0)


def gauge(lab: Lab, name: str, t0: float, t1: float, **labels: str) -> np.ndarray:
    series = lab.tsdb.select(matchers(name, **labels), t0, t1)
    return np.concatenate([s.values for s in series]) if series else np.array([0.0])


def log_lines(lab: Lab, query: str, t0: float, t1: float, limit: int = 5000) -> list[str]:
    api = LokiAPI(lab.logs, lab.clock)
    args = {
        "query": [query],
        "start": [str(int(t0 * 1e9))],
        "end": [str(int(t1 * 1e9))],
        "limit": [str(limit)],
    }
    status, _, body = api.handle("GET", "/loki/api/v1/query_range", args, b"")
    assert status == 200, body
    return [v[1] for r in json.loads(body)["data"]["result"] for v in r["values"]]


def spans(lab: Lab, t0: float, t1: float):
    return [s for tr in lab.traces.between(int(t0 * 1e9), int(t1 * 1e9)) for s in tr.spans]


def events(lab: Lab) -> list[dict]:
    status, _, body = KubernetesAPI(lab.cluster).handle(
        "GET", "/api/v1/namespaces/prod/events", {}, b""
    )
    assert status == 200
    return json.loads(body)["items"]


def per_step_error_ratio(
    lab: Lab, service: str, t0: float, t1: float
) -> tuple[np.ndarray, np.ndarray]:
    """Error ratio per generator step, from the counters summed over pods and routes."""

    def summed(code: str | None) -> tuple[np.ndarray, np.ndarray]:
        extra = {"code": code} if code else {}
        series = lab.tsdb.select(matchers("http_requests_total", service=service, **extra), t0, t1)
        grid = np.unique(np.concatenate([s.timestamps for s in series]))
        total = np.zeros(len(grid))
        for s in series:
            inc = np.diff(s.values, prepend=s.values[0])
            total[np.searchsorted(grid, s.timestamps)] += inc
        return grid, total

    grid, bad = summed("5..")
    grid2, every = summed(None)
    assert np.array_equal(grid, grid2)
    return grid, bad / np.maximum(every, 1.0)
