"""Celery entry points of the incident core. Thin: each calls a domain function."""

from dataclasses import asdict
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from incidents import correlating
from incidents import housekeeping as chores


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def housekeeping() -> dict:
    """Expire alerts past their end time, auto-resolve emptied incidents, flag stale ones."""
    report = chores.run(timezone.now(), timedelta(hours=settings.INCIDENT_STALE_AFTER_HOURS))
    return asdict(report)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def correlate_retrain() -> dict:
    """Relearn which services fail together from past incidents and human corrections."""
    snapshot = correlating.retrain(timezone.now())
    return {"incidents": snapshot.incidents, "feedback": snapshot.feedback}
