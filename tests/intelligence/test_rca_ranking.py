"""RCA ranking, calibration and evidence families on plain findings (no DB, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intelligence.rca.calibration import (
    Calibration,
    apply_confidence,
    reliability_table,
    suspect_features,
)
from intelligence.rca.evidence import family, metric_name
from intelligence.rca.ranking import rank_hypotheses, suspects
from intelligence.signals.types import Finding, Pointer, ServiceContext

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
GRAPH = {
    "frontend": ["checkout", "catalog"],
    "checkout": ["payments"],
    "payments": ["db"],
    "catalog": ["db"],
    "db": [],
}


def metric(service: str, query: str, score: float, onset_min: float | None, **details):
    return Finding(
        kind="metric_anomaly",
        service=service,
        score=score,
        title=query,
        pointer=Pointer("prometheus", query, T0, T0 + timedelta(minutes=30), 15.0),
        onset=T0 + timedelta(minutes=onset_min) if onset_min is not None else None,
        details={"direction": "up", **details},
    )


def change(service: str, title: str, minute: float, **details) -> Finding:
    return Finding(
        kind="change",
        service=service,
        score=1.0,
        title=title,
        pointer=Pointer("kubernetes", f"deployment/prod/{service}"),
        onset=T0 + timedelta(minutes=minute),
        details=details,
    )


def services() -> list[ServiceContext]:
    return [
        ServiceContext(slug=s, labels={"service": s}, depends_on=tuple(d)) for s, d in GRAPH.items()
    ]


def ranked(findings, **kw) -> list[str]:
    return [h.service for h in suspects(rank_hypotheses(findings, services(), **kw))]


def test_metric_families_follow_exporter_conventions_not_estate_names():
    cases = {
        'sum(rate(container_cpu_usage_seconds_total{service="x"}[1m]))': "cpu",
        'sum(container_memory_working_set_bytes{service="x"})': "memory",
        'rate(container_cpu_cfs_throttled_periods_total{service="x"}[1m])': "throttling",
        "histogram_quantile(0.99, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{service="x"}[5m])))': "latency",
        'sum(rate(http_requests_total{service="x",code=~"5.."}[1m]))': "errors",
        'rate(container_network_receive_packets_dropped_total{service="x"}[1m])': "network",
        'increase(kube_pod_container_status_restarts_total{service="x"}[10m])': "crash",
        'max(feature_flag_enabled{service="x",flag="f"})': "config",
    }
    for query, expected in cases.items():
        assert family(metric("x", query, 0.9, 0)) == expected, query
    assert metric_name(metric("x", next(iter(cases)), 0.9, 0)) == (
        "container_cpu_usage_seconds_total"
    )
    trace = Finding("trace_error", "x", 0.9, "deepest failing span", Pointer("tempo", "abc"))
    assert family(trace) == "errors"
    assert family(Finding(**{**trace.__dict__, "details": {"error_origin": True}})) == (
        "trace_origin"
    )
    assert family(change("x", "rollout of x 1.2", 0, change="rollout")) == "deploy"
    assert family(change("x", "flag new-flow on", 0, change="feature_flag")) == "config"
    assert family(change("x", "scaled x to 4", 0, change="scaling")) == "other"
    # less CPU used is a consequence, never evidence of exhaustion
    down = metric("x", 'sum(container_memory_working_set_bytes{service="x"})', 0.9, 0)
    down = Finding(**{**down.__dict__, "details": {"direction": "down"}})
    assert family(down) == "other"


def test_earlier_and_downstream_outranks_upstream_symptoms():
    findings = [
        metric("frontend", 'http_request_duration_seconds_sum{service="frontend"}', 0.95, 4),
        metric("checkout", 'http_request_duration_seconds_sum{service="checkout"}', 0.93, 2),
        metric("payments", 'http_request_duration_seconds_sum{service="payments"}', 0.8, 0),
    ]
    assert ranked(findings)[0] == "payments"
    hyp = next(h for h in rank_hypotheses(findings, services()) if h.service == "checkout")
    assert any("payments" in e.reason for e in hyp.contradicting)


def test_healthy_service_whose_callers_fail_is_not_a_cause():
    findings = [
        metric("frontend", 'http_requests_total{service="frontend",code="500"}', 0.95, 1),
        metric("checkout", 'http_requests_total{service="checkout",code="500"}', 0.9, 0),
        metric(
            "payments",
            'sum(rate(http_requests_total{service="payments"}[1m]))',
            0.6,
            0,
            direction="down",
        ),
    ]
    order = ranked(findings)
    assert order[0] == "checkout"
    assert order.index("payments") > order.index("frontend")


def test_change_shortly_before_onset_is_strong_and_one_after_is_not():
    findings = [
        metric("checkout", 'rate(http_requests_total{service="checkout",code="500"}[1m])', 0.9, 10),
        metric(
            "catalog", 'rate(container_cpu_usage_seconds_total{service="catalog"}[1m])', 0.9, 10
        ),
    ]
    with_deploy = [*findings, change("checkout", "rollout of checkout 1.4.0", 8, change="deploy")]
    top = rank_hypotheses(with_deploy, services())[0]
    assert (top.service, top.kind) == ("checkout", "bad_deploy")
    late = [*findings, change("checkout", "rollout of checkout 1.4.0", 25, change="deploy")]
    hyps = rank_hypotheses(late, services())
    checkout = next(h for h in hyps if h.service == "checkout")
    assert any("after the onset" in e.reason for e in checkout.contradicting)
    assert checkout.kind != "bad_deploy"


def test_flag_change_names_config_kind_and_probable_origin_counts():
    findings = [
        metric("frontend", 'rate(http_requests_total{service="frontend",code="500"}[1m])', 0.9, 1),
        change("frontend", "feature flag new-flow set to true", 0, change="flag"),
    ]
    top = rank_hypotheses(findings, services())[0]
    assert (top.service, top.kind) == ("frontend", "config_or_flag")
    # two equal suspects: correlation's probable origin breaks the tie
    twins = [
        metric("catalog", 'container_memory_working_set_bytes{service="catalog"}', 0.8, 0),
        metric("payments", 'container_memory_working_set_bytes{service="payments"}', 0.8, 0),
    ]
    assert ranked(twins, probable_origin="payments")[0] == "payments"
    top = rank_hypotheses(twins, services(), probable_origin="payments")[0]
    origin = next(e for e in top.supporting if e.family == "correlation")
    assert origin.finding.pointer.source == "incidents"
    assert ranked(twins, probable_origin="catalog")[0] == "catalog"


def test_every_service_with_data_is_ranked_not_only_alerting_ones():
    findings = [
        metric("db", 'container_cpu_usage_seconds_total{service="db"}', 0.9, 0),
        metric("frontend", 'http_request_duration_seconds_sum{service="frontend"}', 0.9, 2),
        metric("catalog", 'http_request_duration_seconds_sum{service="catalog"}', 0.9, 1),
    ]
    order = ranked(findings, probable_origin="frontend")
    assert order[0] == "db"
    assert set(order) == {"db", "frontend", "catalog"}


def test_confidence_is_a_probability_lowered_for_missing_sources_and_conflicts():
    findings = [
        metric("payments", 'container_cpu_usage_seconds_total{service="payments"}', 0.95, 0),
        metric("checkout", 'http_request_duration_seconds_sum{service="checkout"}', 0.7, 1),
    ]
    cal = Calibration.load()
    full = apply_confidence(rank_hypotheses(findings, services()), 0, cal)
    partial = apply_confidence(rank_hypotheses(findings, services()), 2, cal)
    assert 0.0 < full[0].confidence < 1.0
    assert partial[0].confidence < full[0].confidence
    feats = suspect_features([3.0, 1.0], [0, 0], 0)
    fewer = Calibration({"conflicts": 5.0, "missing": 5.0}, 0.0, {})  # never raises
    assert fewer.probability({**feats[0], "conflicts": 3, "missing": 2}) == pytest.approx(
        fewer.probability(feats[0])
    )


def test_reliability_table_and_ece():
    rows, ece = reliability_table([0.95, 0.95, 0.15, 0.15], [True, False, False, False])
    assert [r["n"] for r in rows] == [2, 2]
    assert ece == pytest.approx(0.5 * abs(0.15 - 0.0) + 0.5 * abs(0.95 - 0.5))


def test_rca_document_has_timeline_gaps_next_steps_and_a_deterministic_summary():
    from intelligence.rca.document import build_rca
    from intelligence.signals.types import AnalysisContext

    findings = [
        metric("payments", 'container_cpu_usage_seconds_total{service="payments"}', 0.95, 0),
        metric("checkout", 'http_request_duration_seconds_sum{service="checkout"}', 0.9, 1),
        change("payments", "rollout of payments 2.1.0", -3, change="deploy"),
    ]
    context = AnalysisContext(
        incident_id=1,
        services=tuple(services()),
        incident_start=T0 - timedelta(minutes=5),
        incident_end=T0 + timedelta(minutes=10),
        baseline_start=T0 - timedelta(hours=1),
        baseline_end=T0 - timedelta(minutes=5),
    )
    alerts = [(T0 + timedelta(minutes=2), "HighLatency", "checkout")]
    full = build_rca(findings, context, alerts=alerts)
    partial = build_rca(
        findings,
        context,
        alerts=alerts,
        gaps=["tempo unavailable (search): timeout"],
        missing_sources=["loki"],
    )
    doc = full.as_dict()
    assert doc["suspects"][0] == {
        "service": "payments",
        "kind": "bad_deploy",
        "confidence": doc["suspects"][0]["confidence"],
        "rank": 1,
    }
    assert [e["kind"] for e in doc["timeline"]] == ["change", "onset", "onset", "alert"]
    assert doc["hypotheses"][0]["supporting"][0]["finding"]["pointer"]["source"]
    assert "payments" in doc["summary"] and "bad deploy" in doc["summary"]
    assert "roll back payments" in doc["next_steps"][0]
    assert partial.partial and not full.partial
    assert partial.confidence < full.confidence
    assert {"what": "loki", "why": "not configured for this deployment"} in partial.not_checked
    assert any(n["what"] == "tempo" and "timeout" in n["why"] for n in partial.not_checked)
