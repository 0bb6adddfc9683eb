"""Hostile but well-formed bodies: deep nesting, NUL characters, lone surrogates.

Each gets a 400 naming where the problem is, and nothing is written (no alert, no
incident, no audit row). Before ``reliability.jsonsafety`` each of these was a 500."""

import json

import pytest

from incidents.models import Alert, Incident
from reliability.jsonsafety import MAX_DEPTH, unsafe_paths
from reliability.models import AuditLog
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _am_body(**label_overrides: str) -> str:
    alert = am_alert("A", "payments")
    alert["labels"].update(label_overrides)
    return json.dumps(am_payload([alert]))


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        # thousands of levels: the parser itself used to raise RecursionError
        ('{"alerts": ' + deep(5000) + "}", "non_field_errors", "Nested deeper"),
        # parses, but deeper than anything we store
        ('{"alerts": [{"labels": ' + deep(200) + "}]}", "alerts[0].labels", "Nested deeper"),
        # PostgreSQL jsonb refuses \u0000
        (_am_body(team="a\u0000b"), "alerts[0].labels.team", "NUL"),
        # a lone surrogate cannot be encoded (fingerprints, database, response)
        (_am_body(team="\ud800"), "alerts[0].labels.team", "surrogate"),
        (
            json.dumps(am_payload([{**am_alert("A", "payments"), "extra": {"k\u0000": "v"}}])),
            "alerts[0].extra.k\\x00",
            "NUL",
        ),
    ],
    ids=["nested-5000", "nested-200", "nul-label", "lone-surrogate", "nul-key"],
)
def test_hostile_json_is_a_400_naming_the_field_and_writes_nothing(
    body, field, words, integrations, services, post_webhook
):
    audit_before = AuditLog.objects.count()
    response = post_webhook(integrations["alertmanager"], body)
    assert response.status_code == 400, response.content
    errors = response.json()
    named = [key for key in errors if key.startswith(field)]  # deep paths go on: [0][0]...
    assert named, errors
    assert words in " ".join(errors[named[0]])
    assert (Alert.objects.count(), Incident.objects.count()) == (0, 0)
    assert AuditLog.objects.count() == audit_before


def test_the_same_checks_guard_every_api_json_body(integrations, services, users, api):
    """A JSON field of the REST API (a service's labels) gets the same 400, not a 500."""
    client = api(users["admin"])
    for labels, words in (({"service": "x\u0000"}, "NUL"), ({"service": "\udfff"}, "surrogate")):
        response = client.patch(
            "/api/v1/services/payments/",
            json.dumps({"alert_labels": labels}),
            content_type="application/json",
        )
        assert response.status_code == 400, response.content
        assert words in " ".join(response.json()["alert_labels.service"])
    response = client.patch(
        "/api/v1/services/payments/",
        '{"alert_labels": ' + deep(3000) + "}",
        content_type="application/json",
    )
    assert response.status_code == 400
    services["payments"].refresh_from_db()
    assert services["payments"].alert_labels == {}


def test_legal_unicode_is_stored_exactly(integrations, services, post_webhook):
    """Escapes that are valid text (an emoji as a surrogate pair, RTL marks) are kept."""
    body = _am_body(team="\U0001f525 \u200fhot", zone="a\tb")
    assert "\\ud83d\\udd25" in body  # json.dumps wrote the emoji as a surrogate pair
    assert post_webhook(integrations["alertmanager"], body).status_code == 200
    assert Alert.objects.get().labels["team"] == "\U0001f525 \u200fhot"


def test_unsafe_paths_is_iterative_and_bounded():
    value: list = []
    for _ in range(MAX_DEPTH * 50):
        value = [value]
    assert unsafe_paths(value) == {"[0]" * MAX_DEPTH: [f"Nested deeper than {MAX_DEPTH} levels."]}
