"""Where SLO queries are answered: the configured Prometheus (``PROMETHEUS_URL``).

A tiny instant-query function over the shared resilient HTTP factory until the Prometheus
client (``intelligence.clients.prometheus``) is on main; then this delegates to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from django.conf import settings

from intelligence.slo.evaluate import InstantQuery
from reliability.http import DataSourceError, make_client

NAME = "prometheus"


class NotConfigured(Exception):
    """No Prometheus is configured: SLOs cannot be measured (said so, never an error)."""


def instant_query(base_url: str | None = None) -> tuple[InstantQuery, Callable[[], None]]:
    """An instant-query function on ``base_url`` (default ``PROMETHEUS_URL``) and its closer.

    The answer must be a vector of at most one sample (the SLO queries are summed): its
    value, or None for an empty vector.
    """
    url = base_url or settings.PROMETHEUS_URL
    if not url:
        raise NotConfigured("PROMETHEUS_URL is not set")
    http = make_client(NAME, url, timeout=10.0, retries=2)

    def query(promql: str, at: datetime) -> float | None:
        body = http.get_json("/api/v1/query", {"query": promql, "time": f"{at.timestamp():.3f}"})
        if not isinstance(body, dict) or body.get("status") != "success":
            raise DataSourceError(NAME, f"query failed: {str(body)[:200]}")
        data = body.get("data") or {}
        if data.get("resultType") == "scalar":
            return _value(data["result"][1])
        if data.get("resultType") != "vector":
            raise DataSourceError(NAME, f"expected a vector, got {data.get('resultType')!r}")
        result = data.get("result") or []
        if not result:
            return None
        return math.fsum(_value(sample["value"][1]) for sample in result)

    return query, http.close


def _value(raw: object) -> float:
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise DataSourceError(NAME, f"invalid sample value {raw!r}") from exc
