"""Database helpers shared by the apps."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL aborts one side of a lock cycle (40P01) or a conflicting serializable
# transaction (40001); running the whole transaction again is the documented remedy.
RETRYABLE_SQLSTATES = {"40P01", "40001"}


def is_retryable(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES


def retry_transaction(work: Callable[[], T], *, attempts: int = 4, pause_s: float = 0.05) -> T:
    """Run ``work`` (which opens its own ``transaction.atomic()``) again when PostgreSQL
    aborts it for a deadlock or a serialization failure, so callers never see one.

    ``work`` must be safe to repeat: everything it wrote was rolled back with its
    transaction (on-commit callbacks included)."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except OperationalError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            log.warning("transaction aborted (%s), attempt %d of %d", exc, attempt, attempts)
            time.sleep(pause_s * attempt * (1 + random.random()))  # jitter
    raise AssertionError("unreachable")
