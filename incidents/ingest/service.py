"""Writing a parsed webhook, then correlating what it stored.

``ingest`` is the webhook's transaction: it upserts the alerts under advisory locks on
their fingerprints only and applies resolutions of alerts already in an incident. Firing
alerts are flagged ``correlation_pending``; ``correlate_pending`` (the Celery task of the
same name, after commit) decides them under one lock per team, so two webhooks for one
group can never open two incidents, and a slow correlation never holds a webhook back.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q

from incidents import correlating
from incidents.correlation import Decision, IncidentFacts
from incidents.correlation.strategies import check_variant
from incidents.correlation.types import Action
from incidents.ingest.parsers import AlertIn, group_key_for
from incidents.lifecycle import SEVERITY_RANK, IncidentStatus, severity_from_labels
from incidents.live import publish_on_commit
from incidents.models import Alert, Incident, Integration, Service, TimelineEvent
from incidents.numbering import reserve_numbers
from incidents.signals import incident_activity
from incidents.timeline import add_events, condense
from reliability import audit
from reliability.db import retry_transaction

logger = logging.getLogger(__name__)

REOPEN_GRACE = timedelta(minutes=10)


@dataclass
class IngestResult:
    received: int = 0
    created: int = 0
    updated: int = 0
    resolved: int = 0
    incidents_opened: list[int] = field(default_factory=list)
    incidents_updated: list[int] = field(default_factory=list)
    incidents_resolved: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _lock_id(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


def lock_keys(keys: set[str]) -> None:
    """Take transaction-scoped advisory locks on ``keys`` in a fixed order (no deadlocks)."""
    if connection.vendor != "postgresql" or not keys:
        return
    ids = sorted({_lock_id(k) for k in keys})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [ids])


def match_service(labels: dict[str, str], services: list[tuple[int, str, dict]]) -> int | None:
    """The service whose identifying labels are all on the alert (most specific wins)."""
    best, best_size = None, 0
    for pk, _slug, wanted in services:
        if len(wanted) > best_size and all(labels.get(k) == v for k, v in wanted.items()):
            best, best_size = pk, len(wanted)
    return best


def _services_index() -> list[tuple[int, str, dict]]:
    return [
        (pk, slug, labels or {"service": slug})
        for pk, slug, labels in Service.objects.values_list("pk", "slug", "alert_labels")
    ]


def _title_for(alert: Alert, service_slug: str | None) -> str:
    summary = alert.annotations.get("summary") or alert.annotations.get("title")
    if summary:
        return summary[:300]
    return f"{alert.name} on {service_slug}"[:300] if service_slug else alert.name[:300]


def ingest(integration: Integration, alerts_in: list[AlertIn], now: datetime) -> IngestResult:
    """Store ``alerts_in`` from ``integration``, all or nothing; correlation runs after.

    The transaction locks only the batch's fingerprints, so webhooks of one team no longer
    wait for each other: deciding which incident a new alert belongs to is left to
    ``correlate_pending`` (after commit, on the ``correlation`` queue). Only resolutions of
    alerts already in an incident are applied here, because they need no decision.
    """
    latest: dict[str, AlertIn] = {}
    for alert in alerts_in:  # the same alert twice in one payload: the last one counts
        latest[alert.fingerprint] = alert
    if not latest:
        return IngestResult(received=len(alerts_in))
    keys = {
        fp: f"{integration.pk}:{group_key_for(a, integration.group_by)}" for fp, a in latest.items()
    }
    services = _services_index()
    # a lock cycle with another writer (PostgreSQL aborts one side) is retried, never a 500
    result, pending = retry_transaction(
        lambda: _store(integration, latest, keys, services, now, received=len(alerts_in))
    )
    if pending and settings.CELERY_TASK_ALWAYS_EAGER:
        # embedded mode and tests: decide now so the response names the incidents (those
        # of other webhooks' alerts too when one run decided them together)
        decided = correlate_until_done(integration.team_id).get(integration.pk)
        if decided is not None:
            result.incidents_opened = decided.incidents_opened
            result.incidents_updated = sorted(
                set(result.incidents_updated + decided.incidents_updated)
                - set(decided.incidents_opened)
            )
            result.incidents_resolved = sorted(
                set(result.incidents_resolved + decided.incidents_resolved)
            )
    return result


def _store(
    integration: Integration,
    latest: dict[str, AlertIn],
    keys: dict[str, str],
    services: list[tuple[int, str, dict]],
    now: datetime,
    *,
    received: int,
) -> tuple[IngestResult, bool]:
    """``ingest``'s transaction: upsert, apply resolutions, audit. Safe to run again."""
    result = IngestResult(received=received)
    with transaction.atomic(), audit.audit_context(via="ingestion"):
        lock_keys({f"fp:{integration.pk}:{fp}" for fp in latest})
        existing = {
            a.fingerprint: a
            for a in Alert.objects.select_for_update()
            .filter(integration=integration, fingerprint__in=list(latest))
            .order_by("pk")  # one order for all webhooks: no deadlock between them
        }
        rows, created, changed_status = _prepare_rows(
            integration, latest, existing, keys, services, now
        )
        result.created, result.updated = len(created), len(rows) - len(created)
        _save_rows(rows)
        touched: set[int] = set()
        events: list[TimelineEvent] = []
        for row in rows:
            if row.fingerprint in changed_status and row.status == Alert.Status.RESOLVED:
                result.resolved += 1
                if row.incident_id:
                    touched.add(row.incident_id)
                    events.append(_resolved_event(row, now))
        add_events(condense(events))
        refresh_incidents(integration, touched, rows, now, result)
        result.incidents_updated = sorted(
            Incident.objects.filter(pk__in=touched).values_list("number", flat=True)
        )
        audit.record(
            "alerts.ingested",
            integration,
            changes={k: v for k, v in result.as_dict().items() if v},
        )
        pending = any(row.correlation_pending for row in rows)
        if pending:
            _request_correlation(integration.team_id)
    return result, pending


