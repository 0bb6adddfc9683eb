"""RCA in the product: a finished analysis run stores ranked hypotheses on its insight; the
API shows suspects and hypotheses; responders confirm or reject (audited, kept, on the
timeline); visibility follows the incident's."""

from __future__ import annotations

import pytest

from incidents.models import Incident, TimelineEvent
from intelligence.models import HypothesisVerdict, Insight
from intelligence.runs import insight_summary
from reliability.models import AuditLog
from tests.intelligence.test_analysis_runs import open_incident, signals  # noqa: F401

pytestmark = pytest.mark.django_db


def url(incident: Incident) -> str:
    return f"/api/v1/incidents/{incident.pk}/rca/"


def test_a_finished_run_stores_ranked_hypotheses_with_confidence_and_pointers(
    signals,  # noqa: F811
    open_incident,  # noqa: F811
    users,
    api,
):
    incident = open_incident()
    insight = Insight.objects.get(incident=incident)
    top = insight.hypotheses[0]
    assert (top["service"], top["rank"]) == ("payments", 1)
    assert 0.0 < top["confidence"] < 1.0
    assert insight.confidence_score == pytest.approx(top["confidence"], abs=1e-4)
    assert top["supporting"][0]["finding"]["pointer"]["query"] == '{service="payments"}'
    assert insight.summary.startswith("Most likely cause: payments")
    live = insight_summary(insight)
    assert live["suspects"][0]["service"] == "payments"

    body = api(users["viewer"]).get(url(incident)).json()
    assert body["insight"] == insight.pk
    assert body["suspects"][0] == {
        "service": "payments",
        "kind": top["kind"],
        "confidence": top["confidence"],
        "rank": 1,
    }
    assert [s["rank"] for s in body["suspects"]] == sorted(s["rank"] for s in body["suspects"])
    assert body["hypotheses"][0]["service"] == "payments"
    assert any(e["kind"] == "alert" and e["service"] == "payments" for e in body["timeline"])
    assert body["next_steps"] and body["verdicts"] == []


def test_rca_visibility_follows_the_incident(
    signals,  # noqa: F811
    open_incident,  # noqa: F811
    users,
    api,
):
    incident = open_incident()
    assert api(users["outsider"]).get(url(incident)).status_code == 404
    assert api(None).get(url(incident)).status_code == 401
    Insight.objects.filter(incident=incident).update(hypotheses=[])
    response = api(users["viewer"]).get(url(incident))
    assert response.status_code == 404 and response.json()["code"] == "not_analysed"


def test_responders_confirm_or_reject_hypotheses_audited_and_kept(
    signals,  # noqa: F811
    open_incident,  # noqa: F811
    users,
    api,
    django_capture_on_commit_callbacks,
):
    incident = open_incident()
    top = Insight.objects.get(incident=incident).hypotheses[0]
    verdicts = url(incident) + "verdicts/"
    payload = {"service": "payments", "kind": top["kind"], "verdict": "confirmed", "note": "yes"}

    assert api(users["viewer"]).post(verdicts, payload, format="json").status_code == 403
    assert api(users["outsider"]).post(verdicts, payload, format="json").status_code == 404
    client = api(users["responder"])
    bad = client.post(verdicts, {**payload, "verdict": "maybe"}, format="json")
    assert bad.status_code == 400 and "verdict" in bad.json()
    unknown = client.post(verdicts, {**payload, "service": "search"}, format="json")
    assert unknown.status_code == 400 and "service" in unknown.json()
    assert not HypothesisVerdict.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(verdicts, payload, format="json")
        again = client.post(verdicts, {**payload, "verdict": "rejected"}, format="json")
    assert ok.status_code == 201 and again.status_code == 201
    assert ok.json()["rank"] == 1 and ok.json()["confidence"] == top["confidence"]
    assert list(HypothesisVerdict.objects.order_by("id").values_list("verdict", "decided_by")) == [
        ("confirmed", users["responder"].pk),
        ("rejected", users["responder"].pk),
    ]
    assert AuditLog.objects.filter(action="incident.rca_verdict").count() == 2
    event = TimelineEvent.objects.filter(incident=incident, kind="analysis").last()
    assert event.message.startswith("root cause payments /") and event.message.endswith("rejected")
    shown = api(users["viewer"]).get(url(incident)).json()["verdicts"]
    assert [v["verdict"] for v in shown] == ["rejected", "confirmed"]
