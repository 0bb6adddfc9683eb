"""RCA in the product: a finished analysis run stores ranked hypotheses on its insight; the
API shows suspects and hypotheses; responders confirm or reject (audited, kept, on the
timeline); visibility follows the incident's."""

from __future__ import annotations

import json

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


@pytest.fixture
def llm_server(settings):
    """A loopback fake OpenAI-compatible server configured as the product's LLM."""
    from tests.intelligence.test_rca_llm import completion, fake_llm

    def answer(body):
        data = json.loads(body["messages"][1]["content"])
        first = data["hypotheses"][0]
        return completion(
            json.dumps(
                {
                    "summary": f"{first['service']} is failing; its evidence is strong.",
                    "order": [first["id"]],
                    "claims": [{"text": "new errors", "evidence": first["evidence"][0]["id"]}],
                }
            )
        )

    with fake_llm(answer) as (url, seen):
        settings.RELIABILITY_LLM_URL = url
        settings.RELIABILITY_LLM_MODEL = "fake-1"
        settings.RELIABILITY_LLM_API_KEY = "sk-never-stored"
        yield seen


def test_llm_off_by_default_is_refused_as_a_trigger(
    signals,  # noqa: F811
    open_incident,  # noqa: F811
    users,
    api,
):
    incident = open_incident()
    response = api(users["responder"]).post(url(incident) + "summary/")
    assert response.status_code == 409 and response.json()["code"] == "llm_disabled"
    assert "llm" not in Insight.objects.get(incident=incident).evidence["rca"]


def test_the_run_asks_the_configured_llm_and_records_the_call_without_secrets(
    llm_server,
    signals,  # noqa: F811
    open_incident,  # noqa: F811
):
    incident = open_incident()
    insight = Insight.objects.get(incident=incident)
    record = insight.evidence["rca"]["llm"]
    assert record["outcome"] == "ok" and record["model"] == "fake-1"
    assert record["prompt_tokens"] == 321 and record["latency_s"] >= 0
    assert insight.summary == "payments is failing; its evidence is strong."
    assert "sk-never-stored" not in json.dumps(insight.evidence)
    assert llm_server[0]["auth"] == "Bearer sk-never-stored"


def test_llm_summary_trigger_needs_respond_is_audited_and_rate_limited_per_user_and_team(
    llm_server,
    signals,  # noqa: F811
    open_incident,  # noqa: F811
    users,
    api,
    monkeypatch,
):
    from intelligence.api.views import TriggerThrottle

    monkeypatch.setattr(
        TriggerThrottle,
        "THROTTLE_RATES",
        {"rca_summary_user": "2/min", "rca_summary_team": "3/min"},
    )
    incident = open_incident()
    summary = url(incident) + "summary/"
    assert api(users["viewer"]).post(summary).status_code == 403
    assert api(users["outsider"]).post(summary).status_code == 404
    responder = api(users["responder"])
    first = responder.post(summary)
    assert first.status_code == 200, first.content
    assert first.json()["llm"]["outcome"] == "ok"
    assert AuditLog.objects.filter(action="incident.rca_summary_requested").count() == 1
    assert responder.post(summary).status_code == 200
    limited = responder.post(summary)
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    sre = api(users["sre"])
    assert sre.post(summary).status_code == 200  # another user: its own budget...
    team_limited = sre.post(summary)
    assert team_limited.status_code == 429  # ...but the team's is spent (3 per minute)
    throttled = AuditLog.objects.filter(action="incident.rca_summary_throttled")
    assert sorted(a.changes["per"] for a in throttled) == ["team", "user"]
