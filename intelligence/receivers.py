"""React to incident activity (the incident core announces it, never calls us)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from incidents.signals import incident_activity

logger = logging.getLogger(__name__)


@receiver(incident_activity)
def analyse_incident_activity(sender, opened=(), grown=(), **kwargs) -> None:
    """Queue analyses after the incident's transaction commits (a task, so the webhook or
    correlation run that sent this never waits on the analysis queue's bookkeeping)."""
    if not settings.ANALYSIS_AUTO:
        return
    from intelligence.tasks import request_analysis

    wanted = [(pk, "opened") for pk in opened] + [(pk, "alerts_joined") for pk in grown]

    def queue() -> None:
        for pk, reason in wanted:
            try:
                request_analysis.delay(pk, reason)
            except Exception:  # the broker being down must never fail the change itself
                logger.exception("could not request analysis of incident %s", pk)

    transaction.on_commit(queue)
