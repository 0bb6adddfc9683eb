"""The SLO status endpoints: what the beat job stored, visible to the service's team only."""

from __future__ import annotations

import pytest
from django.utils import timezone

from incidents.models import SLO
from intelligence.models import SLOStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def slos(services) -> dict[str, SLO]:
    made = {
        slug: SLO.objects.create(
            service=services[slug],
            name="availability",
            objective="99.9",
            good_query="sum(rate(good[5m]))",
            total_query="sum(rate(total[5m]))",
        )
        for slug in ("payments", "checkout", "search")
    }
    SLOStatus.objects.create(
        slo=made["payments"],
        evaluated_at=timezone.now(),
        sli=0.9991,
        window_error_ratio=0.0009,
        budget_remaining=0.1,
        windows={"1h": {"good": 9.8, "total": 10.0, "error_ratio": 0.02, "burn_rate": 20.0}},
        firing=[{"severity": "page", "long_window": "1h", "short_window": "5m"}],
        severity="page",
    )
    return made


def test_status_detail_shows_the_stored_evaluation(slos, users, api):
    data = api(users["viewer"]).get(f"/api/v1/slos/{slos['payments'].pk}/status/").json()
    assert data["service"] == "payments" and data["burning"] is True
    assert data["error_budget"] == pytest.approx(0.001)
    assert data["status"]["severity"] == "page"
    assert data["status"]["windows"]["1h"]["burn_rate"] == 20.0
    assert data["status"]["budget_remaining"] == pytest.approx(0.1)


def test_never_evaluated_slo_answers_with_empty_status(slos, users, api):
    data = api(users["viewer"]).get(f"/api/v1/slos/{slos['checkout'].pk}/status/").json()
    assert data["burning"] is False
    assert data["status"]["evaluated_at"] is None and data["status"]["sli"] is None


def test_list_is_restricted_to_the_teams_services_and_filters(slos, users, api):
    client = api(users["viewer"])
    rows = client.get("/api/v1/slos/status/").json()["results"]
    assert [r["service"] for r in rows] == ["checkout", "payments"]
    rows = client.get("/api/v1/slos/status/?service__slug=payments").json()["results"]
    assert [r["slo"] for r in rows] == [slos["payments"].pk]


def test_other_teams_slo_status_is_invisible(slos, users, api):
    search = slos["search"]
    SLOStatus.objects.create(slo=search, severity="page", firing=[{"severity": "page"}])
    for who in ("viewer", "admin", "outsider"):
        client = api(users[who])
        assert client.get(f"/api/v1/slos/{search.pk}/status/").status_code == 404
        listed = {r["slo"] for r in client.get("/api/v1/slos/status/").json()["results"]}
        assert search.pk not in listed
    assert api(None).get("/api/v1/slos/status/").status_code == 401
    assert api(users["root"]).get(f"/api/v1/slos/{search.pk}/status/").status_code == 200


def test_status_is_read_only(slos, users, api):
    url = f"/api/v1/slos/{slos['payments'].pk}/status/"
    client = api(users["admin"])
    assert client.patch(url, {"severity": ""}, format="json").status_code == 405
    assert client.delete(url).status_code == 405
    assert SLOStatus.objects.get(slo=slos["payments"]).severity == "page"
