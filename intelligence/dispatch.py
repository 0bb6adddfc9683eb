"""Hand a requested analysis to whoever runs it: a Celery worker on the ``analysis`` queue,
or, in the embedded mode (eager Celery, ``ANALYSIS_IN_THREAD``), a background thread so a
webhook never waits for an analysis."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction

from intelligence import runs

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def request_and_dispatch(incident_id: int, reason: str, *, user: Any = None):
    """Record the request and, once committed, start its run (a new run only)."""
    requested = runs.request(incident_id, reason, user=user)
    if requested is not None and requested.new:
        transaction.on_commit(lambda: start_later(requested.insight.pk, requested.countdown))
    return requested


def start_later(insight_id: int, countdown: float = 0.0) -> None:
    try:
        if settings.ANALYSIS_IN_THREAD:
            _thread_pool().submit(_run_in_thread, insight_id, countdown)
            return
        from intelligence.tasks import analyse

        analyse.apply_async((insight_id,), countdown=countdown or None)
    except Exception:  # a broker down loses this run, never the caller's change
        logger.exception("could not queue analysis %s", insight_id)


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analysis-run")
        return _pool


def _run_in_thread(insight_id: int, countdown: float) -> None:
    from intelligence.analysis.sources import metric_reader, signals_for_run

    time.sleep(countdown)
    close_old_connections()
    try:
        for _ in range(120):
            started = runs.start(insight_id)
            if started != runs.START_RETRY:
                break
            time.sleep(1.0)
        if isinstance(started, runs.Insight):
            runs.execute(started, signals_for_run, metric_reader)
    except Exception:
        logger.exception("analysis %s failed in its thread", insight_id)
    finally:
        close_old_connections()
