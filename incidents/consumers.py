"""Live incident updates over WebSocket. Thin: decide the groups, forward the events.

``/ws/incidents/`` joins the groups of every team and service the user can view, so it
receives created/updated incidents and timeline events for exactly those; a user's rights
are read at connect time. ``/ws/incidents/<id>/`` follows one incident the user can view.
"""

from __future__ import annotations

from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from incidents.live import incident_group, service_group, team_group
from incidents.visibility import incidents_for, visible_services, visible_teams

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class _IncidentEvents(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        groups = await self.groups_for(user)
        if groups is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.groups_joined = groups
        self._seen: deque[str] = deque(maxlen=256)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def groups_for(self, user) -> list[str] | None:
        """The channel groups to join, or None to refuse; subclasses decide."""
        return None

    async def incident_event(self, message: dict) -> None:
        event = message["event"]
        # one event reaches a socket through several of its groups: send it once
        key = message.get("id", "")
        if key and key in self._seen:
            return
        self._seen.append(key)
        await self.send_json(event)

    async def receive_json(self, content, **kwargs) -> None:
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})


class IncidentListConsumer(_IncidentEvents):
    @database_sync_to_async
    def groups_for(self, user) -> list[str]:
        teams = [team_group(pk) for pk in visible_teams(user).values_list("pk", flat=True)]
        services = [service_group(pk) for pk in visible_services(user).values_list("pk", flat=True)]
        return teams + services


class IncidentConsumer(_IncidentEvents):
    @database_sync_to_async
    def groups_for(self, user) -> list[str] | None:
        incident_id = self.scope["url_route"]["kwargs"]["incident_id"]
        if not incidents_for(user).filter(pk=incident_id).exists():
            return None
        return [incident_group(incident_id)]

    async def incident_event(self, message: dict) -> None:
        await self.send_json(message["event"])