QUEUED_TTL_S = 60  # a run lost before it started frees its team for another after this


def _queued_key(team_id: int) -> str:
    return f"correlation:queued:{team_id}"


def _request_correlation(team_id: int) -> None:
    """Queue the team's correlation once this transaction commits (a worker's job).

    One waiting run per team is enough: a run reads every alert stored before it starts,
    and it lets the next webhook queue another as it starts (``correlate_pending``). In a
    storm this saves the worker hundreds of runs that would find nothing left to do."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # ``ingest`` runs it itself, right after the transaction
    from incidents.tasks import correlate_pending  # the tasks module imports this one

    def queue() -> None:
        if cache.add(_queued_key(team_id), 1, QUEUED_TTL_S):
            correlate_pending.delay(team_id)

    transaction.on_commit(queue)


def _resolved_event(row: Alert, now: datetime) -> TimelineEvent:
    return TimelineEvent(
        incident_id=row.incident_id,
        kind=TimelineEvent.Kind.ALERT_RESOLVED,
        message=f"alert {row.name} resolved",
        data={
            "fingerprint": row.fingerprint,
            "name": row.name,
            "alert_id": row.pk,
        },
        created_at=now,
    )


CORRELATION_BATCH = 5000


@dataclass
class PendingRun:
    """What one ``correlate_pending`` run decided, per integration, and whether alerts are
    still waiting (more than one run's worth)."""

    batches: dict[int, IngestResult] = field(default_factory=dict)
    decided: int = 0
    more: bool = False

    def summary(self) -> dict[str, Any]:
        opened = {n for r in self.batches.values() for n in r.incidents_opened}
        updated = {n for r in self.batches.values() for n in r.incidents_updated}
        return {
            "decided": self.decided,
            "more": self.more,
            "incidents_opened": sorted(opened),
            "incidents_updated": sorted(updated - opened),  # opened by this run: not "updated"
        }


def correlate_pending(team_id: int, limit: int = CORRELATION_BATCH) -> PendingRun:
    """Decide the team's waiting alerts, oldest first, at most ``limit`` in one transaction.

    The team lock serialises runs of one team (topology and learned grouping cross group
    keys); alerts a webhook is still writing are skipped, that webhook queues its own run.
    All waiting alerts of an integration go through the correlator as one batch, each
    with its own arrival time, so a backlog of small webhooks costs one candidate lookup.
    Deciding clears the flag in the same transaction: running twice decides nothing twice,
    so a transaction PostgreSQL aborts for a lock cycle is simply run again.
    """
    cache.delete(_queued_key(team_id))  # before reading: later webhooks queue a new run
    return retry_transaction(lambda: _correlate_pending_once(team_id, limit))


def _correlate_pending_once(team_id: int, limit: int) -> PendingRun:
    run = PendingRun()
    with transaction.atomic(), audit.audit_context(via="correlation"):
        lock_keys({f"correlate:team:{team_id}"})
        waiting = list(
            Alert.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(correlation_pending=True, integration__team_id=team_id)
            .select_related("integration", "integration__team")
            .order_by("last_received_at", "pk")[: limit + 1]
        )
        run.more = len(waiting) > limit
        waiting = waiting[:limit]
        if not waiting:
            return run
        services = _services_index()
        slug_of = {pk: slug for pk, slug, _ in services}
        batches: dict[int, list[Alert]] = defaultdict(list)
        for row in waiting:  # arrival order within each integration
            batches[row.integration_id].append(row)
        for integration_id, rows in batches.items():
            result = IngestResult(received=len(rows))
            now = rows[-1].last_received_at  # the latest arrival: the batch's "now"
            _correlate_batch(rows[0].integration, rows, now, slug_of, result)
            run.batches[integration_id] = result
        run.decided = len(waiting)
    return run


def correlate_until_done(team_id: int) -> dict[int, IngestResult]:
    """Run ``correlate_pending`` until nothing waits (eager mode, in the request)."""
    decided: dict[int, IngestResult] = defaultdict(IngestResult)
    while True:
        run = correlate_pending(team_id)
        for integration_id, result in run.batches.items():
            total = decided[integration_id]
            total.incidents_opened += result.incidents_opened
            total.incidents_updated += result.incidents_updated
            total.incidents_resolved += result.incidents_resolved
        if not run.more:
            return decided


def _correlate_batch(
    integration: Integration,
    rows: list[Alert],
    now: datetime,
    slug_of: dict[int, str],
    result: IngestResult,
) -> None:
    """The correlator, decisions, timeline and refresh for one webhook's waiting alerts."""
    fingerprints = [row.fingerprint for row in rows]
    candidates = correlating.candidates(
        integration, {row.group_key for row in rows}, fingerprints, now, REOPEN_GRACE
    )
    # each alert keeps its own arrival time (the windows measure from it)
    facts = [correlating.facts_of(row, slug_of.get(row.service_id)) for row in rows]
    correlator = correlating.correlator_for(integration, REOPEN_GRACE)
    decisions, pool = correlator.run_batch(facts, candidates.values(), now)
    by_fp = {row.fingerprint: row for row in rows}
    real_id: dict[Any, int] = {}
    touched, events = _apply_decisions(
        integration, decisions, by_fp, candidates, slug_of, now, result, real_id
    )
    correlating.write_back(pool, real_id, touched)
    for row in rows:
        row.correlation_pending = False
    # only what correlation owns: a webhook may since have changed the rest of the row
    Alert.objects.bulk_update(rows, ["incident", "group_key", "correlation_pending"])
    for event, row in events:
        if row is not None:
            event.data["alert_id"] = row.pk
    add_events(condense([event for event, _row in events]))
    refresh_incidents(integration, touched, rows, now, result)
    _announce_activity(set(real_id.values()), events)


def _prepare_rows(integration, latest, existing, keys, services, now):
    """The alert rows as they will be saved (new ones unsaved), and which changed status."""
    rows: list[Alert] = []
    created: list[Alert] = []
    changed_status: set[str] = set()
    for fp, item in latest.items():
        service_id = match_service(item.labels, services)
        row = existing.get(fp)
        if row is None:
            row = Alert(
                integration=integration,
                fingerprint=fp,
                received_at=now,
                receive_count=0,
            )
            created.append(row)
        elif row.status != item.status:
            changed_status.add(fp)
        row.name, row.status = item.name, item.status
        row.labels, row.annotations = item.labels, item.annotations
        row.starts_at, row.ends_at = item.starts_at, item.ends_at
        row.generator_url, row.group_key = item.generator_url, keys[fp]
        row.check_variant = check_variant(item.labels)
        row.service_id, row.raw = service_id, item.raw
        row.last_received_at = now
        row.receive_count += 1
        # firing alerts wait for correlation; one still waiting keeps waiting
        row.correlation_pending = row.correlation_pending or item.status == Alert.Status.FIRING
        rows.append(row)
    return rows, created, changed_status


_UPSERT_FIELDS = [
    "name",
    "status",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "generator_url",
    "group_key",
    "check_variant",
    "service",
    "incident",
    "raw",
    "last_received_at",
    "receive_count",
    "correlation_pending",
]


def _save_rows(rows: list[Alert]) -> None:
    """One INSERT ... ON CONFLICT DO UPDATE for new and known alerts alike (rows are locked)."""
    Alert.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["integration", "fingerprint"],
        update_fields=_UPSERT_FIELDS,
    )


