"""The audit log records every change with who, where from and which request, and cannot
be changed or deleted through the ORM, the API, the admin or SQL."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection, transaction
from django.test import Client

from incidents.models import Incident, Service
from reliability.models import AuditLog
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(integrations, services, post_webhook) -> Incident:
    post_webhook(integrations["alertmanager"], am_payload([am_alert("A", "payments")], "g1"))
    return Incident.objects.get()


def test_api_action_is_audited_with_actor_request_id_and_ip(incident, users, api):
    client = api(users["responder"])
    response = client.post(
        f"/api/v1/incidents/{incident.pk}/acknowledge/",
        HTTP_X_REQUEST_ID="req-123",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.headers["X-Request-ID"] == "req-123"
    entry = AuditLog.objects.get(action="incident.acknowledge")
    assert entry.actor == users["responder"]
    assert entry.actor_repr == "own-responder"
    assert (entry.request_id, entry.source_ip, entry.via) == ("req-123", "10.1.2.3", "api")
    assert entry.object_id == str(incident.pk)
    assert entry.changes == {"status": ["triggered", "acknowledged"]}


def test_ingestion_is_audited(incident):
    entry = AuditLog.objects.filter(action="alerts.ingested").latest("id")
    assert entry.via == "ingestion"
    assert entry.actor is None
    assert entry.changes["created"] == 1
    assert AuditLog.objects.filter(action="incident.created", object_id=str(incident.pk)).exists()


def test_api_update_records_the_diff(services, users, api):
    api(users["admin"]).patch("/api/v1/services/payments/", {"tier": 2}, format="json")
    entry = AuditLog.objects.get(action="service.updated")
    assert entry.changes == {"tier": [1, 2]}


def test_refused_action_writes_no_audit_row(incident, users, api):
    before = AuditLog.objects.count()
    response = api(users["viewer"]).post(f"/api/v1/incidents/{incident.pk}/acknowledge/")
    assert response.status_code == 403
    assert AuditLog.objects.count() == before


def test_admin_changes_are_audited(services, users):
    client = Client()
    client.force_login(users["root"])
    service = services["payments"]
    response = client.post(
        f"/admin/incidents/service/{service.pk}/change/",
        {
            "name": "Payments",
            "slug": "payments",
            "team": service.team_id,
            "tier": 2,
            "description": "edited in admin",
            "alert_labels": "{}",
            "dependency_links-TOTAL_FORMS": 0,
            "dependency_links-INITIAL_FORMS": 0,
            "slos-TOTAL_FORMS": 0,
            "slos-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    entry = AuditLog.objects.get(action="service.updated")
    assert entry.via == "admin" and entry.actor == users["root"]
    assert "description" in entry.changes["fields"]
    assert Service.objects.get(pk=service.pk).description == "edited in admin"


def test_not_editable_or_deletable_through_the_api(incident, users, api):
    entry = AuditLog.objects.first()
    client = api(users["root"])
    url = f"/api/v1/audit-log/{entry.pk}/"
    assert client.get(url).status_code == 200
    assert client.patch(url, {"action": "x"}, format="json").status_code == 405
    assert client.put(url, {"action": "x"}, format="json").status_code == 405
    assert client.delete(url).status_code == 405
    assert client.post("/api/v1/audit-log/", {"action": "x"}, format="json").status_code == 405
    entry.refresh_from_db()
    assert entry.action != "x"


def test_not_editable_or_deletable_through_the_admin(incident, users):
    client = Client()
    client.force_login(users["root"])
    entry = AuditLog.objects.first()
    count = AuditLog.objects.count()
    assert client.get("/admin/reliability/auditlog/").status_code == 200
    assert client.get("/admin/reliability/auditlog/add/").status_code == 403
    assert (
        client.post(f"/admin/reliability/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    client.post(
        "/admin/reliability/auditlog/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert AuditLog.objects.count() == count
    change = client.post(f"/admin/reliability/auditlog/{entry.pk}/change/", {"action": "x"})
    assert change.status_code in (302, 403)
    entry.refresh_from_db()
    assert entry.action != "x"


def test_orm_refuses_update_and_delete(incident):
    entry = AuditLog.objects.first()
    entry.action = "tampered"
    with pytest.raises(PermissionDenied):
        entry.save()
    with pytest.raises(PermissionDenied):
        entry.delete()
    with pytest.raises(PermissionDenied):
        AuditLog.objects.all().update(action="tampered")
    with pytest.raises(PermissionDenied):
        AuditLog.objects.all().delete()
    assert not AuditLog.objects.filter(action="tampered").exists()


def test_database_refuses_update_and_delete(incident):
    assert connection.vendor == "postgresql", "run the suite with scripts/test.sh (PostgreSQL)"
    entry = AuditLog.objects.first()
    for sql in (
        "UPDATE reliability_auditlog SET action = 'tampered' WHERE id = %s",
        "DELETE FROM reliability_auditlog WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
    assert AuditLog.objects.filter(pk=entry.pk, action=entry.action).exists()
