"""A lock cycle between a webhook and another writer never reaches the sender as a 500.

Real PostgreSQL, two connections: another transaction holds the incident and then asks for
the alert the webhook holds. PostgreSQL aborts one side ("deadlock detected"); the webhook's
transaction is run again and the sender sees 200."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction

from incidents.models import Alert, Incident
from reliability.db import is_retryable
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_until_someone_waits_for_a_lock(timeout_s: float = 10.0) -> None:
    with connections["default"].cursor() as cursor:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the webhook never waited for the incident lock")


def test_webhook_caught_in_a_deadlock_is_retried_not_a_500(integrations, services, post_webhook):
    am = integrations["alertmanager"]
    assert post_webhook(am, am_payload([am_alert("A", "payments")], "g")).status_code == 200
    incident = Incident.objects.get()
    alert = Alert.objects.get()
    outcome: dict[str, object] = {}
    holding = threading.Event()

    def other_writer() -> None:
        """Holds the incident, then wants the alert the webhook has locked meanwhile."""
        try:
            with transaction.atomic():
                list(Incident.objects.select_for_update().filter(pk=incident.pk))
                holding.set()
                _wait_until_someone_waits_for_a_lock()
                list(Alert.objects.select_for_update().filter(pk=alert.pk))
            outcome["other"] = "committed"
        except Exception as exc:  # the side PostgreSQL chose may be this one
            outcome["other"] = "aborted" if is_retryable(exc) else repr(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_writer)
    thread.start()
    assert holding.wait(10)
    response = post_webhook(am, am_payload([am_alert("A", "payments", status="resolved")], "g"))
    thread.join(20)
    assert response.status_code == 200, response.content
    assert outcome["other"] in ("committed", "aborted")
    alert.refresh_from_db()
    incident.refresh_from_db()
    assert alert.status == "resolved"
    assert incident.firing_count == 0
    assert Alert.objects.count() == 1