def _apply_decisions(
    integration: Integration,
    decisions: list[Decision],
    by_fp: dict[str, Alert],
    candidates: dict[int, IncidentFacts],
    slug_of: dict[int, str],
    now: datetime,
    result: IngestResult,
    real_id: dict[Any, int],
) -> tuple[set[int], list[tuple[TimelineEvent, Alert | None]]]:
    """Open incidents and point the alerts at theirs (in memory: rows are saved after).

    Returns the touched incident ids and the timeline entries to write, each with the alert
    it is about so the alert's id can be filled in once saved. Held alerts (waiting for a
    rule's minimum count) keep no incident; their new group key is saved with the rows.
    """
    opened = [d for d in decisions if d.action is Action.OPEN]
    numbers = iter(reserve_numbers(len(opened)))
    new_numbers: dict[int, int] = {}
    events: list[tuple[TimelineEvent, Alert | None]] = []
    for decision in opened:
        alert = by_fp[decision.alert_id]
        incident = Incident.objects.create(
            number=next(numbers),
            title=_title_for(alert, slug_of.get(alert.service_id)),
            severity=severity_from_labels(alert.labels),
            team=integration.team,
            group_key=decision.group_key[:500],
            created_at=now,
            last_alert_at=now,
        )
        real_id[decision.incident_id] = incident.pk
        new_numbers[incident.pk] = incident.number
        result.incidents_opened.append(incident.number)
        events.append(
            (
                TimelineEvent(
                    incident=incident,
                    kind=TimelineEvent.Kind.CREATED,
                    message=f"{incident.reference} opened by alert {alert.name}: {decision.reason}",
                    data={"strategy": decision.strategy, "fingerprint": alert.fingerprint},
                    created_at=now,
                ),
                alert,
            )
        )
        audit.record("incident.created", incident, changes={"group_key": incident.group_key})

    touched: set[int] = set()
    reopened: set[int] = set()
    known = [pk for pk in candidates if isinstance(pk, int)]  # not rules' waiting groups
    references = dict(Incident.objects.filter(pk__in=known).values_list("pk", "number"))
    references.update({pk: number for pk, number in new_numbers.items()})
    merged_into: dict[int, int] = {}
    for decision in decisions:
        if decision.action is Action.IGNORE:
            continue
        alert = by_fp[decision.alert_id]
        if decision.action is Action.HOLD:  # waits, unattached, as a candidate of its rule
            alert.group_key = decision.group_key[:500]
            continue
        incident_id = real_id.get(decision.incident_id, decision.incident_id)
        touched.add(incident_id)
        if decision.promoted:  # candidates waiting for their rule's minimum join it now
            for fp in decision.promoted:
                if fp in by_fp:
                    by_fp[fp].incident_id = incident_id
            Alert.objects.filter(
                integration=integration, fingerprint__in=list(decision.promoted)
            ).exclude(fingerprint__in=list(by_fp)).update(incident_id=incident_id)
        if decision.merges:
            sources = [real_id.get(m, m) for m in decision.merges]
            sources = [m for m in sources if isinstance(m, int) and m != incident_id]
            correlating.auto_merge(incident_id, sources, decision.reason, now)
            merged_into.update(dict.fromkeys(sources, incident_id))
            touched.difference_update(sources)
        if decision.action is Action.KEEP:
            continue
        if decision.action is Action.REOPEN and incident_id not in reopened:
            reopened.add(incident_id)
            Incident.objects.filter(pk=incident_id).update(
                status=IncidentStatus.TRIGGERED, resolved_at=None, mitigated_at=None
            )
            events.append(
                (
                    TimelineEvent(
                        incident_id=incident_id,
                        kind=TimelineEvent.Kind.STATUS_CHANGED,
                        message=f"reopened: {decision.reason}",
                        data={"from": "resolved", "to": "triggered", "strategy": decision.strategy},
                        created_at=now,
                    ),
                    None,
                )
            )
            audit.record(
                "incident.reopened",
                object_type="incidents.incident",
                object_id=str(incident_id),
                changes={"status": ["resolved", "triggered"], "reason": decision.reason},
            )
        if alert.incident_id != incident_id:
            alert.incident_id = incident_id
            if decision.action is not Action.OPEN:
                ref = f"INC-{references.get(incident_id, '?')}"
                events.append(
                    (
                        TimelineEvent(
                            incident_id=incident_id,
                            kind=TimelineEvent.Kind.ALERT_ATTACHED,
                            message=f"alert {alert.name} joined {ref}: {decision.reason}",
                            data={
                                "strategy": decision.strategy,
                                "fingerprint": alert.fingerprint,
                                "name": alert.name,
                                "reason": decision.reason,
                                "reference": ref,
                            },
                            created_at=now,
                        ),
                        alert,
                    )
                )
    for row in by_fp.values():  # rows of this batch follow their incident when it merged
        while row.incident_id in merged_into:
            row.incident_id = merged_into[row.incident_id]
    result.incidents_updated = sorted(
        set(Incident.objects.filter(pk__in=touched).values_list("number", flat=True))
        - set(result.incidents_opened)
    )
    return touched, events


