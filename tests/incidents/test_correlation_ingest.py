"""The correlation engine end to end through the webhook: one test per strategy, human
corrections kept as feedback and learned from, and concurrent webhooks on PostgreSQL."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents import correlating
from incidents.correlation import Membership, fit
from incidents.correlation.cooccurrence import cause_key
from incidents.correlation.strategies import check_key
from incidents.ingest import service
from incidents.models import (
    Alert,
    CooccurrenceSnapshot,
    CorrelationFeedback,
    CorrelationRule,
    Incident,
    Service,
    TimelineEvent,
)
from incidents.tasks import correlate_pending, correlate_retrain
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


def joined(incident: Incident) -> list[tuple[str, str]]:
    return [
        (e.data.get("strategy", ""), e.message)
        for e in incident.timeline.filter(kind__in=["created", "alert_attached"])
    ]


def test_fingerprint_dedup_keeps_a_resent_alert_in_place(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    alert = am_alert("KubePodCrashLooping", "payments", pod="p1")
    post_webhook(am, am_payload([alert], "g1"))
    post_webhook(am, am_payload([alert], "g2"))  # re-sent in another notification group
    assert Incident.objects.count() == 1
    assert Alert.objects.get().receive_count == 2


def test_same_check_on_another_pod_joins_across_notification_groups(
    integrations, services, post_webhook
):
    am = integrations["alertmanager"]
    post_webhook(
        am, am_payload([am_alert("HighErrorRate", "search", pod="a", fingerprint="a")], "g1")
    )
    post_webhook(
        am, am_payload([am_alert("HighErrorRate", "search", pod="b", fingerprint="b")], "g2")
    )
    incident = Incident.objects.get()
    assert joined(incident)[1][0] == "same_check"
    assert "fires on other replicas" in joined(incident)[1][1]


def test_same_check_through_the_database_tells_severities_apart(
    integrations, services, post_webhook
):
    am = integrations["alertmanager"]
    critical = [
        am_alert("HighErrorRate", "search", pod=pod, fingerprint=pod, severity="critical")
        for pod in ("a", "b")
    ]
    post_webhook(am, am_payload(critical[:1], "g1"))
    post_webhook(am, am_payload(critical[1:], "g2"))
    blip = am_alert("HighErrorRate", "search", pod="c", fingerprint="c", severity="warning")
    post_webhook(am, am_payload([blip], "g3"))
    stored = dict(Alert.objects.values_list("fingerprint", "check_variant"))
    assert stored["a"] == stored["b"] != stored["c"]
    strategies = [
        e.data.get("strategy") for e in TimelineEvent.objects.filter(kind="alert_attached")
    ]
    assert strategies.count("same_check") == 1  # pod b only: the warning is another check


def test_topology_joins_a_dependent_and_records_the_probable_origin(
    integrations, services, post_webhook
):
    am = integrations["alertmanager"]
    post_webhook(am, am_payload([am_alert("KubePodCrashLooping", "payments", pod="p1")], "g1"))
    post_webhook(am, am_payload([am_alert("HighErrorRate", "checkout")], "g2"))
    post_webhook(am, am_payload([am_alert("HighErrorRate", "search")], "g3"))  # unrelated
    first, second = Incident.objects.order_by("number")
    assert first.alerts.count() == 2
    assert first.origin_service.slug == "payments"
    (strategy, message) = joined(first)[1]
    assert strategy == "topology"
    assert message.startswith(f"alert HighErrorRate joined {first.reference}: ")
    assert "checkout → payments dependency (1 hop)" in message
    assert "after the first alert; probable origin payments" in message
    assert second.alerts.get().service.slug == "search"


def test_deeper_cause_moves_the_origin_downstream(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    post_webhook(am, am_payload([am_alert("HighErrorRate", "checkout")], "g1"))
    post_webhook(am, am_payload([am_alert("KubePodOOMKilled", "payments", pod="p")], "g2"))
    incident = Incident.objects.get()
    assert incident.origin_service.slug == "payments"
    assert incident.correlation["roots"] == ["payments"]


def test_rule_from_the_admin_groups_by_label_across_services(integrations, services, post_webhook):
    CorrelationRule.objects.create(name="nodes", matchers=['node=~".+"'], group_by=["node"])
    am = integrations["alertmanager"]
    post_webhook(am, am_payload([am_alert("KubePodNotReady", "search", node="n1")], "g1"))
    post_webhook(
        am,
        am_payload([am_alert("KubePodNotReady", "payments", node="n1", fingerprint="p-n1")], "g2"),
    )
    post_webhook(
        am,
        am_payload([am_alert("KubePodNotReady", "payments", node="n2", fingerprint="p-n2")], "g3"),
    )
    first, second = Incident.objects.order_by("number")
    assert first.alerts.count() == 2
    assert joined(first)[1] == (
        "rule",
        f"alert KubePodNotReady joined {first.reference}: rule nodes: same node=n1, "
        "0 s after the first alert",
    )
    assert second.alerts.count() == 1


def test_rule_minimum_holds_alerts_as_candidates(integrations, services, post_webhook):
    CorrelationRule.objects.create(
        name="jobs", matchers=['alertname="KubeJobFailed"'], group_by=["service"], min_alerts=2
    )
    am = integrations["alertmanager"]
    post_webhook(
        am, am_payload([am_alert("KubeJobFailed", "search", job="a", fingerprint="job-a")], "g1")
    )
    waiting = Alert.objects.get()
    assert (waiting.incident, waiting.group_key) == (None, "rule:jobs:service=search")
    post_webhook(
        am, am_payload([am_alert("KubeJobFailed", "search", job="b", fingerprint="job-b")], "g2")
    )
    incident = Incident.objects.get()
    assert incident.alerts.count() == 2
    assert "2 alerts with service=search" in joined(incident)[0][1]


def test_learned_cooccurrence_groups_services_without_an_edge(integrations, services, post_webhook):
    now = timezone.now()
    past = [
        Membership(now - timedelta(days=d), frozenset({cause_key("search"), cause_key("payments")}))
        for d in range(1, 5)
    ]
    CooccurrenceSnapshot.objects.create(incidents=4, model=fit(past, now=now).to_json())
    am = integrations["alertmanager"]
    post_webhook(am, am_payload([am_alert("KubePodCrashLooping", "search", pod="s1")], "g1"))
    post_webhook(am, am_payload([am_alert("KubePodCrashLooping", "payments", pod="p1")], "g2"))
    incident = Incident.objects.get()
    strategy, message = joined(incident)[1]
    assert strategy == "cooccurrence"
    assert "fired together in 4 past incidents" in message


def test_text_similarity_joins_near_identical_alerts_without_a_service(
    integrations, post_webhook, teams
):
    am = integrations["alertmanager"]
    probe = {"alertname": "BlackboxProbeFailed", "severity": "critical", "job": "blackbox"}

    def alert(instance):
        return {
            "status": "firing",
            "labels": {**probe, "instance": instance},
            "annotations": {"summary": "probe of the shop front page failing"},
            "startsAt": timezone.now().isoformat(),
        }

    post_webhook(am, am_payload([alert("https://shop.example/a")], "g1"))
    post_webhook(am, am_payload([alert("https://shop.example/b")], "g2"))
    incident = Incident.objects.get()
    strategy, message = joined(incident)[1]
    assert strategy == "similarity"
    assert "near-identical text" in message


# --- feedback ---------------------------------------------------------------------------


def two_incidents(integrations, post_webhook):
    am = integrations["alertmanager"]
    post_webhook(
        am,
        am_payload(
            [
                am_alert("KubePodCrashLooping", "payments", pod="p1"),
                am_alert("HighErrorRate", "checkout"),
            ],
            "g1",
        ),
    )
    post_webhook(am, am_payload([am_alert("KubePodCrashLooping", "search", pod="s1")], "g2"))
    return list(Incident.objects.order_by("number"))


def test_split_moves_alerts_out_and_is_kept_as_feedback(
    integrations, services, post_webhook, users, api
):
    incident, _ = two_incidents(integrations, post_webhook)
    checkout = incident.alerts.get(service__slug="checkout")
    response = api(users["responder"]).post(
        f"/api/v1/incidents/{incident.pk}/split/", {"alerts": [checkout.pk]}, format="json"
    )
    assert response.status_code == 201, response.content
    new = Incident.objects.get(pk=response.json()["id"])
    assert list(new.alerts.all()) == [checkout]
    incident.refresh_from_db()
    assert incident.alert_count == 1
    feedback = CorrelationFeedback.objects.get()
    assert (feedback.kind, feedback.together) == ("split", False)
    assert feedback.moved_keys == ["service:checkout"]
    assert "moved to" in incident.timeline.last().message


def test_move_and_merge_through_the_api_are_kept_as_feedback(
    integrations, services, post_webhook, users, api
):
    first, second = two_incidents(integrations, post_webhook)
    client = api(users["responder"])
    search = second.alerts.get()
    response = client.post(
        f"/api/v1/incidents/{first.pk}/move-alerts/", {"alerts": [search.pk]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["alert_count"] == 3
    assert set(CorrelationFeedback.objects.values_list("kind", "together")) == {
        ("move", False),
        ("move", True),
    }
    third = two_incidents(integrations, post_webhook)[-1]
    response = client.post(
        f"/api/v1/incidents/{first.pk}/merge/", {"incidents": [third.pk]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert CorrelationFeedback.objects.filter(kind="merge", together=True).exists()


def test_viewer_cannot_split(integrations, services, post_webhook, users, api):
    incident, _ = two_incidents(integrations, post_webhook)
    response = api(users["viewer"]).post(
        f"/api/v1/incidents/{incident.pk}/split/",
        {"alerts": [incident.alerts.first().pk]},
        format="json",
    )
    assert response.status_code == 403
    assert not CorrelationFeedback.objects.exists()


def test_retrain_task_learns_from_history_and_feedback(integrations, services, post_webhook):
    first, second = two_incidents(integrations, post_webhook)
    search = second.alerts.select_related("service").get()
    correlating.move_alerts([search], first, None, kind="move")
    result = correlate_retrain()
    assert result["feedback"] == 2
    model = correlating.load_cooccurrence()
    assert model.support(cause_key("search"), cause_key("payments")) > 0


def test_correlation_rules_api_validates_and_is_staff_only(users, api):
    body = {"name": "nodes", "matchers": ['node=~".+"'], "group_by": ["node"]}
    refused = api(users["responder"]).post("/api/v1/correlation-rules/", body, format="json")
    assert refused.status_code == 403
    body["matchers"] = ['node=~"("']
    users["root"].is_staff = True
    users["root"].save()
    staff = api(users["root"])
    response = staff.post("/api/v1/correlation-rules/", body, format="json")
    assert response.status_code == 400
    assert "invalid regex" in str(response.json())
    body["matchers"] = ['node=~".+"']  # fixed
    assert staff.post("/api/v1/correlation-rules/", body, format="json").status_code == 201
    assert api(users["viewer"]).get("/api/v1/correlation-rules/").json()["count"] == 1


# --- race safety ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("shape", ["same-group", "related-services"])
def test_concurrent_webhooks_open_exactly_one_incident(shape, integrations, post_webhook):
    assert connection.vendor == "postgresql"  # advisory locks are what is under test
    team = integrations["alertmanager"].team
    payments = Service.objects.create(name="payments", slug="payments", team=team)
    checkout = Service.objects.create(name="checkout", slug="checkout", team=team)
    checkout.depends_on.add(payments)
    am = integrations["alertmanager"]
    workers = 8
    barrier = threading.Barrier(workers)
    statuses: list[int] = []

    def post(i: int) -> None:
        service = "payments" if shape == "same-group" or i % 2 else "checkout"
        name = "KubePodCrashLooping" if service == "payments" else "HighErrorRate"
        group = "g" if shape == "same-group" else f"g{i}"
        payload = am_payload(
            [am_alert(name, service, pod=f"pod-{i}", fingerprint=f"fp-{i}")], group
        )
        barrier.wait()
        try:
            statuses.append(post_webhook(am, payload).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * workers
    assert Incident.objects.count() == 1
    assert Alert.objects.filter(incident__isnull=False).count() == workers


def _measured_webhook(am, post_webhook, size: int) -> tuple[int, int]:
    """Open an incident of ``size`` alerts, then post one more alert for it; return the
    queries run and the rows they returned for that one webhook."""
    Incident.objects.all().delete()
    Alert.objects.all().delete()
    members = [
        am_alert("HighErrorRate", "payments", pod=f"p{i}", fingerprint=f"{size}-{i}")
        for i in range(size)
    ]
    members[0]["labels"]["correlation_kind"] = "cause"
    for start in range(0, size, 10):  # notification groups of ten, as Alertmanager sends
        post_webhook(am, am_payload(members[start : start + 10], f"storm-{size}-{start}"))
    assert Incident.objects.get().alert_count == size
    rows = [0]

    def count_rows(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith("SELECT"):
            rows[0] += max(context["cursor"].rowcount, 0)
        return result

    new = am_alert("HighErrorRate", "payments", pod="new", fingerprint=f"{size}-new")
    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(count_rows):
        response = post_webhook(am, am_payload([new], "another-group"))
    assert response.status_code in (200, 202)
    assert Incident.objects.get().alert_count == size + 1
    return len(queries), rows[0]


def test_webhook_cost_does_not_grow_with_the_size_of_the_incident_it_joins(
    integrations, services, post_webhook, monkeypatch
):
    # server-side cursors report no row count: read everything client-side to count it
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    am = integrations["alertmanager"]
    small = _measured_webhook(am, post_webhook, 10)
    large = _measured_webhook(am, post_webhook, 500)
    assert large == small


def test_candidate_facts_honour_an_explicit_correlation_kind(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    post_webhook(
        am,
        am_payload(
            [
                am_alert(
                    "CustomThing", "payments", pod="a", fingerprint="a", correlation_kind="cause"
                ),
                am_alert("CustomThing", "payments", pod="b", fingerprint="b"),
                am_alert(
                    "CustomThing", "checkout", pod="c", fingerprint="c", correlation_kind="symptom"
                ),
            ],
            "g1",
        ),
    )
    incident = Incident.objects.get()
    facts = correlating.candidates(am, {"nothing"}, [], timezone.now(), timedelta(minutes=10))[
        incident.pk
    ]
    assert facts.cause_services == {"payments"}
    assert facts.service_alerts == {"payments": 1, "checkout": 1}
    stored = Alert.objects.values_list("name", "service__slug", "check_variant")
    assert facts.checks == {check_key(*row) for row in stored}
    assert {c.split("#")[0] for c in facts.checks} == {
        "CustomThing@payments",
        "CustomThing@checkout",
    }
    assert facts.alert_count == 3
    assert set(facts.service_seen) == {"payments", "checkout"}


def test_candidate_facts_count_a_service_wide_alert_double(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    alerts = [
        am_alert("HighErrorRate", "payments", fingerprint="wide"),
        am_alert("HighLatencyP99", "payments", pod="payments-1", fingerprint="one"),
    ]
    post_webhook(am, am_payload(alerts, "g1"))
    incident = Incident.objects.get()
    facts = correlating.candidates(am, {"nothing"}, [], timezone.now(), timedelta(minutes=10))
    assert facts[incident.pk].service_alerts == {"payments": 2 + 1}
    stored = Alert.objects.filter(service__slug="payments").values_list("received_at", flat=True)
    assert facts[incident.pk].service_first == {"payments": min(stored)}
    # and the engine reads it so: a caller's symptom follows the edge into this incident
    post_webhook(am, am_payload([am_alert("HighErrorRate", "checkout", pod="c-1")], "g2"))
    assert Incident.objects.get().alerts.count() == 3


# --- ingestion does not wait for correlation ---------------------------------------------


def test_webhook_stores_alerts_and_leaves_correlation_to_the_queue(
    integrations, services, post_webhook, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a real broker, and no worker running
    am = integrations["alertmanager"]
    with django_capture_on_commit_callbacks() as queued:
        first = post_webhook(
            am, am_payload([am_alert("HighErrorRate", "payments", pod="p1", fingerprint="a")], "g")
        )
        second = post_webhook(
            am, am_payload([am_alert("HighErrorRate", "payments", pod="p2", fingerprint="b")], "g")
        )
    assert (first.status_code, second.status_code) == (200, 200)
    body = first.json()
    assert (body["created"], body["incidents_opened"], body["incidents_updated"]) == (1, [], [])
    assert len(queued) == 2  # each webhook asks for a correlation run once it has committed
    assert not Incident.objects.exists()
    assert list(
        Alert.objects.order_by("fingerprint").values_list("incident", "correlation_pending")
    ) == [(None, True), (None, True)]

    summary = correlate_pending.apply(args=[am.team_id]).get()  # what the worker does
    incident = Incident.objects.get()
    assert summary == {
        "decided": 2,
        "more": False,
        "incidents_opened": [incident.number],
        "incidents_updated": [],
    }
    assert incident.alert_count == 2  # both webhooks' alerts decided in one run
    assert not Alert.objects.filter(Q(incident=None) | Q(correlation_pending=True)).exists()
    again = correlate_pending.apply(args=[am.team_id]).get()
    assert (again["decided"], Incident.objects.count()) == (0, 1)  # idempotent


def test_a_team_has_at_most_one_correlation_run_waiting(
    integrations, services, post_webhook, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """Webhooks queue a run only when none waits for their team: the waiting one will read
    their alerts. A run that starts lets the next webhook queue another, so alerts stored
    while it works are never left behind."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued: list[int] = []
    monkeypatch.setattr(correlate_pending, "delay", queued.append)
    am = integrations["alertmanager"]

    def send(n: int) -> None:
        alert = am_alert("HighErrorRate", "payments", pod=f"p{n}", fingerprint=f"fp{n}")
        with django_capture_on_commit_callbacks(execute=True):
            post_webhook(am, am_payload([alert], "g"))

    send(1)
    send(2)
    send(3)
    assert queued == [am.team_id]  # three webhooks, one waiting run
    run = service.correlate_pending(am.team_id)  # the worker starts it
    assert run.decided == 3
    send(4)  # stored after the run started: it queues the next one
    assert queued == [am.team_id, am.team_id]
    assert service.correlate_pending(am.team_id).decided == 1
    assert not Alert.objects.filter(correlation_pending=True).exists()


def test_correlation_backlog_is_worked_off_in_bounded_runs(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    team_id = am.team_id
    Alert.objects.all().delete()
    alerts = [
        am_alert("HighErrorRate", "payments", pod=f"p{i}", fingerprint=f"fp-{i}") for i in range(3)
    ]
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
        post_webhook(am, am_payload(alerts, "g"))
    first = service.correlate_pending(team_id, limit=2)
    assert (first.decided, first.more) == (2, True)
    assert Alert.objects.filter(correlation_pending=True).count() == 1
    last = service.correlate_pending(team_id, limit=2)
    assert (last.decided, last.more) == (1, False)
    assert Incident.objects.get().alert_count == 3
