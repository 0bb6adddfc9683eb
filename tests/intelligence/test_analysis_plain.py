"""The analysis's plain parts: its context, its step runner and its impact report."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from intelligence.analysis.context import (
    AlertFacts,
    IncidentFacts,
    ServiceFacts,
    WindowPolicy,
    build_context,
    expression_from_generator_url,
    neighbourhood,
)
from intelligence.analysis.impact import SLOFacts, assess_impact, callers_of, entry_points
from intelligence.analysis.run import StepSpec, rank, run_steps
from intelligence.signals.types import Finding, Pointer, SignalResult
from reliability.http import DataSourceUnavailable

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
SHOP = {
    "gateway": ("cart", "checkout"),
    "cart": ("cache", "inventory"),
    "checkout": ("cart", "payments"),
    "payments": ("database",),
    "inventory": ("database",),
    "database": (),
    "cache": (),
    "notifications": ("queue",),
    "queue": (),
}
TIERS = {"gateway": 1, "checkout": 1, "payments": 1}


def services() -> dict[str, ServiceFacts]:
    return {
        slug: ServiceFacts(slug, {"service": slug}, deps, TIERS.get(slug, 3))
        for slug, deps in SHOP.items()
    }


def finding(service: str, score: float, kind: str = "log_pattern") -> Finding:
    return Finding(kind, service, score, f"{kind} on {service}", Pointer("loki", "{x}"))


# -- context -----------------------------------------------------------------------------


def test_trigger_expression_comes_from_a_prometheus_graph_url_only():
    url = "http://prom:9090/graph?g0.expr=sum%28rate%28http_requests_total%7Bcode%3D~%225..%22%7D%5B5m%5D%29%29+%3E+1&g0.tab=1"
    assert (
        expression_from_generator_url(url) == 'sum(rate(http_requests_total{code=~"5.."}[5m])) > 1'
    )
    assert expression_from_generator_url("http://grafana/alerting/grafana/abc/view") is None
    assert expression_from_generator_url("") is None
    assert expression_from_generator_url("http://prom/graph?g0.expr=") is None


def test_windows_are_anchored_at_the_first_alert_and_scope_follows_the_graph():
    incident = IncidentFacts(
        incident_id=1,
        alerts=[
            AlertFacts(
                T0 + timedelta(minutes=3),
                {"alertname": "B", "service": "checkout"},
                "http://p/graph?g0.expr=up%3D%3D0",
                "checkout",
            ),
            AlertFacts(
                T0,
                {"alertname": "A", "service": "payments"},
                "http://p/graph?g0.expr=errors%3E1",
                "payments",
            ),
        ],
        services=["payments", "checkout"],
        created_at=T0 + timedelta(minutes=1),
    )
    policy = WindowPolicy(lead=timedelta(minutes=5), baseline=timedelta(minutes=60), hops=1)
    ctx = build_context(incident, services(), T0 + timedelta(minutes=20), policy)
    assert ctx.incident_start == T0 - timedelta(minutes=5)
    assert ctx.incident_end == T0 + timedelta(minutes=20)
    assert ctx.baseline_end == ctx.incident_start
    assert ctx.baseline_start == ctx.incident_start - timedelta(minutes=60)
    assert ctx.trigger_expressions == ("errors>1", "up==0")  # first alert's first
    hops = {s.slug: s.hops for s in ctx.services}
    assert hops == {"payments": 0, "checkout": 0, "database": 1, "cart": 1, "gateway": 1}
    assert {"alertname": "A", "service": "payments"} in ctx.trigger_labels
    payments = next(s for s in ctx.services if s.slug == "payments")
    assert payments.labels == {"service": "payments"} and payments.depends_on == ("database",)


def test_baseline_never_reaches_into_the_previous_incident_but_keeps_a_minimum():
    base = dict(
        incident_id=1,
        alerts=[AlertFacts(T0, {}, "", "payments")],
        services=["payments"],
        created_at=T0,
    )
    policy = WindowPolicy(
        lead=timedelta(0), baseline=timedelta(hours=1), min_baseline=timedelta(minutes=5)
    )
    recent = IncidentFacts(previous_end=T0 - timedelta(minutes=20), **base)
    ctx = build_context(recent, services(), T0 + timedelta(minutes=2), policy)
    assert ctx.baseline_start == T0 - timedelta(minutes=20)
    just_ended = IncidentFacts(previous_end=T0 - timedelta(minutes=1), **base)
    ctx = build_context(just_ended, services(), T0 + timedelta(minutes=2), policy)
    assert ctx.baseline_start == T0 - timedelta(minutes=5)


def test_neighbourhood_walks_callers_and_callees():
    assert neighbourhood(["database"], SHOP, 1) == {"database": 0, "payments": 1, "inventory": 1}
    two = neighbourhood(["database"], SHOP, 2)
    assert two["checkout"] == 2 and two["cart"] == 2 and "gateway" not in two


# -- steps -------------------------------------------------------------------------------


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.updates: list[tuple[list[str], int]] = []
        self.stop_after = stop_after

    def update(self, steps, findings, gaps) -> None:
        self.updates.append(([s.status for s in steps], len(findings)))

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.updates) > self.stop_after


def context():
    incident = IncidentFacts(1, [AlertFacts(T0, {}, "", "payments")], ["payments"], T0)
    return build_context(incident, services(), T0 + timedelta(minutes=10))


def ok(*found: Finding, calls: int = 2):
    return lambda ctx: SignalResult(findings=list(found), calls=calls, call_seconds=0.01)


def down(ctx):
    raise DataSourceUnavailable("tempo", "connection refused (after 3 attempts)")


def broken(ctx):
    raise ZeroDivisionError("bug")


def test_a_failing_step_or_a_down_source_makes_the_run_partial_and_keeps_the_rest():
    recorder = Recorder()
    outcome = run_steps(
        context(),
        [
            StepSpec("logs", "loki", ok(finding("payments", 0.9), finding("cart", 0.4))),
            StepSpec("traces", "tempo", down),
            StepSpec("metrics", "prometheus", broken),
        ],
        recorder,
    )
    assert outcome.status == "partial"
    assert [f.service for f in outcome.findings] == ["payments", "cart"]
    by_name = {s.name: s for s in outcome.steps}
    assert by_name["logs"].status == "ok" and by_name["logs"].calls == 2
    assert by_name["traces"].status == "failed"
    assert any("tempo" in g and "connection refused" in g for g in outcome.gaps)
    assert any(g.startswith("metrics: failed (ZeroDivisionError") for g in outcome.gaps)
    assert all(s.seconds is not None and s.finished_at for s in outcome.steps)
    assert outcome.progress == 100
    assert recorder.updates[0] == (["running"] * 3, 0)  # announced before anything ended


def test_a_signal_reporting_its_own_gap_is_partial():
    def gappy(ctx):
        return SignalResult(findings=[finding("payments", 0.5)], gaps=["loki unavailable: x"])

    outcome = run_steps(context(), [StepSpec("logs", "loki", gappy)], Recorder())
    assert outcome.status == "partial"
    assert outcome.gaps == ["logs: loki unavailable: x"]
    assert len(outcome.findings) == 1


def test_all_steps_fine_is_complete():
    outcome = run_steps(context(), [StepSpec("logs", "loki", ok(finding("a", 0.3)))], Recorder())
    assert outcome.status == "complete" and not outcome.gaps


def test_a_step_past_the_deadline_is_a_gap_and_does_not_hold_the_run():
    release = threading.Event()

    def hangs(ctx):
        release.wait(10)
        return SignalResult()

    began = time.monotonic()
    outcome = run_steps(
        context(),
        [StepSpec("traces", "tempo", hangs), StepSpec("logs", "loki", ok(finding("a", 0.5)))],
        Recorder(),
        deadline_s=0.5,
    )
    release.set()
    assert time.monotonic() - began < 5
    assert outcome.status == "partial"
    assert {s.name: s.status for s in outcome.steps} == {"traces": "timeout", "logs": "ok"}
    assert len(outcome.gaps) == 1 and outcome.gaps[0].startswith("traces: no answer within")
    assert len(outcome.findings) == 1


def test_a_superseded_run_stops_at_the_next_step_boundary():
    release = threading.Event()

    def slow(ctx):
        release.wait(10)
        return SignalResult(findings=[finding("x", 0.9)])

    recorder = Recorder(stop_after=1)  # told to stop once the first step ended
    outcome = run_steps(
        context(),
        [StepSpec("logs", "loki", ok(finding("a", 0.5))), StepSpec("traces", "tempo", slow)],
        recorder,
        deadline_s=30,
    )
    release.set()
    assert outcome.status == "superseded"
    assert {s.name: s.status for s in outcome.steps} == {"logs": "ok", "traces": "cancelled"}
    assert [f.service for f in outcome.findings] == ["a"]  # what it found is kept


def test_ranking_puts_strong_evidence_first_and_symptoms_of_impact_lower():
    found = [finding("gateway", 0.8, "slo_burn"), finding("payments", 0.6), finding("cart", 0.6)]
    ranked = rank(found, {"payments": 0, "cart": 1, "gateway": 2})
    assert [f.service for f in ranked] == ["payments", "cart", "gateway"]


# -- impact ------------------------------------------------------------------------------


def test_affected_services_are_the_alerting_ones_and_every_caller_reaching_them():
    reach = callers_of(["database"], SHOP)
    assert reach == {
        "database": 0,
        "payments": 1,
        "inventory": 1,
        "checkout": 2,
        "cart": 2,
        "gateway": 3,
    }
    assert entry_points(reach, SHOP) == ["gateway"]
    assert entry_points(["notifications", "queue"], SHOP) == ["notifications"]


class FakeReader:
    """Two series: the total at 10 req/s, the bad ones at 1 req/s."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.asked: list[str] = []

    def series(self, expr, start, end, step_s):
        self.asked.append(expr)
        if self.fail:
            raise DataSourceUnavailable("prometheus", "down")
        value = 1.0 if expr.startswith("(") else 10.0
        n = int((end - start).total_seconds() // step_s)
        return [(start.timestamp() + i * step_s, value) for i in range(n)]


def test_impact_measures_failed_requests_and_slo_burn_through_the_slo_queries():
    slo = SLOFacts("checkout", "availability", 99.0, "good", "total")
    window = (T0, T0 + timedelta(minutes=10))
    report, result = assess_impact(["payments"], SHOP, TIERS, [slo], window, FakeReader())
    assert [a["service"] for a in report["affected_services"]] == [
        "payments",
        "checkout",
        "gateway",
    ]
    assert report["entry_points"] == [{"service": "gateway", "tier": 1}]
    row = report["slos"][0]
    assert row["error_ratio"] == 0.1 and row["burn_rate"] == 10.0
    assert row["failed_requests"] == 600 == report["failed_requests"]
    assert result.calls == 2 and not result.gaps
    (burn,) = result.findings
    assert burn.kind == "slo_burn" and burn.service == "checkout"
    assert burn.pointer.query == "(total) - (good)" and burn.pointer.source == "prometheus"


def test_impact_without_prometheus_or_with_it_down_still_names_who_is_hurt():
    slo = SLOFacts("checkout", "availability", 99.0, "good", "total")
    window = (T0, T0 + timedelta(minutes=10))
    report, result = assess_impact(["payments"], SHOP, TIERS, [slo], window, None)
    assert report["entry_points"][0]["service"] == "gateway"
    assert report["failed_requests"] is None
    assert result.gaps == ["impact: prometheus not configured, request and error rates unknown"]
    report, result = assess_impact(["payments"], SHOP, TIERS, [slo], window, FakeReader(True))
    assert report["failed_requests"] is None and "burn_rate" not in report["slos"][0]
    assert result.gaps and "prometheus" in result.gaps[0]