def refresh_incidents(
    integration: Integration,
    touched: set[int],
    batch: list[Alert],
    now: datetime,
    result: IngestResult,
) -> None:
    """Recount alerts, add the batch's services, raise severity, auto-resolve, announce.

    Only the alerts of this batch are read row by row, so the cost of a webhook does not
    grow with the size of the incidents it touches.
    """
    if not touched:
        return
    counts = {
        row["incident_id"]: row
        for row in Alert.objects.filter(incident_id__in=touched)
        .values("incident_id")
        .annotate(total=Count("pk"), firing=Count("pk", filter=Q(status=Alert.Status.FIRING)))
    }
    service_rows = defaultdict(set)
    severities: dict[int, list[str]] = defaultdict(list)
    for alert in batch:
        if alert.incident_id is None:
            continue
        if alert.service_id:
            service_rows[alert.incident_id].add(alert.service_id)
        if alert.status == Alert.Status.FIRING:
            severities[alert.incident_id].append(severity_from_labels(alert.labels))
    through = Incident.services.through
    through.objects.bulk_create(
        [
            through(incident_id=i, service_id=s)
            for i, services in service_rows.items()
            for s in services
        ],
        ignore_conflicts=True,
    )
    auto_resolve = settings.INCIDENT_AUTO_RESOLVE and integration.auto_resolve
    announcements: list[tuple[dict[str, Any], int]] = []
    events = []
    # one order for every writer; NO KEY UPDATE does not wait for the key-share locks other
    # transactions take by pointing alerts at these incidents
    locked = Incident.objects.select_for_update(no_key=True).filter(pk__in=touched).order_by("pk")
    for incident in locked:
        before = (incident.status, incident.severity)
        row = counts.get(incident.pk, {"total": 0, "firing": 0})
        incident.alert_count, incident.firing_count = row["total"], row["firing"]
        incident.last_alert_at = now
        worst = max(severities[incident.pk], key=lambda s: SEVERITY_RANK[s], default=None)
        if worst and SEVERITY_RANK[worst] > SEVERITY_RANK[incident.severity]:
            events.append(
                TimelineEvent(
                    incident=incident,
                    kind=TimelineEvent.Kind.SEVERITY_CHANGED,
                    message=f"severity raised from {incident.severity} to {worst} by a new alert",
                    data={"from": incident.severity, "to": worst},
                    created_at=now,
                )
            )
            incident.severity = worst
        if (
            auto_resolve
            and incident.firing_count == 0
            and incident.status != IncidentStatus.RESOLVED
        ):
            events.append(
                TimelineEvent(
                    incident=incident,
                    kind=TimelineEvent.Kind.STATUS_CHANGED,
                    message="resolved automatically: all alerts are resolved",
                    data={"from": incident.status, "to": IncidentStatus.RESOLVED, "auto": True},
                    created_at=now,
                )
            )
            audit.record(
                "incident.auto_resolved",
                incident,
                changes={"status": [incident.status, IncidentStatus.RESOLVED]},
            )
            incident.status = IncidentStatus.RESOLVED
            incident.resolved_at = now
            result.incidents_resolved.append(incident.number)
        incident.save(
            update_fields=[
                "alert_count",
                "firing_count",
                "last_alert_at",
                "severity",
                "status",
                "resolved_at",
                "updated_at",
            ]
        )
        kind = (
            "incident.created" if incident.number in result.incidents_opened else "incident.updated"
        )
        announcements.append(
            (
                {
                    "type": kind,
                    "incident": incident_summary(incident),
                    "changed": before != (incident.status, incident.severity),
                },
                incident.pk,
            )
        )
    add_events(events)
    publish_on_commit(announcements)


def _announce_activity(opened: set[int], events: list[tuple[TimelineEvent, Alert | None]]) -> None:
    """Tell the apps above which incidents opened and which took alerts (or reopened)."""
    grown = {
        event.incident_id
        for event, _row in events
        if event.kind in (TimelineEvent.Kind.ALERT_ATTACHED, TimelineEvent.Kind.STATUS_CHANGED)
    } - opened
    if not (opened or grown):
        return
    for _receiver, outcome in incident_activity.send_robust(
        Incident, opened=sorted(opened), grown=sorted(grown)
    ):
        if isinstance(outcome, Exception):
            logger.warning("incident activity receiver failed: %s", outcome)


def incident_summary(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.pk,
        "number": incident.number,
        "reference": incident.reference,
        "title": incident.title,
        "status": incident.status,
        "severity": incident.severity,
        "alert_count": incident.alert_count,
        "firing_count": incident.firing_count,
        "updated_at": incident.updated_at.isoformat() if incident.updated_at else None,
    }
