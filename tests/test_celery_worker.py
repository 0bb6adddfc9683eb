"""Celery through the real Redis broker: a worker picks up a task and does its work."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from incidents import tasks
from incidents.models import Alert, Incident
from reliability.celery import app
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker():
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "run under scripts/test.sh"
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=["default"]):
            yield
    finally:
        app.conf.task_always_eager = True


def test_housekeeping_runs_on_a_worker(worker, integrations, services, post_webhook):
    post_webhook(integrations["alertmanager"], am_payload([am_alert("A", "payments")], "g"))
    Alert.objects.update(ends_at=timezone.now() - timedelta(minutes=1))
    tasks.housekeeping.apply_async(queue="default")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and Incident.objects.get().status != "resolved":
        time.sleep(0.2)
    assert Incident.objects.get().status == "resolved"
