"""Live updates: what changed is pushed over Channels to the groups allowed to see it.

An incident's events go to the group of its owning team and of each of its services; a
socket joins the groups of the teams and services its user can view (see consumers), so a
user never receives an incident they could not open in the API.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
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


def publish(event: dict[str, Any], *, incident_id: int, groups: list[str]) -> None:
    """Send ``event`` to every listening socket in ``groups`` and the incident's own group."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "incident.event", "id": uuid.uuid4().hex, "event": event}
    send = async_to_sync(layer.group_send)
    for group in [*groups, incident_group(incident_id)]:
        try:
            send(group, message)
        except Exception:  # a broken channel layer must never fail the change itself
            logger.exception("live update to %s failed", group)


def publish_on_commit(event: dict[str, Any], *, incident_id: int, groups: list[str]) -> None:
    transaction.on_commit(lambda: publish(event, incident_id=incident_id, groups=groups))
