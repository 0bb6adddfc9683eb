"""Measure an SLO at one instant through an instant-query function, then assess its burn.

``InstantQuery`` is any ``(promql, at) -> float | None`` (None: empty result); the
Prometheus one is ``intelligence.slo.source.instant_value``. Keeping the query function a
parameter keeps this module plain: the beat job, the impact step and tests pass their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from intelligence.slo.burn import (
    WORKBOOK_PAIRS,
    BurnAssessment,
    BurnWindowPair,
    WindowValue,
    assess,
    burn_windows,
    duration,
)
from intelligence.slo.queries import window_queries
from intelligence.slo.rules import SLOSpec

InstantQuery = Callable[[str, datetime], float | None]


@dataclass
class Measurement:
    """The queries asked for one SLO and what they answered."""

    values: list[WindowValue] = field(default_factory=list)
    queries: dict[str, tuple[str, str]] = field(default_factory=dict)  # window -> (good, total)


def windows_for(spec: SLOSpec, pairs: Sequence[BurnWindowPair] = WORKBOOK_PAIRS) -> list[int]:
    return sorted(set(burn_windows(pairs)) | {spec.window_seconds})


def measure(
    spec: SLOSpec,
    at: datetime,
    query: InstantQuery,
    pairs: Sequence[BurnWindowPair] = WORKBOOK_PAIRS,
) -> Measurement:
    """Good and total over every window the SLO needs, at ``at`` (errors propagate)."""
    out = Measurement()
    for seconds in windows_for(spec, pairs):
        good_q, total_q = window_queries(spec.good_query, spec.total_query, seconds)
        out.queries[duration(seconds)] = (good_q, total_q)
        out.values.append(WindowValue(seconds, query(good_q, at), query(total_q, at)))
    return out


def evaluate(
    spec: SLOSpec,
    at: datetime,
    query: InstantQuery,
    pairs: Sequence[BurnWindowPair] = WORKBOOK_PAIRS,
) -> tuple[BurnAssessment, Measurement]:
    """The SLO's burn assessment at ``at`` and the queries behind it."""
    measurement = measure(spec, at, query, pairs)
    return assess(spec.objective_percent, spec.window_days, measurement.values, pairs), measurement
