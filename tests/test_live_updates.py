"""Live updates over WebSocket, through the Redis channel layer: only to those allowed."""

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from incidents.models import Incident
from reliability.asgi import application
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db(transaction=True)


def socket(path: str, user=None, header: bool = False) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None and header:
        headers.append((b"authorization", f"Token {user.auth_token.key}".encode()))
    elif user is not None:
        path = f"{path}?token={user.auth_token.key}"
    return WebsocketCommunicator(application, path, headers=headers)


def test_channel_layer_is_redis_under_the_test_script():
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"


async def test_incident_events_reach_only_allowed_users(
    integrations, services, users, post_webhook
):
    ours = socket("/ws/incidents/", users["viewer"])
    outsider = socket("/ws/incidents/", users["outsider"], header=True)
    assert (await ours.connect())[0]
    assert (await outsider.connect())[0]

    post = database_sync_to_async(post_webhook)
    response = await post(
        integrations["alertmanager"], am_payload([am_alert("A", "payments")], "g")
    )
    assert response.status_code == 200

    received = [await ours.receive_json_from(timeout=5) for _ in range(2)]
    types = {event["type"] for event in received}
    assert types == {"incident.created", "timeline.events"}
    created = next(e for e in received if e["type"] == "incident.created")
    assert created["incident"]["title"] == "A on payments"
    assert await outsider.receive_nothing(timeout=0.5)
    await ours.disconnect()
    await outsider.disconnect()


async def test_per_incident_socket_follows_actions(integrations, services, users, post_webhook):
    post = database_sync_to_async(post_webhook)
    await post(integrations["alertmanager"], am_payload([am_alert("A", "payments")], "g"))
    incident = await database_sync_to_async(Incident.objects.get)()

    follower = socket(f"/ws/incidents/{incident.pk}/", users["viewer"])
    assert (await follower.connect())[0]

    def acknowledge():
        client = Client(HTTP_AUTHORIZATION=f"Token {users['responder'].auth_token.key}")
        return client.post(f"/api/v1/incidents/{incident.pk}/acknowledge/")

    assert (await database_sync_to_async(acknowledge)()).status_code == 200
    events = [await follower.receive_json_from(timeout=5) for _ in range(2)]
    updated = next(e for e in events if e["type"] == "incident.updated")
    assert updated["incident"]["status"] == "acknowledged"
    timeline = next(e for e in events if e["type"] == "timeline.events")
    assert timeline["events"][0]["actor"] == "own-responder"
    await follower.disconnect()


async def test_sockets_refuse_anonymous_and_invisible_incidents(
    integrations, services, users, post_webhook
):
    anonymous = socket("/ws/incidents/")
    connected, code = await anonymous.connect()
    assert not connected and code == 4401

    post = database_sync_to_async(post_webhook)
    await post(integrations["other"], am_payload([am_alert("B", "search")], "g"))
    theirs = await database_sync_to_async(Incident.objects.get)()
    snooper = socket(f"/ws/incidents/{theirs.pk}/", users["admin"])
    connected, code = await snooper.connect()
    assert not connected and code == 4403

    bad_token = WebsocketCommunicator(
        application, "/ws/incidents/?token=nope", headers=[(b"origin", b"http://127.0.0.1")]
    )
    connected, code = await bad_token.connect()
    assert not connected and code == 4401


async def test_analysis_progress_is_pushed_to_who_may_see_the_incident(
    integrations, services, users, post_webhook
):
    post = database_sync_to_async(post_webhook)
    await post(integrations["alertmanager"], am_payload([am_alert("A", "payments")], "g"))
    incident = await database_sync_to_async(Incident.objects.get)()
    follower = socket(f"/ws/incidents/{incident.pk}/", users["viewer"])
    theirs = socket("/ws/incidents/", users["outsider"], header=True)
    assert (await follower.connect())[0]
    assert (await theirs.connect())[0]

    def rerun():
        client = Client(HTTP_AUTHORIZATION=f"Token {users['responder'].auth_token.key}")
        return client.post(f"/api/v1/incidents/{incident.pk}/insights/")

    assert (await database_sync_to_async(rerun)()).status_code == 202
    seen = []
    while not any(e["type"] == "timeline.events" for e in seen):
        seen.append(await follower.receive_json_from(timeout=5))
    runs = [e["insight"] for e in seen if e["type"] == "analysis.updated"]
    assert runs[0]["status"] == "queued" and runs[0]["reason"] == "manual"
    assert "running" in [r["status"] for r in runs]
    assert runs[-1]["status"] in ("complete", "partial") and runs[-1]["progress"] == 100
    assert all(r["incident"] == incident.pk for r in runs)
    timeline = next(e for e in seen if e["type"] == "timeline.events")
    assert timeline["events"][0]["message"].startswith("analysis ")
    assert await theirs.receive_nothing(timeout=0.5)
    await follower.disconnect()
    await theirs.disconnect()
