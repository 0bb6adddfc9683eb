"""Celery entry points of the intelligence app (queue ``analysis``). Thin: each calls a
domain function (``runs`` for analyses, ``slo.service`` for SLO burn)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task
from django.utils import timezone

from intelligence import dispatch, runs
from intelligence.analysis.sources import metric_reader, signals_for_run
from intelligence.slo import service as slo_service
from intelligence.slo.source import NotConfigured, instant_query


@shared_task(bind=True, acks_late=True, max_retries=60, ignore_result=True)
def analyse(self, insight_id: int) -> str:
    """Run one queued analysis; waits (retries) while an older run of its incident stops."""
    started = runs.start(insight_id)
    if started == runs.START_RETRY:
        raise self.retry(countdown=1.0)
    if started is None:
        return "skipped"
    runs.execute(started, signals_for_run, metric_reader)
    return started.status


@shared_task(acks_late=True, ignore_result=True)
def request_analysis(incident_id: int, reason: str) -> None:
    """Queue an analysis of an incident (sent by the receiver of incident activity)."""
    dispatch.request_and_dispatch(incident_id, reason)


@shared_task(acks_late=True, ignore_result=True)
def reanalyse_open_incidents() -> dict:
    """Beat: refresh the analysis of open incidents whose latest one is getting old."""
    due = runs.incidents_due(timezone.now())
    queued = sum(dispatch.request_and_dispatch(pk, "scheduled") is not None for pk in due)
    return {"due": len(due), "queued": queued}


@shared_task(acks_late=True, ignore_result=True)
def evaluate_slos() -> dict:
    """Beat, every minute: every SLO's SLI, budget and burn; burn alerts into ingestion."""
    try:
        query, close = instant_query()
    except NotConfigured as exc:
        return {"skipped": str(exc)}
    try:
        return asdict(slo_service.evaluate_slos(timezone.now(), query))
    finally:
        close()
