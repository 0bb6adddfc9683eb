"""Incident lifecycle, actions, filters and pagination through the REST API."""

import pytest

from incidents.models import Alert, Incident
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(integrations, services, post_webhook) -> Incident:
    post_webhook(integrations["alertmanager"], am_payload([am_alert("A", "payments")], "g1"))
    return Incident.objects.get()


def act(client, incident, action, data=None):
    return client.post(f"/api/v1/incidents/{incident.pk}/{action}/", data or {}, format="json")


def test_status_machine_through_the_api(incident, users, api):
    client = api(users["responder"])
    assert act(client, incident, "acknowledge").json()["status"] == "acknowledged"
    assert (
        act(client, incident, "mitigate", {"note": "rolled back"}).json()["status"] == "mitigated"
    )
    resolved = act(client, incident, "resolve").json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    assert act(client, incident, "reopen").json()["status"] == "triggered"
    kinds = [e["kind"] for e in client.get(f"/api/v1/incidents/{incident.pk}/").json()["timeline"]]
    assert kinds.count("status_changed") == 4
    notes = incident.timeline.filter(message__contains="rolled back")
    assert notes.exists()


@pytest.mark.parametrize(
    ("start", "action"),
    [
        ("triggered", "reopen"),
        ("resolved", "acknowledge"),
        ("resolved", "mitigate"),
        ("acknowledged", "acknowledge"),
        ("resolved", "resolve"),
    ],
)
def test_illegal_transitions_are_409_and_change_nothing(start, action, incident, users, api):
    Incident.objects.filter(pk=incident.pk).update(status=start)
    response = act(api(users["responder"]), incident, action)
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert f"cannot {action}" in response.json()["detail"]
    incident.refresh_from_db()
    assert incident.status == start


def test_detail_has_alerts_and_timeline(incident, users, api):
    data = api(users["viewer"]).get(f"/api/v1/incidents/{incident.pk}/").json()
    assert data["reference"] == f"INC-{incident.number}"
    assert data["alerts"][0]["fingerprint"] == "A-payments"
    assert data["alerts"][0]["labels"]["service"] == "payments"
    assert data["timeline"][0]["kind"] == "created"


def test_assign_commander_note_and_edit(incident, users, api):
    client = api(users["responder"])
    response = act(client, incident, "assign-commander", {"commander": "own-sre"})
    assert response.status_code == 200, response.content
    assert response.json()["commander"] == "own-sre"
    # a commander must be able to respond: a viewer, another team's user and a username that
    # does not exist get the same answer, so the endpoint reveals no other team's people
    answers = {
        name: act(client, incident, "assign-commander", {"commander": name})
        for name in ("own-viewer", "other-sre", "nobody")
    }
    assert {r.status_code for r in answers.values()} == {400}
    shapes = {
        name: r.json()["commander"][0].replace(repr(name), "<name>") for name, r in answers.items()
    }
    assert len(set(shapes.values())) == 1, shapes
    note = act(client, incident, "notes", {"text": "looking at payments"})
    assert note.status_code == 201 and note.json()["actor"] == "own-responder"
    assert act(client, incident, "notes", {}).json() == {"text": ["This field is required."]}
    patched = client.patch(
        f"/api/v1/incidents/{incident.pk}/", {"severity": "critical"}, format="json"
    )
    assert patched.json()["severity"] == "critical"
    bad = client.patch(
        f"/api/v1/incidents/{incident.pk}/", {"severity": "apocalyptic"}, format="json"
    )
    assert bad.status_code == 400 and "severity" in bad.json()


