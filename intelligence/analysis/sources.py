"""Which signals and which metric reader this deployment's analysis can use.

The signals come from ``intelligence.signals.available_signals`` (one per configured data
source; an unset source is skipped with its reason). The impact step reads SLO rates
through a ``PrometheusReader`` over the Prometheus client when ``PROMETHEUS_URL`` is set.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.conf import settings

import intelligence.signals as signal_registry


def signals_for_run() -> tuple[list[Any], list[str]]:
    factory = getattr(signal_registry, "available_signals", None)
    if factory is None:
        return [], ["signals: no signal module installed"]
    return factory(settings)


class PrometheusReader:
    """``MetricReader`` for impact: a range query summed over its series (NaN skipped)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def series(
        self, expr: str, start: datetime, end: datetime, step_s: float
    ) -> list[tuple[float, float]]:
        totals: dict[float, float] = {}
        for s in self.client.query_range(expr, start, end, step_s):
            for t, v in zip(s.t, s.values, strict=False):
                if not math.isnan(float(v)) and not math.isinf(float(v)):
                    totals[float(t)] = totals.get(float(t), 0.0) + float(v)
        return sorted(totals.items())


def metric_reader() -> PrometheusReader | None:
    if not settings.PROMETHEUS_URL:
        return None
    try:
        from intelligence.clients.prometheus import PrometheusClient
    except ImportError:  # the client lands with the metric signal
        return None
    return PrometheusReader(PrometheusClient(settings.PROMETHEUS_URL))
