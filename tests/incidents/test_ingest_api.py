"""The webhook end to end: storing, deduplicating, grouping, resolving, refusing."""

import json

import pytest
from django.test import override_settings

from incidents.models import Alert, Incident, TimelineEvent
from reliability.models import AuditLog
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


def counts():
    return (Alert.objects.count(), Incident.objects.count(), TimelineEvent.objects.count())


def test_alertmanager_alerts_open_one_incident_per_group(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    response = post_webhook(
        am,
        am_payload(
            [
                am_alert("HighErrorRate", "payments", severity="critical"),
                am_alert("Latency", "checkout"),
            ],
            group_key="g-pay",
        ),
    )
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    incident = Incident.objects.get()
    assert incident.title == "HighErrorRate on payments"
    assert incident.severity == "critical"
    assert incident.team == am.team
    assert {s.slug for s in incident.services.all()} == {"payments", "checkout"}
    assert incident.alert_count == incident.firing_count == 2
    kinds = list(incident.timeline.values_list("kind", flat=True))
    assert kinds == ["created", "alert_attached"]
    assert "joined INC-" in incident.timeline.get(kind="alert_attached").message

    post_webhook(am, am_payload([am_alert("Other", "search")], group_key="g-search"))
    assert Incident.objects.count() == 2


def test_resent_firing_alert_updates_and_never_duplicates(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    payload = am_payload([am_alert("A", "payments")], group_key="g")
    post_webhook(am, payload)
    payload["alerts"][0]["annotations"]["summary"] = "changed"
    response = post_webhook(am, payload)
    assert response.json()["updated"] == 1
    alert = Alert.objects.get()
    assert alert.receive_count == 2
    assert alert.annotations["summary"] == "changed"
    assert Incident.objects.count() == 1


def test_resolution_resolves_alerts_then_the_incident(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    post_webhook(am, am_payload([am_alert("A", "payments"), am_alert("B", "payments")], "g"))
    post_webhook(am, am_payload([am_alert("A", "payments", status="resolved")], "g"))
    incident = Incident.objects.get()
    assert (incident.status, incident.firing_count) == ("triggered", 1)
    post_webhook(am, am_payload([am_alert("B", "payments", status="resolved")], "g"))
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.resolved_at is not None
    assert incident.timeline.filter(data__auto=True).exists()
    assert AuditLog.objects.filter(
        action="incident.auto_resolved", object_id=str(incident.pk)
    ).exists()


@pytest.mark.parametrize("switch", ["setting", "integration"])
def test_auto_resolve_can_be_turned_off(switch, integrations, services, post_webhook, settings):
    am = integrations["alertmanager"]
    if switch == "setting":
        settings.INCIDENT_AUTO_RESOLVE = False
    else:
        am.auto_resolve = False
        am.save()
    post_webhook(am, am_payload([am_alert("A", "payments")], "g"))
    post_webhook(am, am_payload([am_alert("A", "payments", status="resolved")], "g"))
    incident = Incident.objects.get()
    assert incident.status == "triggered"
    assert incident.firing_count == 0


def test_flapping_alert_reopens_instead_of_duplicating(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    post_webhook(am, am_payload([am_alert("A", "payments")], "g"))
    post_webhook(am, am_payload([am_alert("A", "payments", status="resolved")], "g"))
    post_webhook(am, am_payload([am_alert("A", "payments")], "g"))
    incident = Incident.objects.get()
    assert incident.status == "triggered"
    assert incident.timeline.filter(message__startswith="reopened").exists()


def test_grafana_and_generic_sources(integrations, services, post_webhook):
    grafana = am_payload([am_alert("CPU", "payments")], "grafana-group")
    grafana.update({"orgId": 1, "state": "alerting", "version": "1", "title": "[FIRING:1] CPU"})
    assert post_webhook(integrations["grafana"], grafana).status_code == 200
    generic = {"alerts": [{"name": "Queue backlog", "labels": {"service": "checkout"}}]}
    response = post_webhook(integrations["generic"], generic)
    assert response.status_code == 200, response.content
    alert = Alert.objects.get(name="Queue backlog")
    assert alert.service.slug == "checkout"
    assert alert.incident is not None


def test_services_are_matched_by_their_identifying_labels(integrations, services, post_webhook):
    services["payments"].alert_labels = {"app": "pay-api"}
    services["payments"].save()
    post_webhook(integrations["alertmanager"], am_payload([am_alert("A", "x", app="pay-api")]))
    assert Alert.objects.get().service == services["payments"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ("{not json", "application/json", 400, "detail"),
        ("[]", "application/json", 400, "non_field_errors"),
        ('{"version": "4"}', "application/json", 400, "alerts"),
        (
            '{"alerts": [{"status": "firing", "labels": {"alertname": 1}}]}',
            "application/json",
            400,
            "alerts[0].labels.alertname",
        ),
        ("alerts=1", "application/x-www-form-urlencoded", 415, "detail"),
        ("", "text/plain", 415, "detail"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(
    body, content_type, status, field, integrations, post_webhook
):
    before = counts()
    audit_before = AuditLog.objects.count()
    response = post_webhook(integrations["alertmanager"], body, content_type=content_type)
    assert response.status_code == status, response.content
    assert field in response.json()
    assert counts() == before
    assert AuditLog.objects.count() == audit_before


def test_one_bad_alert_rejects_the_whole_batch(integrations, services, post_webhook):
    good = am_alert("A", "payments")
    bad = am_alert("B", "payments")
    bad["startsAt"] = "not a time"
    response = post_webhook(integrations["alertmanager"], am_payload([good, bad]))
    assert response.status_code == 400
    assert "alerts[1].startsAt" in response.json()
    assert counts() == (0, 0, 0)


@override_settings(INGEST_MAX_BODY_BYTES=2000)
def test_oversized_body_is_413(integrations, post_webhook):
    payload = am_payload([am_alert(f"A{i}", "payments") for i in range(30)])
    response = post_webhook(integrations["alertmanager"], payload)
    assert response.status_code == 413
    assert Alert.objects.count() == 0


def test_unknown_integration_is_404(integrations, post_webhook):
    integrations["alertmanager"].token = "does-not-exist"
    assert post_webhook(integrations["alertmanager"], am_payload([])).status_code == 404


def test_disabled_integration_is_403(integrations, post_webhook):
    am = integrations["alertmanager"]
    am.enabled = False
    am.save()
    response = post_webhook(am, am_payload([am_alert("A", "payments")]))
    assert response.status_code == 403
    assert Alert.objects.count() == 0


@pytest.mark.parametrize("secret", ["wrong", ""])
def test_wrong_or_missing_secret_is_401(secret, integrations, post_webhook):
    response = post_webhook(
        integrations["alertmanager"], am_payload([am_alert("A", "p")]), secret=secret
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert Alert.objects.count() == 0


def test_secret_may_come_as_query_parameter(integrations, api):
    am = integrations["alertmanager"]
    response = api().post(
        f"/api/v1/ingest/{am.token}/?secret={am.secret}",
        data=json.dumps(am_payload([am_alert("A", "p")])),
        content_type="application/json",
    )
    assert response.status_code == 200


def test_integrations_are_isolated_by_fingerprint(integrations, services, post_webhook):
    payload = am_payload([am_alert("A", "payments")], "g")
    post_webhook(integrations["alertmanager"], payload)
    post_webhook(integrations["other"], payload)
    assert Alert.objects.count() == 2
    assert Incident.objects.count() == 2
