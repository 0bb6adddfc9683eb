"""Celery entry points of the incident core. Thin: each calls a domain function."""

from dataclasses import asdict
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from incidents import correlating, live
from incidents import housekeeping as chores
from incidents.ingest import service
from incidents.timeline import incident_audiences


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def housekeeping() -> dict:
    """Expire alerts past their end time, auto-resolve emptied incidents, flag stale ones."""
    report = chores.run(timezone.now(), timedelta(hours=settings.INCIDENT_STALE_AFTER_HOURS))
    return asdict(report)


@shared_task(acks_late=True, ignore_result=True)
def publish_live(items: list) -> None:
    """Push incident and timeline events to the sockets allowed to see them (the audience
    is read here, after commit, so incidents opened in that transaction have services)."""
    audiences = incident_audiences({incident_id for _event, incident_id in items})
    live.publish_many(
        [(event, incident_id, audiences.get(incident_id, [])) for event, incident_id in items]
    )


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def correlate_retrain() -> dict:
    """Relearn which services fail together from past incidents and human corrections."""
    snapshot = correlating.retrain(timezone.now())
    return {"incidents": snapshot.incidents, "feedback": snapshot.feedback}


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def correlate_pending(team_id: int) -> dict:
    """Decide the alerts webhooks stored for ``team_id`` (idempotent: decided ones are
    unflagged in the same transaction); queue another run while a backlog remains."""
    run = service.correlate_pending(team_id)
    if run.more:
        correlate_pending.delay(team_id)
    return run.summary()