def test_merge_moves_alerts_and_closes_the_source(integrations, services, post_webhook, users, api):
    am = integrations["alertmanager"]
    post_webhook(am, am_payload([am_alert("A", "payments")], "g1"))
    post_webhook(am, am_payload([am_alert("B", "checkout")], "g2"))
    target, source = Incident.objects.order_by("number")
    response = act(api(users["responder"]), target, "merge", {"incidents": [source.pk]})
    assert response.status_code == 200, response.content
    assert response.json()["alert_count"] == 2
    source.refresh_from_db()
    assert source.status == "resolved" and source.merged_into == target
    assert set(Alert.objects.values_list("incident", flat=True)) == {target.pk}
    again = act(api(users["responder"]), target, "merge", {"incidents": [source.pk]})
    assert again.status_code == 409


def test_merge_refuses_incidents_of_other_teams(integrations, services, post_webhook, users, api):
    post_webhook(integrations["alertmanager"], am_payload([am_alert("A", "payments")], "g1"))
    post_webhook(integrations["other"], am_payload([am_alert("B", "search")], "g2"))
    ours = Incident.objects.get(team__slug="own")
    theirs = Incident.objects.get(team__slug="other")
    response = act(api(users["admin"]), ours, "merge", {"incidents": [theirs.pk]})
    assert response.status_code == 403
    assert Alert.objects.get(name="B").incident == theirs


def test_list_filters_search_ordering_and_pagination(
    integrations, services, post_webhook, users, api
):
    am = integrations["alertmanager"]
    for i in range(5):
        post_webhook(
            am,
            am_payload(
                [am_alert(f"Alert{i}", "payments", severity="critical" if i % 2 else "warning")],
                f"g{i}",
            ),
        )
    client = api(users["viewer"])
    page = client.get("/api/v1/incidents/?page_size=2").json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]
    crit = client.get("/api/v1/incidents/?severity=critical").json()
    assert crit["count"] == 2
    assert client.get("/api/v1/incidents/?search=Alert3").json()["count"] == 1
    numbers = [
        r["number"] for r in client.get("/api/v1/incidents/?ordering=number").json()["results"]
    ]
    assert numbers == sorted(numbers)
    assert client.get("/api/v1/incidents/?service=payments&open=true").json()["count"] == 5
    assert client.get("/api/v1/incidents/?status=resolved").json()["count"] == 0
    assert client.get("/api/v1/incidents/?status=bogus").status_code == 400


def test_alerts_endpoint_filters(integrations, services, post_webhook, users, api):
    post_webhook(
        integrations["alertmanager"],
        am_payload([am_alert("A", "payments"), am_alert("B", "checkout")]),
    )
    client = api(users["viewer"])
    data = client.get("/api/v1/alerts/?service=payments").json()
    assert [a["name"] for a in data["results"]] == ["A"]
    assert {"fingerprint", "labels", "status", "incident"} <= set(data["results"][0])
    assert client.get("/api/v1/alerts/?label=service=checkout").json()["count"] == 1


def test_openapi_schema_is_served(users, api):
    response = api(users["viewer"]).get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"/api/v1/incidents/{id}/acknowledge/" in response.content


def test_probable_origin_is_shown_read_only(
    integrations, services, post_webhook, users, api, client
):
    am = integrations["alertmanager"]
    post_webhook(am, am_payload([am_alert("HighErrorRate", "checkout")], "g1"))
    post_webhook(am, am_payload([am_alert("KubePodCrashLooping", "payments")], "g2"))
    incident = Incident.objects.get()
    assert incident.origin_service.slug == "payments"
    url = f"/api/v1/incidents/{incident.pk}/"
    assert api(users["viewer"]).get(url).json()["origin_service"] == "payments"
    listed = api(users["viewer"]).get("/api/v1/incidents/").json()["results"]
    assert listed[0]["origin_service"] == "payments"
    edited = api(users["admin"]).patch(url, {"origin_service": "checkout"}, format="json")
    assert edited.status_code == 200
    incident.refresh_from_db()
    assert incident.origin_service.slug == "payments"
    client.force_login(users["root"])
    page = client.get("/admin/incidents/incident/")
    assert page.status_code == 200
    assert 'class="field-origin_service nowrap">payments</td>' in page.content.decode()
