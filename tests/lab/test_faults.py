"""Each fault kind leaves its signature in metrics, logs, traces and Kubernetes events at
the root cause, and its symptoms reach the services upstream of it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from lab.faults import KINDS
from lab.sim import Lab
from tests.lab.helpers import (
    END,
    error_ratio,
    events,
    gauge,
    increase,
    log_lines,
    mean_latency,
    per_step_error_ratio,
    spans,
)

START = END - 900  # every fault starts 15 minutes before the end of a 40 minute history
BASE = (END - 2100, START - 60)
FAULT = (END - 480, END)


def cpu_ratio(lab: Lab, service: str, window: tuple[float, float]) -> float:
    used = increase(lab, "container_cpu_usage_seconds_total", *window, service=service)
    limit = lab.estate[service].cpu_limit * lab.estate[service].replicas
    return used / (window[1] - window[0]) / limit


def metric_bad_deploy(lab: Lab) -> None:
    assert error_ratio(lab, "payments", *BASE) < 0.01
    assert error_ratio(lab, "payments", *FAULT) > 0.2
    versions = {
        s.labels["version"]
        for s in lab.tsdb.select(_m("app_build_info", service="payments"), *FAULT)
    }
    assert len(versions) == 1 and versions != {lab.ground_truth()[0]["version_from"]}


def metric_cpu(lab: Lab) -> None:
    assert cpu_ratio(lab, "search", BASE) < 0.6
    assert cpu_ratio(lab, "search", FAULT) > 0.85


def metric_memory(lab: Lab) -> None:
    limit = lab.estate["cart"].memory_limit_bytes
    assert (
        gauge(lab, "container_memory_working_set_bytes", *BASE, service="cart").max() < 0.6 * limit
    )
    assert (
        gauge(lab, "container_memory_working_set_bytes", START, END, service="cart").max()
        > 0.9 * limit
    )
    assert gauge(lab, "kube_pod_container_status_restarts_total", *BASE, service="cart").max() == 0
    assert (
        gauge(lab, "kube_pod_container_status_restarts_total", START, END, service="cart").max()
        >= 1
    )


def metric_slow(lab: Lab) -> None:
    base = mean_latency(lab, "inventory", *BASE)
    assert mean_latency(lab, "inventory", *FAULT) > 10 * base


def metric_pool(lab: Lab) -> None:
    assert gauge(lab, "db_pool_connections_active", *BASE, service="payments").max() < 10
    active = gauge(lab, "db_pool_connections_active", *FAULT, service="payments")
    assert np.median(active) == lab.estate["payments"].db_pool
    assert gauge(lab, "db_pool_pending_requests", *FAULT, service="payments").max() > 0


def metric_packet_loss(lab: Lab) -> None:
    assert (
        increase(lab, "container_network_receive_packets_dropped_total", *BASE, service="payments")
        == 0
    )
    assert (
        increase(lab, "container_network_receive_packets_dropped_total", *FAULT, service="payments")
        > 100
    )
    assert error_ratio(lab, "checkout", *FAULT) > 0.05


def metric_flag(lab: Lab) -> None:
    flag = lab.ground_truth()[0]["flag"]
    assert gauge(lab, "feature_flag_enabled", *BASE, service="checkout", flag=flag).max() == 0
    assert gauge(lab, "feature_flag_enabled", *FAULT, service="checkout", flag=flag).min() == 1
    assert error_ratio(lab, "checkout", *FAULT) > 0.2


def metric_cache(lab: Lab) -> None:
    def miss_ratio(w: tuple[float, float]) -> float:
        hits = increase(lab, "cache_hits_total", *w, service="cache")
        misses = increase(lab, "cache_misses_total", *w, service="cache")
        return misses / (hits + misses)

    assert miss_ratio(BASE) < 0.15
    assert miss_ratio(FAULT) > 0.9


def metric_noisy(lab: Lab) -> None:
    def throttled(w: tuple[float, float]) -> float:
        t = increase(lab, "container_cpu_cfs_throttled_periods_total", *w, service="catalog")
        return t / increase(lab, "container_cpu_cfs_periods_total", *w, service="catalog")

    assert throttled(BASE) < 0.1
    assert throttled(FAULT) > 0.5
    assert cpu_ratio(lab, "catalog", FAULT) < 0.7  # starved, not busy: unlike cpu_saturation
    assert mean_latency(lab, "catalog", *FAULT) > 5 * mean_latency(lab, "catalog", *BASE)


def _m(name: str, **labels: str):
    from tests.lab.helpers import matchers

    return matchers(name, **labels)


@dataclass(frozen=True)
class Case:
    kind: str
    service: str
    metrics: object
    log_query: str  # LogQL that finds the fault's lines
    trace_service: str  # whose spans show it (a caller's client spans for data-tier roots)
    event_reason: str
    upstream: str  # a service upstream of the root cause that must show symptoms
    upstream_route: str


CASES = [
    Case(
        "bad_deploy",
        "payments",
        metric_bad_deploy,
        '{service="payments", level="error"} |= "unhandled exception" |~ "Traceback"',
        "payments",
        "ScalingReplicaSet",
        "checkout",
        "/v1/checkout",
    ),
    Case(
        "cpu_saturation",
        "search",
        metric_cpu,
        '{service="search"} |= "worker pool saturated"',
        "search",
        "Unhealthy",
        "gateway",
        "/api/search",
    ),
    Case(
        "memory_leak",
        "cart",
        metric_memory,
        '{service="cart"} |~ "OOMKilled|out of memory"',
        "cart",
        "OOMKilled",
        "gateway",
        "/api/cart/items",
    ),
    Case(
        "slow_dependency",
        "inventory",
        metric_slow,
        '{service="inventory"} |= "slow request"',
        "inventory",
        "Unhealthy",
        "cart",
        "/v1/cart/items",
    ),
    Case(
        "db_pool_exhaustion",
        "payments",
        metric_pool,
        '{service="payments", level="error"} |= "could not acquire database connection"',
        "payments",
        "Unhealthy",
        "checkout",
        "/v1/checkout",
    ),
    Case(
        "packet_loss",
        "payments",
        metric_packet_loss,
        '{service="checkout"} |= "connection reset by peer"',
        "checkout",
        "Unhealthy",
        "gateway",
        "/api/checkout",
    ),
    Case(
        "bad_feature_flag",
        "checkout",
        metric_flag,
        '{service="checkout"} |= "feature flag code path failed"',
        "checkout",
        "FeatureFlagChanged",
        "gateway",
        "/api/checkout",
    ),
    Case(
        "cache_failure",
        "cache",
        metric_cache,
        '{service=~"catalog|auth"} |= "falling back to database"',
        "catalog",
        "Unhealthy",
        "catalog",
        "/v1/products",
    ),
    Case(
        "noisy_neighbour",
        "catalog",
        metric_noisy,
        '{service="catalog"} |= "event loop lag high"',
        "catalog",
        "Unhealthy",
        "search",
        "/v1/search",
    ),
]


def test_every_kind_has_a_case() -> None:
    assert {c.kind for c in CASES} == set(KINDS)
    assert len(KINDS) >= 9


@pytest.fixture(params=CASES, ids=lambda c: c.kind)
def case(request, history) -> tuple[Case, Lab]:
    c = request.param
    return c, history(f"{c.kind}:{c.service}@-15m")


def test_metrics_signature(case) -> None:
    c, lab = case
    c.metrics(lab)


def test_logs_signature(case) -> None:
    c, lab = case
    assert log_lines(lab, c.log_query, *BASE) == []
    assert len(log_lines(lab, c.log_query, START, END)) >= 3


def test_traces_signature(case) -> None:
    """The fault shows in spans: errors or slowness where there were none before."""
    c, lab = case

    def involved(s) -> bool:
        if c.service == c.trace_service:
            return s.service == c.service and s.kind in ("server", "consumer")
        return s.service == c.trace_service and s.attrs.get("peer.service") == c.service

    def summary(window: tuple[float, float]) -> tuple[float, float]:
        sel = [s for s in spans(lab, *window) if involved(s)]
        assert sel, f"no spans for {c.trace_service} in window"
        errors = sum(s.error for s in sel) / len(sel)
        return errors, float(np.median([s.duration_ns for s in sel]))

    base_err, base_dur = summary(BASE)
    err, dur = summary(FAULT)
    assert base_err < 0.02
    assert err > 0.05 or dur > 3 * base_dur


def test_events_signature(case) -> None:
    c, lab = case
    pods = {p.name for p in lab.cluster.pods_of(c.service)}
    mine = [
        e
        for e in events(lab)
        if e["reason"] == c.event_reason
        and (e["involvedObject"]["name"] == c.service or e["involvedObject"]["name"] in pods)
    ]
    assert mine
    assert all(e["lastTimestamp"] >= e["firstTimestamp"] for e in mine)
    first = min(e["firstTimestamp"] for e in mine)
    from lab.kube import rfc3339

    assert first >= rfc3339(START)


def test_symptoms_propagate_upstream(case) -> None:
    c, lab = case
    assert c.upstream in lab.estate.upstream_of(c.service)
    route = {"route": c.upstream_route}
    base_err = error_ratio(lab, c.upstream, *BASE, **route)
    err = error_ratio(lab, c.upstream, *FAULT, **route)
    base_lat = mean_latency(lab, c.upstream, *BASE, **route)
    lat = mean_latency(lab, c.upstream, *FAULT, **route)
    assert err > base_err + 0.005 or lat > 1.3 * base_lat, (base_err, err, base_lat, lat)


def test_ground_truth_names_cause_and_remediation(case) -> None:
    c, lab = case
    (truth,) = lab.ground_truth()
    assert truth["root_cause"] == {"service": c.service, "kind": c.kind}
    assert truth["start"] == START and truth["end"] is None
    assert truth["remediation"]["action"] == KINDS[c.kind].action


def test_upstream_symptoms_start_later_than_the_cause(history) -> None:
    lab = history("bad_deploy:payments@-15m")
    onsets = {}
    for service in ("payments", "checkout", "gateway"):
        grid, ratio = per_step_error_ratio(lab, service, START - 300, END)
        threshold = 0.1 if service != "gateway" else 0.005
        onsets[service] = grid[np.argmax(ratio > threshold)]
        assert ratio[grid < START].max() < threshold
    assert onsets["payments"] < onsets["checkout"] <= onsets["gateway"]


def test_overlapping_faults_and_noise(history) -> None:
    lab = history("bad_deploy:payments@-15m", "slow_dependency:inventory@-10m")
    kinds = {t["kind"] for t in lab.ground_truth()}
    assert kinds == {"bad_deploy", "slow_dependency"}
    firing = {(s.rule.name, s.service) for s in lab.alerts.firing()}
    assert ("HighErrorRate", "payments") in firing
    assert ("HighLatencyP99", "inventory") in firing
    assert ("DiskSpaceLow", "database") in firing  # background noise keeps firing


ACTIONS = ("rollback", "scale", "restart", "disable_flag")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_only_the_right_remediation_clears(kind: str) -> None:
    """Every action on the root cause's deployment; exactly the ground truth's one clears."""
    from lab.faults import DEFAULT_TARGETS
    from lab.sim import build_history

    for action in ACTIONS:
        lab = build_history(7, 180, [f"{kind}:{DEFAULT_TARGETS[kind]}@-2m"], end=END)
        (truth,) = lab.ground_truth()
        service = truth["service"]
        step = {"action": action, "deployment": service}
        if action == "scale":
            step["replicas"] = lab.estate[service].replicas * 2
        if action == "disable_flag":
            step = {
                "action": action,
                "service": service,
                "flag": truth.get("flag") or next(iter(lab.flags[service]), "x"),
            }
        lab.remediate(step)
        cleared = lab.ground_truth()[0]["end"] is not None
        assert cleared == (action == truth["remediation"]["action"]), (kind, action)
