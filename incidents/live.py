"""Live updates: what changed is pushed over Channels to the groups allowed to see it.

An incident's events go to the group of its owning team and of each of its services; a
socket joins the groups of the teams and services its user can view (see consumers), so a
user never receives an incident they could not open in the API.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from celery import current_app
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


def service_group(service_id: int) -> str:
    return f"service.{service_id}"


def incident_group(incident_id: int) -> str:
    return f"incident.{incident_id}"


def audience(team_id: int | None, service_ids: list[int]) -> list[str]:
    groups = [service_group(s) for s in service_ids]
    if team_id is not None:
        groups.append(team_group(team_id))
    return groups


def publish_many(items: list[tuple[dict[str, Any], int, list[str]]]) -> None:
    """Send several events in one hop to the event loop (one ``group_send`` per group)."""
    layer = get_channel_layer()
    if layer is None or not items:
        return

    async def send_all() -> None:
        sends = []
        for event, incident_id, groups in items:
            message = {"type": "incident.event", "id": uuid.uuid4().hex, "event": event}
            sends += [layer.group_send(g, message) for g in [*groups, incident_group(incident_id)]]
        for outcome in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(outcome, Exception):
                logger.warning("live update failed: %s", outcome)

    try:
        if _loop_bound(layer):
            asyncio.run_coroutine_threadsafe(send_all(), _sender_loop()).result(timeout=10)
        else:
            async_to_sync(send_all)()
    except Exception:  # a broken channel layer must never fail the change itself
        logger.exception("live updates failed")


def _loop_bound(layer: Any) -> bool:
    """Layers that keep connections per event loop (Redis) get one long-lived loop, so each
    send reuses its connections instead of opening new ones on a fresh loop."""
    return "Redis" in type(layer).__name__


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="live-updates", daemon=True).start()
        return _loop


def publish_on_commit(items: list[tuple[dict[str, Any], int]]) -> None:
    """After the transaction commits, hand ``(event, incident_id)`` pairs to a task (inline
    when eager) that finds each incident's audience and sends; a request never waits on the
    channel layer."""
    if not items:
        return

    def send() -> None:
        try:
            current_app.tasks["incidents.tasks.publish_live"].delay(items)
        except Exception:  # the broker being down must never fail the change itself
            logger.exception("could not queue %d live updates", len(items))

    transaction.on_commit(send)
