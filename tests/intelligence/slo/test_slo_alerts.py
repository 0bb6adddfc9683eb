"""The beat job: SLO status stored, burn alerts through ingestion into incidents, once.

The query function here answers from a table of error ratios per window (plain data); the
same path against a real Prometheus is in test_prometheus_rules.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from incidents.lifecycle import IncidentStatus
from incidents.models import SLO, Alert, Incident, Integration
from intelligence import tasks
from intelligence.models import SLOStatus
from intelligence.slo.burn import burn_windows
from intelligence.slo.queries import window_queries
from intelligence.slo.service import BURN_INTEGRATION, evaluate_slos, slo_impact, spec_of
from reliability.http import DataSourceUnavailable
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db

H, DAY = 3600, 86400
GOOD = 'sum(rate(http_requests_total{service="payments",code!~"5.."}[5m]))'
TOTAL = 'sum(rate(http_requests_total{service="payments"}[5m]))'


class Ratios:
    """An instant-query function over good/total rates per window of the SLOs it knows."""

    def __init__(self, slos: list[SLO]) -> None:
        self.specs = [spec_of(s) for s in slos]
        self.ratio: dict[int, float | None] = {}
        self.calls = 0
        self.down = False

    def set(self, default: float | None, **by_window: float | None) -> None:
        windows = [*burn_windows(), 28 * DAY, 30 * DAY]
        self.ratio = dict.fromkeys(windows, default)
        names = {"m5": 300, "m30": 1800, "h1": H, "h2": 2 * H, "h6": 6 * H, "d1": DAY}
        names |= {"d3": 3 * DAY}
        for key, value in by_window.items():
            self.ratio[names[key]] = value

    def __call__(self, promql: str, at: datetime) -> float | None:
        self.calls += 1
        if self.down:
            raise DataSourceUnavailable("prometheus", "connection refused")
        for spec in self.specs:
            for seconds, ratio in self.ratio.items():
                good, total = window_queries(spec.good_query, spec.total_query, seconds)
                if promql in (good, total):
                    if ratio is None:
                        return 0.0  # no traffic
                    return 100.0 if promql == total else 100.0 * (1 - ratio)
        raise AssertionError(f"unexpected query {promql}")


@pytest.fixture
def slo(services) -> SLO:
    return SLO.objects.create(
        service=services["payments"],
        name="availability",
        objective="99.9",
        good_query=GOOD,
        total_query=TOTAL,
    )


@pytest.fixture
def source(slo) -> Ratios:
    return Ratios([slo])


def burn_alerts() -> list[Alert]:
    return list(Alert.objects.filter(integration__name=BURN_INTEGRATION).order_by("pk"))


def test_fast_burn_stores_status_and_opens_an_incident_like_any_alert(slo, source):
    source.set(0.0002, h1=0.02, m5=0.03)
    now = timezone.now()
    report = evaluate_slos(now, source)
    assert report.firing == ["payments/availability 1h/5m"]

    status = SLOStatus.objects.get(slo=slo)
    assert status.severity == "page"
    assert status.sli == pytest.approx(0.9998)
    assert status.budget_remaining == pytest.approx(0.8)
    assert status.windows["1h"]["burn_rate"] == pytest.approx(20)
    assert status.queries["1h"][0].endswith("[1h])))")
    assert [f["long_window"] for f in status.firing] == ["1h"]

    (alert,) = burn_alerts()
    assert alert.status == Alert.Status.FIRING
    assert alert.labels == {
        "alertname": "SLOErrorBudgetBurn",
        "service": "payments",
        "slo": "availability",
        "severity": "page",
        "long_window": "1h",
        "short_window": "5m",
    }
    assert alert.integration.team == slo.service.team
    assert alert.service == slo.service
    assert "20.0x over 1h" in alert.annotations["description"]
    incident = alert.incident
    assert incident is not None and incident.status == IncidentStatus.TRIGGERED
    assert incident.severity == "critical"  # severity=page
    assert list(incident.services.values_list("slug", flat=True)) == ["payments"]


def test_repeated_evaluations_do_not_fire_twice(slo, source):
    source.set(0.0002, h1=0.02, m5=0.03)
    start = timezone.now()
    for minute in range(4):
        evaluate_slos(start + timedelta(minutes=minute), source)
    (alert,) = burn_alerts()
    assert alert.receive_count == 1  # still well before its end time: nothing re-sent
    assert Incident.objects.count() == 1
    # close to its end time it is re-sent (kept alive), still the same alert and incident
    evaluate_slos(start + timedelta(minutes=6), source)
    alert.refresh_from_db()
    assert alert.receive_count == 2 and alert.status == Alert.Status.FIRING
    assert alert.starts_at == start  # the burn started then; re-sending keeps it
    assert alert.ends_at == start + timedelta(minutes=16)
    assert Incident.objects.count() == 1 and Alert.objects.count() == 1


def test_burning_stops_resolves_the_alert_and_its_incident_once(slo, source):
    source.set(0.0002, h1=0.02, m5=0.03)
    now = timezone.now()
    evaluate_slos(now, source)
    source.set(0.0002, h1=0.015, m5=0.0)  # the hour still looks bad, the last 5 min do not
    report = evaluate_slos(now + timedelta(minutes=1), source)
    assert report.resolved == ["payments/availability 1h/5m"]
    (alert,) = burn_alerts()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.incident.status == IncidentStatus.RESOLVED
    evaluate_slos(now + timedelta(minutes=2), source)
    alert.refresh_from_db()
    assert alert.receive_count == 2  # resolved once, not on every evaluation
    assert SLOStatus.objects.get(slo=slo).severity == ""


def test_slow_burn_tickets_and_fast_burn_pages_as_two_alerts(slo, source):
    source.set(0.0002, d3=0.0015, h6=0.0015, h1=0.02, m5=0.03)
    evaluate_slos(timezone.now(), source)
    assert sorted((a.labels["long_window"], a.labels["severity"]) for a in burn_alerts()) == [
        ("1h", "page"),
        ("3d", "ticket"),
    ]
    assert Incident.objects.count() == 1  # both about payments: one incident


def test_burn_alert_joins_the_services_open_incident(slo, source, integrations, post_webhook):
    alert = am_alert("HighErrorRate", "payments", severity="critical")
    alert["startsAt"] = timezone.now().isoformat()
    post_webhook(integrations["alertmanager"], am_payload([alert], "g1"))
    (incident,) = Incident.objects.all()
    source.set(0.0002, h1=0.02, m5=0.03)
    evaluate_slos(timezone.now(), source)
    (burn,) = burn_alerts()
    assert burn.incident == incident


def test_prometheus_down_keeps_the_last_status_and_the_alert(slo, source):
    source.set(0.0002, h1=0.02, m5=0.03)
    now = timezone.now()
    evaluate_slos(now, source)
    source.down = True
    report = evaluate_slos(now + timedelta(minutes=1), source)
    assert "connection refused" in report.failed["payments/availability"]
    status = SLOStatus.objects.get(slo=slo)
    assert "connection refused" in status.error
    assert status.severity == "page" and status.evaluated_at == now  # last good evaluation
    (alert,) = burn_alerts()
    assert alert.status == Alert.Status.FIRING  # missing data neither fires nor resolves


def test_no_traffic_is_not_burning(slo, source):
    source.set(None)
    evaluate_slos(timezone.now(), source)
    status = SLOStatus.objects.get(slo=slo)
    assert status.sli is None and status.severity == "" and not burn_alerts()


def test_disabled_burn_integration_sends_nothing_but_status_is_kept(slo, source):
    Integration.objects.create(
        name=BURN_INTEGRATION, team=slo.service.team, kind="alertmanager", enabled=False
    )
    source.set(0.0002, h1=0.02, m5=0.03)
    evaluate_slos(timezone.now(), source)
    assert SLOStatus.objects.get(slo=slo).severity == "page"
    assert not Alert.objects.exists()


@override_settings(PROMETHEUS_URL="")
def test_task_without_prometheus_says_so(slo):
    assert tasks.evaluate_slos() == {"skipped": "PROMETHEUS_URL is not set"}
    assert not SLOStatus.objects.exists()


def test_slo_impact_lists_burning_slos_fastest_first(slo, source, services):
    other = SLO.objects.create(
        service=services["checkout"],
        name="availability",
        objective="99.9",
        good_query=GOOD.replace("payments", "checkout"),
        total_query=TOTAL.replace("payments", "checkout"),
    )
    source.specs.append(spec_of(other))
    source.set(0.0002, h1=0.02, m5=0.03)
    impact = slo_impact(["payments", "checkout", "search"], timezone.now(), source)
    assert [b.service for b in impact.slos] == ["checkout", "payments"]
    assert [b.service for b in impact.burning] == ["checkout", "payments"]
    first = impact.burning[0].as_dict()
    assert first["severity"] == "page" and first["firing"][0]["long_burn_rate"] == pytest.approx(20)
    assert first["queries"]["1h"][1].startswith("sum(sum(rate(http_requests_total")
    source.down = True
    impact = slo_impact(["payments"], timezone.now(), source)
    assert not impact.slos and "payments/availability" in impact.gaps[0]


def test_slo_impact_findings_point_at_the_burning_window(slo, source):
    now = timezone.now()
    source.set(0.0002, h6=0.007, m30=0.008, h1=0.0072, m5=0.03)
    (finding,) = slo_impact(["payments"], now, source).findings(now)
    assert finding.kind == "slo_burn" and finding.service == "payments"
    assert finding.score == pytest.approx(7.0 / 14.4)  # the 6h/30m pair at 7x fires
    assert "7.0x over 6h (page)" in finding.title
    assert finding.pointer.query.startswith("1 - (sum(sum(rate(http_requests_total")
    assert "[6h]" in finding.pointer.query
    assert finding.pointer.end == now and finding.pointer.start == now - timedelta(hours=6)


@override_settings(PROMETHEUS_URL="")
def test_slo_impact_without_prometheus_is_a_gap(slo):
    impact = slo_impact(["payments"], timezone.now())
    assert not impact.slos and impact.gaps == ["SLOs not measured: PROMETHEUS_URL is not set"]


def test_an_unmeasurable_slo_fails_alone(slo, source, services):
    broken = SLO.objects.create(
        service=services["checkout"],
        name="broken",
        objective="99.9",
        window_days=0,  # refused by the API and admin; written here by hand
        good_query=GOOD,
        total_query=TOTAL,
    )
    source.set(0.0002, h1=0.02, m5=0.03)
    report = evaluate_slos(timezone.now(), source)
    assert "checkout/broken" in report.failed and report.evaluated == 1
    assert SLOStatus.objects.get(slo=broken).error
    assert SLOStatus.objects.get(slo=slo).severity == "page"


def test_api_refuses_a_window_of_zero_days(services, users, api):
    response = api(users["admin"]).post(
        "/api/v1/slos/",
        {
            "service": "payments",
            "name": "latency",
            "objective": "99",
            "window_days": 0,
            "good_query": GOOD,
            "total_query": TOTAL,
        },
        format="json",
    )
    assert response.status_code == 400 and "window_days" in response.json()
    assert not SLO.objects.filter(name="latency").exists()
