"""What people do to incidents: transitions, commander, notes, merge.

Each action runs in one transaction, writes its timeline entry and audit row, and is
announced live. Callers (API views, admin) check permissions first.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from incidents.ingest.service import incident_summary
from incidents.lifecycle import STAMPS, IncidentStatus, next_status
from incidents.live import publish_on_commit
from incidents.models import Alert, Incident, TimelineEvent
from incidents.timeline import add_events
from reliability import audit


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(pk=incident.pk)


def _announce(incident: Incident) -> None:
    event = {"type": "incident.updated", "incident": incident_summary(incident), "changed": True}
    publish_on_commit([(event, incident.pk)])


def transition(incident: Incident, action: str, actor: Any, note: str = "") -> Incident:
    """Move ``incident`` by ``action`` (acknowledge, mitigate, resolve, reopen).

    Raises ``IllegalTransition`` when the current status does not allow it.
    """
    with transaction.atomic():
        incident = _locked(incident)
        before = incident.status
        target = next_status(before, action)
        now = timezone.now()
        incident.status = target
        fields = ["status", "updated_at"]
        if target in STAMPS:
            setattr(incident, STAMPS[target], now)
            fields.append(STAMPS[target])
        if target == IncidentStatus.TRIGGERED:
            incident.resolved_at = incident.mitigated_at = None
            fields += ["resolved_at", "mitigated_at"]
        incident.save(update_fields=fields)
        message = (
            f"{action}d by {actor.get_username()}"
            if action != "reopen"
            else (f"reopened by {actor.get_username()}")
        )
        add_events(
            [
                TimelineEvent(
                    incident=incident,
                    kind=TimelineEvent.Kind.STATUS_CHANGED,
                    actor=actor,
                    message=f"{message}: {note}" if note else message,
                    data={"from": before, "to": target, "action": action},
                    created_at=now,
                )
            ]
        )
        audit.record(
            f"incident.{action}", incident, actor=actor, changes={"status": [before, target]}
        )
        _announce(incident)
    return incident


def assign_commander(incident: Incident, commander: Any, actor: Any) -> Incident:
    with transaction.atomic():
        incident = _locked(incident)
        before = incident.commander.get_username() if incident.commander else None
        incident.commander = commander
        incident.save(update_fields=["commander", "updated_at"])
        add_events(
            [
                TimelineEvent(
                    incident=incident,
                    kind=TimelineEvent.Kind.COMMANDER_ASSIGNED,
                    actor=actor,
                    message=f"{commander.get_username()} is incident commander",
                    data={"from": before, "to": commander.get_username()},
                )
            ]
        )
        audit.record(
            "incident.assign_commander",
            incident,
            actor=actor,
            changes={"commander": [before, commander.get_username()]},
        )
        _announce(incident)
    return incident


def add_note(incident: Incident, text: str, actor: Any) -> TimelineEvent:
    with transaction.atomic():
        (event,) = add_events(
            [
                TimelineEvent(
                    incident=incident, kind=TimelineEvent.Kind.NOTE, actor=actor, message=text
                )
            ]
        )
        audit.record("incident.note", incident, actor=actor, changes={"note": text[:500]})
    return event


def merge(target: Incident, sources: list[Incident], actor: Any) -> Incident:
    """Move the alerts of ``sources`` into ``target`` and resolve the sources as merged."""
    with transaction.atomic():
        target = _locked(target)
        sources = [_locked(s) for s in sources if s.pk != target.pk]
        now = timezone.now()
        events = []
        for source in sources:
            moved = Alert.objects.filter(incident=source).update(incident=target)
            target.services.add(*source.services.all())
            before = source.status
            source.status = IncidentStatus.RESOLVED
            source.resolved_at = source.resolved_at or now
            source.merged_into = target
            source.firing_count = 0
            source.alert_count = 0
            source.save(
                update_fields=[
                    "status",
                    "resolved_at",
                    "merged_into",
                    "firing_count",
                    "alert_count",
                    "updated_at",
                ]
            )
            events += [
                TimelineEvent(
                    incident=target,
                    kind=TimelineEvent.Kind.MERGED,
                    actor=actor,
                    message=(
                        f"{source.reference} merged in by {actor.get_username()} ({moved} alerts)"
                    ),
                    data={"source": source.pk, "alerts_moved": moved},
                    created_at=now,
                ),
                TimelineEvent(
                    incident=source,
                    kind=TimelineEvent.Kind.MERGED,
                    actor=actor,
                    message=f"merged into {target.reference} by {actor.get_username()}",
                    data={"target": target.pk, "from": before},
                    created_at=now,
                ),
            ]
            audit.record(
                "incident.merged",
                source,
                actor=actor,
                changes={"merged_into": [None, target.reference], "status": [before, "resolved"]},
            )
            _announce(source)
        recount(target)
        add_events(events)
        audit.record(
            "incident.merge",
            target,
            actor=actor,
            changes={"merged": [s.reference for s in sources]},
        )
        _announce(target)
    return target


def recount(incident: Incident) -> None:
    alerts = Alert.objects.filter(incident=incident)
    incident.alert_count = alerts.count()
    incident.firing_count = alerts.filter(status=Alert.Status.FIRING).count()
    incident.save(update_fields=["alert_count", "firing_count", "updated_at"])
