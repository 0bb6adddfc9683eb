"""Periodic clean-up: alerts whose end time passed without news, and stale incidents.

Alertmanager sends firing alerts with an ``endsAt`` in the future and keeps re-sending them;
if nothing arrives before that time the alert is over. Both jobs are idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from incidents.ingest.service import IngestResult, refresh_incidents
from incidents.lifecycle import IncidentStatus
from incidents.models import Alert, Incident, Integration, TimelineEvent
from incidents.timeline import add_events
from reliability import audit


@dataclass
class HousekeepingReport:
    expired_alerts: int = 0
    resolved_incidents: list[int] = field(default_factory=list)
    stale_incidents: list[int] = field(default_factory=list)


def expire_alerts(now: datetime) -> HousekeepingReport:
    """Resolve firing alerts whose ``ends_at`` has passed, and their incidents if empty."""
    report = HousekeepingReport()
    expired = Alert.objects.filter(status=Alert.Status.FIRING, ends_at__lt=now)
    by_integration: dict[int, set[int]] = {}
    with transaction.atomic(), audit.audit_context(via="system"):
        rows = list(expired.select_for_update(skip_locked=True))
        events = []
        for alert in rows:
            alert.status = Alert.Status.RESOLVED
            if alert.incident_id:
                by_integration.setdefault(alert.integration_id, set()).add(alert.incident_id)
                events.append(
                    TimelineEvent(
                        incident_id=alert.incident_id,
                        kind=TimelineEvent.Kind.ALERT_RESOLVED,
                        message=f"alert {alert.name} expired (no update since its end time)",
                        data={"fingerprint": alert.fingerprint, "expired": True},
                        created_at=now,
                    )
                )
        Alert.objects.bulk_update(rows, ["status"])
        add_events(events)
        report.expired_alerts = len(rows)
        for integration in Integration.objects.filter(pk__in=list(by_integration)):
            result = IngestResult()
            batch = [a for a in rows if a.integration_id == integration.pk]
            refresh_incidents(integration, by_integration[integration.pk], batch, now, result)
            report.resolved_incidents += result.incidents_resolved
    return report


def flag_stale_incidents(now: datetime, after: timedelta) -> list[int]:
    """Note on the timeline (once) when an open incident has had no activity for ``after``."""
    stale = Incident.objects.filter(
        ~Q(status=IncidentStatus.RESOLVED),
        last_alert_at__lt=now - after,
        updated_at__lt=now - after,
    ).exclude(timeline__data__stale=True)
    numbers = []
    with transaction.atomic():
        events = []
        for incident in stale:
            numbers.append(incident.number)
            events.append(
                TimelineEvent(
                    incident=incident,
                    kind=TimelineEvent.Kind.NOTE,
                    message=f"no activity for {after}; still {incident.status}",
                    data={"stale": True},
                    created_at=now,
                )
            )
        add_events(events)
    return numbers


def run(now: datetime, stale_after: timedelta) -> HousekeepingReport:
    report = expire_alerts(now)
    report.stale_incidents = flag_stale_incidents(now, stale_after)
    return report
