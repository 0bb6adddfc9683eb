"""Timeline entries: written in bulk and announced live after the transaction commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from incidents.live import audience, publish_on_commit
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


CONDENSED_KINDS = (TimelineEvent.Kind.ALERT_ATTACHED, TimelineEvent.Kind.ALERT_RESOLVED)


def condense(events: list[TimelineEvent]) -> list[TimelineEvent]:
    """Fold per-alert entries of one batch into one entry per incident, kind and strategy.

    A storm of 500 alerts joining one incident becomes one readable line; the reason for
    every alert stays in the entry's ``data["alerts"]``.
    """
    out: list[TimelineEvent] = []
    folds: dict[tuple, list[TimelineEvent]] = defaultdict(list)
    for event in events:
        if event.kind in CONDENSED_KINDS:
            folds[(event.incident_id, event.kind, event.data.get("strategy"))].append(event)
        else:
            out.append(event)
    for (incident_id, kind, strategy), group in folds.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        first = group[0]
        verb = "joined" if kind == TimelineEvent.Kind.ALERT_ATTACHED else "resolved"
        names = sorted({e.data.get("name", "") for e in group} - {""})
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        detail = f": {first.data['reason']}" if first.data.get("reason") else ""
        where = f" {first.data['reference']}" if first.data.get("reference") else ""
        out.append(
            TimelineEvent(
                incident_id=incident_id,
                kind=kind,
                message=f"{len(group)} alerts {verb}{where} ({shown}){detail}",
                data={
                    "strategy": strategy,
                    "alerts": [{k: v for k, v in e.data.items() if k != "strategy"} for e in group],
                },
                created_at=first.created_at,
            )
        )
    return out


def add_events(events: list[TimelineEvent]) -> list[TimelineEvent]:
    """Store ``events`` and push them to the sockets allowed to see their incidents."""
    if not events:
        return events
    TimelineEvent.objects.bulk_create(events)
    by_incident: dict[int, list[TimelineEvent]] = defaultdict(list)
    for event in events:
        by_incident[event.incident_id].append(event)
    publish_on_commit(
        [
            (
                {
                    "type": "timeline.events",
                    "incident_id": incident_id,
                    "events": [serialize_event(e) for e in items],
                },
                incident_id,
            )
            for incident_id, items in by_incident.items()
        ]
    )
    return events
