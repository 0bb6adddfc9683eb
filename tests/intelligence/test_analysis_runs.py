"""Analysis runs in the product: started by incidents, one at a time, superseded, debounced,
partial when a source is down, visible only to who may see the incident."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident, TimelineEvent
from intelligence import runs, tasks
from intelligence.models import Insight
from intelligence.signals.types import Finding, Pointer, SignalResult
from reliability.http import DataSourceUnavailable
from reliability.models import AuditLog
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


class LogSignal:
    name, source = "log_patterns", "loki"

    def collect(self, context):
        services = {s.slug for s in context.services}
        assert "payments" in services
        return SignalResult(
            findings=[
                Finding(
                    "log_pattern",
                    "payments",
                    0.9,
                    "new error pattern",
                    Pointer("loki", '{service="payments"}', context.incident_start),
                ),
                Finding("log_pattern", "checkout", 0.3, "surging pattern", Pointer("loki", "{}")),
            ],
            calls=2,
            call_seconds=0.01,
        )


class DownSignal:
    name, source = "traces", "tempo"

    def collect(self, context):
        raise DataSourceUnavailable("tempo", "connection refused")


@pytest.fixture
def signals(monkeypatch):
    """Which signals the task gets (the real factory builds them from the data sources)."""
    chosen: list = [LogSignal()]
    monkeypatch.setattr(tasks, "signals_for_run", lambda: (list(chosen), ["changes: skipped"]))
    monkeypatch.setattr(tasks, "metric_reader", lambda: None)
    return chosen


@pytest.fixture
def open_incident(integrations, services, post_webhook, django_capture_on_commit_callbacks):
    def make(name="A", service="payments", group="g") -> Incident:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_webhook(
                integrations["alertmanager"], am_payload([am_alert(name, service)], group)
            )
        assert response.status_code == 200, response.content
        return Incident.objects.get(alerts__name=name)

    return make


def test_an_opened_incident_is_analysed_and_its_timeline_says_so(signals, open_incident):
    incident = open_incident()
    (insight,) = Insight.objects.filter(incident=incident)
    assert insight.status == "complete" and insight.reason == "opened"
    assert insight.progress == 100
    assert [f["service"] for f in insight.findings] == ["payments", "checkout"]
    assert insight.findings[0]["pointer"]["query"] == '{service="payments"}'
    assert insight.evidence["skipped"] == ["changes: skipped"]
    impact = insight.evidence["impact"]
    assert impact["alerting"] == ["payments"]
    assert {a["service"] for a in impact["affected_services"]} == {"payments", "checkout"}
    assert [s["name"] for s in insight.steps] == ["log_patterns", "impact"]
    assert all(s["seconds"] is not None for s in insight.steps)
    assert insight.calls == 2 and insight.first_finding_at and insight.finished_at
    assert insight.context["trigger_expressions"] == ["up"]
    assert insight.summary.startswith("Top evidence: new error pattern [payments]")
    event = TimelineEvent.objects.get(incident=incident, kind="analysis")
    assert event.message == "analysis complete: 2 findings"


def test_a_source_down_makes_the_run_partial_and_nothing_else_fails(signals, open_incident):
    signals.append(DownSignal())
    incident = open_incident()
    insight = Insight.objects.get(incident=incident)
    assert insight.status == "partial"
    assert insight.gaps == ["traces: tempo: connection refused"]
    assert len(insight.findings) == 2  # the other step's evidence is kept
    incident.refresh_from_db()
    assert incident.status == "triggered" and incident.alert_count == 1
    assert "1 gaps" in TimelineEvent.objects.get(incident=incident, kind="analysis").message


def test_a_crashing_analysis_fails_the_run_only(signals, open_incident, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(runs, "load_inputs", boom)
    incident = open_incident()
    insight = Insight.objects.get(incident=incident)
    assert insight.status == "failed" and "database went away" in insight.gaps[-1]
    assert Incident.objects.filter(pk=incident.pk, status="triggered").exists()


def test_joins_fold_into_a_waiting_run_and_a_new_request_supersedes_it(signals, open_incident):
    incident = open_incident()
    first = runs.request(incident.pk, "manual")
    folded = runs.request(incident.pk, "alerts_joined")
    assert folded.insight == first.insight and not folded.new
    second = runs.request(incident.pk, "manual")
    first.insight.refresh_from_db()
    assert first.insight.status == "superseded"
    assert first.insight.superseded_by == second.insight
    assert runs.start(first.insight.pk) is None  # its task finds nothing to do
    grown = runs.request(incident.pk, "alerts_joined")
    assert grown.insight == second.insight  # still waiting: folded
    runs.start(second.insight.pk)
    later = runs.request(incident.pk, "alerts_joined")
    assert later.new and later.countdown == pytest.approx(5.0)  # debounced


def test_one_running_analysis_per_incident_the_newer_one_takes_over(signals, open_incident):
    incident = open_incident()
    older = runs.start(runs.request(incident.pk, "manual").insight.pk)
    assert older.status == "running"
    newer = runs.request(incident.pk, "manual").insight
    assert runs.start(newer.pk) == runs.START_RETRY  # waits while the older one stops
    older.refresh_from_db()
    assert older.superseded_by == newer
    assert runs.StoredProgress(older).should_stop()
    Insight.objects.filter(pk=older.pk).update(status="superseded")
    assert runs.start(newer.pk).status == "running"
    assert Insight.objects.filter(incident=incident, status="running").count() == 1


def test_a_run_left_running_by_a_lost_worker_does_not_block_the_incident(signals, open_incident):
    incident = open_incident()
    lost = runs.start(runs.request(incident.pk, "manual").insight.pk)
    Insight.objects.filter(pk=lost.pk).update(started_at=timezone.now() - timedelta(hours=1))
    fresh = runs.request(incident.pk, "manual").insight
    assert runs.start(fresh.pk).status == "running"
    lost.refresh_from_db()
    assert lost.status == "failed"


def test_beat_reanalyses_open_incidents_whose_analysis_is_old(signals, open_incident):
    incident = open_incident()
    assert runs.incidents_due(timezone.now()) == []  # just analysed
    later = timezone.now() + timedelta(hours=1)
    assert runs.incidents_due(later) == [incident.pk]
    Incident.objects.filter(pk=incident.pk).update(status="resolved")
    assert runs.incidents_due(later) == []


def test_the_beat_schedule_is_in_the_database():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="intelligence: re-analyse open incidents")
    assert task.task == "intelligence.tasks.reanalyse_open_incidents" and task.enabled


def test_alerts_joining_an_incident_request_a_debounced_rerun(
    signals, open_incident, integrations, post_webhook, django_capture_on_commit_callbacks
):
    incident = open_incident()
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(
            integrations["alertmanager"],
            am_payload([am_alert("A", "payments"), am_alert("B", "payments")], "g"),
        )
    assert Incident.objects.get(alerts__name="B") == incident
    reasons = list(
        Insight.objects.filter(incident=incident).order_by("pk").values_list("reason", flat=True)
    )
    assert reasons == ["opened", "alerts_joined"]


# -- API ---------------------------------------------------------------------------------


def url(incident: Incident) -> str:
    return f"/api/v1/incidents/{incident.pk}/insights/"


def test_api_shows_runs_with_status_progress_and_evidence(signals, open_incident, users, api):
    incident = open_incident()
    body = api(users["viewer"]).get(url(incident)).json()
    (run,) = body["results"]
    assert run["status"] == "complete" and run["progress"] == 100
    assert run["findings"] == 2
    assert run["evidence"]["findings"][0]["pointer"]["source"] == "loki"
    assert [s["name"] for s in run["steps"]] == ["log_patterns", "impact"]


def test_api_hides_other_teams_analyses(
    signals,
    open_incident,
    integrations,
    users,
    api,
    post_webhook,
    django_capture_on_commit_callbacks,
):
    ours = open_incident()
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(integrations["other"], am_payload([am_alert("B", "search")], "other"))
    theirs = Incident.objects.get(alerts__name="B")
    assert Insight.objects.filter(incident=theirs).exists()
    for role in ("viewer", "responder", "admin", "outsider"):
        client = api(users[role])
        assert client.get(url(theirs)).status_code == 404, role
        assert client.post(url(theirs)).status_code == 404, role
    assert api(users["outsider"]).get(url(ours)).status_code == 404
    assert api(None).get(url(ours)).status_code == 401
    assert api(users["root"]).get(url(theirs)).status_code == 200


def test_rerun_needs_respond_is_audited_and_rate_limited(
    signals, open_incident, users, api, settings, django_capture_on_commit_callbacks
):
    incident = open_incident()
    assert api(users["viewer"]).post(url(incident)).status_code == 403
    client = api(users["responder"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(incident))
    assert response.status_code == 202
    assert response.json()["reason"] == "manual"
    assert response.json()["requested_by"] == users["responder"].username
    assert AuditLog.objects.filter(
        action="incident.analysis_requested", actor=users["responder"]
    ).exists()
    assert Insight.objects.filter(incident=incident, reason="manual").get().status == "complete"
    for _ in range(5):
        assert client.post(url(incident)).status_code == 202
    limited = client.post(url(incident))
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert api(users["sre"]).post(url(incident)).status_code == 202  # per user


# -- admin -------------------------------------------------------------------------------


def test_admin_shows_the_ranked_evidence_read_only_to_who_may_see_it(
    signals, open_incident, integrations, users, post_webhook, django_capture_on_commit_callbacks
):
    from django.test import Client

    ours = Insight.objects.get(incident=open_incident())
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(integrations["other"], am_payload([am_alert("B", "search")], "other"))
    theirs = Insight.objects.get(incident__alerts__name="B")
    root = Client()
    root.force_login(users["root"])
    page = root.get(f"/admin/intelligence/insight/{ours.pk}/change/").content.decode()
    assert "new error pattern" in page and "{service=&quot;payments&quot;}" in page
    assert "affected:" in page and "log_patterns" in page
    assert root.get("/admin/intelligence/insight/add/").status_code == 403
    root.post(f"/admin/intelligence/insight/{ours.pk}/delete/", {"post": "yes"})
    assert Insight.objects.filter(pk=ours.pk).exists()

    team_admin = Client()
    team_admin.force_login(users["admin"])
    listing = team_admin.get("/admin/intelligence/insight/")
    assert listing.status_code == 200
    assert f"/admin/intelligence/insight/{ours.pk}/change/" in listing.content.decode()
    assert f"/admin/intelligence/insight/{theirs.pk}/change/" not in listing.content.decode()
    assert team_admin.get(f"/admin/intelligence/insight/{theirs.pk}/change/").status_code in (
        302,
        403,
        404,
    )
