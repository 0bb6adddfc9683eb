"""Timeline entries: written in bulk and announced live after the transaction commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from incidents.live import audience, publish
from incidents.models import Incident, TimelineEvent


def serialize_event(event: TimelineEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "incident": event.incident_id,
        "kind": event.kind,
        "message": event.message,
        "actor": event.actor.get_username() if event.actor_id and event.actor else None,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


def incident_audiences(incident_ids: Iterable[int]) -> dict[int, list[str]]:
    """The live-update groups of each incident: its team and its services."""
    ids = list(incident_ids)
    services: dict[int, list[int]] = defaultdict(list)
    for incident_id, service_id in Incident.services.through.objects.filter(
        incident_id__in=ids
    ).values_list("incident_id", "service_id"):
        services[incident_id].append(service_id)
    return {
        pk: audience(team_id, sorted(services[pk]))
        for pk, team_id in Incident.objects.filter(pk__in=ids).values_list("pk", "team_id")
    }


def add_events(events: list[TimelineEvent]) -> list[TimelineEvent]:
    """Store ``events`` and push them to the sockets allowed to see their incidents."""
    if not events:
        return events
    TimelineEvent.objects.bulk_create(events)
    by_incident: dict[int, list[TimelineEvent]] = defaultdict(list)
    for event in events:
        by_incident[event.incident_id].append(event)
    payloads = {
        incident_id: {
            "type": "timeline.events",
            "incident_id": incident_id,
            "events": [serialize_event(e) for e in items],
        }
        for incident_id, items in by_incident.items()
    }
    transaction.on_commit(lambda: _publish_all(payloads))
    return events


def _publish_all(payloads: dict[int, dict[str, Any]]) -> None:
    # audiences are read after commit so incidents opened in the same transaction
    # already have their services
    groups = incident_audiences(payloads)
    for incident_id, payload in payloads.items():
        publish(payload, incident_id=incident_id, groups=groups.get(incident_id, []))
