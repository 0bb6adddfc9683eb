"""Celery entry points of the intelligence app. Thin: each calls a domain function."""

from dataclasses import asdict

from celery import shared_task
from django.utils import timezone

from intelligence.slo import service as slo_service
from intelligence.slo.source import NotConfigured, instant_query


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
