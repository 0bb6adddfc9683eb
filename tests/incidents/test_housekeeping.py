"""Housekeeping through Celery (eager here): expired alerts, stale incidents, beat schedule."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from incidents import tasks
from incidents.models import Alert, Incident
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


def test_alert_past_its_end_time_expires_and_resolves_its_incident(
    integrations, services, post_webhook
):
    alert = am_alert("A", "payments")
    alert["endsAt"] = "2026-11-28T10:05:00Z"  # Alertmanager's resolve timeout, then silence
    post_webhook(integrations["alertmanager"], am_payload([alert], "g"))
    Alert.objects.update(ends_at=timezone.now() - timedelta(minutes=1))
    report = tasks.housekeeping.apply().get()
    assert report["expired_alerts"] == 1
    incident = Incident.objects.get()
    assert incident.status == "resolved"
    assert report["resolved_incidents"] == [incident.number]
    # idempotent: running again changes nothing
    assert tasks.housekeeping.apply().get()["expired_alerts"] == 0


def test_stale_incident_is_flagged_once(integrations, services, post_webhook, settings):
    post_webhook(integrations["alertmanager"], am_payload([am_alert("A", "payments")], "g"))
    long_ago = timezone.now() - timedelta(hours=settings.INCIDENT_STALE_AFTER_HOURS + 1)
    Incident.objects.update(last_alert_at=long_ago, updated_at=long_ago)
    first = tasks.housekeeping.apply().get()
    second = tasks.housekeeping.apply().get()
    assert len(first["stale_incidents"]) == 1 and second["stale_incidents"] == []
    assert Incident.objects.get().timeline.filter(data__stale=True).count() == 1


def test_beat_schedule_lives_in_the_database():
    task = PeriodicTask.objects.get(name="incidents: housekeeping")
    assert task.task == "incidents.tasks.housekeeping" and task.enabled
    assert tasks.housekeeping.acks_late
