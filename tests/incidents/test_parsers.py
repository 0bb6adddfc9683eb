"""Payload parsing on plain data: the three formats, and a path for every bad field."""

from datetime import UTC, datetime

import pytest

from incidents.ingest.parsers import (
    PayloadError,
    fingerprint_of,
    group_key_for,
    parse_alertmanager,
    parse_generic,
    parse_grafana,
)
from tests.conftest import am_alert, am_payload

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_alertmanager_v4_fields_are_read():
    payload = am_payload([am_alert("HighErrorRate", "payments", severity="critical")], "g1")
    (alert,) = parse_alertmanager(payload, NOW)
    assert alert.name == "HighErrorRate"
    assert alert.labels["service"] == "payments"
    assert alert.fingerprint == "HighErrorRate-payments"
    assert alert.group_key == "g1"
    assert alert.starts_at == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert alert.ends_at is None  # the zero time means "no end"
    assert alert.generator_url.startswith("http://prometheus")


def test_resolved_alert_keeps_its_end_time():
    (alert,) = parse_alertmanager(am_payload([am_alert("A", "s", status="resolved")]), NOW)
    assert alert.status == "resolved"
    assert alert.ends_at == datetime(2026, 11, 28, 10, 5, tzinfo=UTC)


def test_grafana_payload_with_extra_fields():
    payload = am_payload([am_alert("CPU", "auth")])
    payload.update({"orgId": 1, "title": "[FIRING:1]", "state": "alerting", "version": "1"})
    payload["alerts"][0].update({"values": {"B": 97.1}, "dashboardURL": "", "silenceURL": ""})
    (alert,) = parse_grafana(payload, NOW)
    assert alert.name == "CPU" and alert.raw["values"] == {"B": 97.1}


def test_generic_single_object_and_computed_fingerprint():
    (alert,) = parse_generic({"name": "Disk full", "labels": {"host": "db1"}}, NOW)
    assert alert.status == "firing"
    assert alert.labels == {"host": "db1", "alertname": "Disk full"}
    assert alert.fingerprint == fingerprint_of({"alertname": "Disk full", "host": "db1"})
    assert alert.starts_at == NOW


def test_fingerprint_ignores_label_order():
    assert fingerprint_of({"a": "1", "b": "2"}) == fingerprint_of({"b": "2", "a": "1"})


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"version": "4"}, "alerts"),
        ({"version": "4", "alerts": "nope"}, "alerts"),
        ({"version": "3", "alerts": []}, "version"),
        ({"alerts": [{"status": "firing"}]}, "alerts[0].labels"),
        ({"alerts": [{"status": "weird", "labels": {"alertname": "A"}}]}, "alerts[0].status"),
        (
            {"alerts": [{"status": "firing", "labels": {"alertname": 5}}]},
            "alerts[0].labels.alertname",
        ),
        ({"alerts": [{"status": "firing", "labels": {"x": "y"}}]}, "alerts[0].labels.alertname"),
        (
            {
                "alerts": [
                    {"status": "firing", "labels": {"alertname": "A"}, "startsAt": "yesterday"}
                ]
            },
            "alerts[0].startsAt",
        ),
        ({"alerts": [1]}, "alerts[0]"),
        ({"groupKey": 7, "alerts": []}, "groupKey"),
    ],
)
def test_alertmanager_errors_name_the_field(payload, path):
    with pytest.raises(PayloadError) as caught:
        parse_alertmanager(payload, NOW)
    assert path in caught.value.errors


def test_generic_errors_name_the_field():
    with pytest.raises(PayloadError) as caught:
        parse_generic({"alerts": [{"labels": {}}, {"name": "x", "starts_at": 3}]}, NOW)
    assert set(caught.value.errors) == {"alerts[0].name", "alerts[1].starts_at"}


def test_too_many_alerts_is_refused():
    with pytest.raises(PayloadError):
        parse_generic({"alerts": [{"name": "a"}] * 1001}, NOW)


def test_group_key_prefers_configured_labels_then_source_key():
    (alert,) = parse_alertmanager(am_payload([am_alert("A", "pay", region="eu")], "src"), NOW)
    assert group_key_for(alert, ["service", "region"]) == "service=pay,region=eu"
    assert group_key_for(alert, []) == "src"
    alert.group_key = ""
    assert group_key_for(alert, []) == "service=pay"
