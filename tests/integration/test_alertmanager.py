"""A real Alertmanager sends its webhooks to a live server of the project.

Alerts are pushed into Alertmanager's own API; Alertmanager groups them (by alertname),
notifies us, and later notifies the resolution. We check the incidents that result.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

from incidents.models import Alert, Incident
from tests.integration.processes import free_port, running

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alertmanager(tmp_path, live_server, integrations, services):
    integration = integrations["alertmanager"]
    config = {
        "route": {
            "receiver": "studio",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "studio",
                "webhook_configs": [
                    {
                        "url": f"{live_server.url}/api/v1/ingest/{integration.token}/",
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials": integration.secret}},
                    }
                ],
            }
        ],
    }
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        "prometheus-alertmanager",
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with running(args, f"{url}/-/ready", tmp_path / "alertmanager.log"):
        yield url


def push(alertmanager: str, alerts: list[dict]) -> None:
    response = httpx.post(f"{alertmanager}/api/v2/alerts", json=alerts, timeout=5)
    assert response.status_code == 200, response.text


def am_alert(name: str, service: str, *, ends: datetime | None = None) -> dict:
    alert = {
        "labels": {"alertname": name, "service": service, "severity": "critical"},
        "annotations": {"summary": f"{name} on {service}"},
        "startsAt": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "generatorURL": "http://prometheus.local/graph",
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    return alert


def wait_for(condition, timeout: float = 40.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_alertmanager_groups_notifies_and_resolves(alertmanager):
    alerts = [
        am_alert("HighErrorRate", "payments"),
        am_alert("HighErrorRate", "checkout"),
        am_alert("DiskFull", "postgres"),
    ]
    push(alertmanager, alerts)
    wait_for(lambda: Alert.objects.count() == 3, what="three alerts")
    wait_for(lambda: Incident.objects.filter(alert_count__gt=0).count() == 2, what="two incidents")

    errors = Incident.objects.get(alerts__name="HighErrorRate", alerts__service__slug="payments")
    assert errors.alert_count == 2
    assert {a.service.slug for a in errors.alerts.all()} == {"payments", "checkout"}
    assert errors.group_key.endswith('{}:{alertname="HighErrorRate"}')
    disk = Incident.objects.get(alerts__name="DiskFull")
    assert disk.pk != errors.pk and disk.alert_count == 1
    assert all(len(a.fingerprint) == 16 for a in Alert.objects.all())  # Alertmanager's own

    ended = datetime.now(UTC) - timedelta(seconds=1)
    push(alertmanager, [am_alert("HighErrorRate", s, ends=ended) for s in ("payments", "checkout")])
    wait_for(
        lambda: Incident.objects.get(pk=errors.pk).status == "resolved",
        what="error incident resolved",
    )
    assert Incident.objects.get(pk=disk.pk).status == "triggered"
    assert set(Alert.objects.filter(incident=errors).values_list("status", flat=True)) == {
        "resolved"
    }

    push(alertmanager, [am_alert("DiskFull", "postgres", ends=ended)])
    wait_for(lambda: Incident.objects.get(pk=disk.pk).status == "resolved", what="disk resolved")
    assert Incident.objects.count() == 2
