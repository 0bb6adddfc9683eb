"""Error budgets and multiwindow, multi-burn-rate alerting (Google SRE workbook, ch. 5).

Plain data in, plain data out: no Prometheus, no database. An SLO's error ratio over a
window is ``1 - good / total``; its burn rate is that ratio divided by the error budget
(``1 - objective``): burning at 1 spends exactly the budget over the SLO's window. An
alert fires when both the long and the short window of a pair burn faster than the pair's
factor (the short one makes it stop soon after the burning does).

The same expressions are written as Prometheus rules by ``intelligence.slo.rules``; the
comparison ``ratio > factor * budget`` is done in that order on both sides so a value
right at the threshold decides the same way in Python and in Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class BurnWindowPair:
    """One row of the workbook's table: alert when both windows burn faster than ``factor``.

    ``factor`` is the workbook's for a 30-day SLO: 14.4 over 1 h spends 2 % of the budget,
    6 over 6 h spends 5 %, 3 over 1 d 10 %, 1 over 3 d 10 %.
    """

    long_seconds: int
    short_seconds: int
    factor: float
    severity: str  # "page" or "ticket"

    @property
    def long(self) -> str:
        return duration(self.long_seconds)

    @property
    def short(self) -> str:
        return duration(self.short_seconds)


WORKBOOK_PAIRS: tuple[BurnWindowPair, ...] = (
    BurnWindowPair(3600, 300, 14.4, "page"),
    BurnWindowPair(6 * 3600, 1800, 6.0, "page"),
    BurnWindowPair(24 * 3600, 2 * 3600, 3.0, "ticket"),
    BurnWindowPair(3 * 24 * 3600, 6 * 3600, 1.0, "ticket"),
)


def burn_windows(pairs: Sequence[BurnWindowPair] = WORKBOOK_PAIRS) -> list[int]:
    """Every window (seconds) the pairs need, shortest first, each once."""
    return sorted({s for p in pairs for s in (p.long_seconds, p.short_seconds)})


_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(seconds: int) -> str:
    """A Prometheus duration for whole seconds: 300 -> ``5m``, 93600 -> ``1d2h``."""
    if seconds <= 0:
        raise ValueError("a window must be positive")
    parts, left = [], int(seconds)
    for unit, size in _UNITS[1:]:  # days, not weeks: "28d" reads better than "4w"
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)


def error_budget(objective_percent: Decimal | str | float) -> float:
    """The fraction of events allowed to fail, exact for decimal objectives (99.99 -> 1e-4).

    ``1 - 0.9999`` in floats is 9.9999999999989e-05; going through ``Decimal`` gives the
    same float that the rules file's literal ``0.0001`` parses to.
    """
    objective = Decimal(str(objective_percent))
    if not Decimal(0) < objective < Decimal(100):
        raise ValueError(f"objective must be in (0, 100) percent, got {objective}")
    return float((Decimal(100) - objective) / Decimal(100))


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def error_ratio(good: float | None, total: float | None) -> float | None:
    """``1 - good/total``; None when there is no traffic or no data (NaN, missing, 0).

    Not clipped to [0, 1]: good counted a little ahead of total (different scrapes) gives
    a small negative ratio, as the Prometheus rule would; callers that display it may clip.
    """
    good, total = _number(good), _number(total)
    if good is None or total is None or total <= 0 or math.isinf(total):
        return None
    if math.isinf(good):
        return None
    return 1 - good / total


def burn_rate(ratio: float | None, budget: float) -> float | None:
    """How many times faster than "exactly the budget over the window" errors come."""
    return None if ratio is None else ratio / budget


def budget_remaining(window_ratio: float | None, budget: float) -> float | None:
    """Share of the SLO window's budget left: 1 untouched, 0 spent, negative overspent."""
    return None if window_ratio is None else 1 - window_ratio / budget


@dataclass(frozen=True)
class FiringPair:
    """A window pair whose two windows both burn faster than its factor."""

    pair: BurnWindowPair
    long_burn: float
    short_burn: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.pair.severity,
            "long_window": self.pair.long,
            "short_window": self.pair.short,
            "factor": self.pair.factor,
            "long_burn_rate": self.long_burn,
            "short_burn_rate": self.short_burn,
        }


@dataclass(frozen=True)
class WindowValue:
    """What was measured over one window: good and total (as the queries return them)."""

    seconds: int
    good: float | None
    total: float | None

    @property
    def ratio(self) -> float | None:
        return error_ratio(self.good, self.total)


@dataclass(frozen=True)
class BurnAssessment:
    """An SLO at one instant: SLI and budget over its window, burn per window, what fires."""

    objective_percent: float
    budget: float
    window_seconds: int
    sli: float | None  # 1 - error ratio over the SLO window; None: no traffic in it
    window_error_ratio: float | None
    budget_remaining: float | None
    windows: dict[str, dict[str, float | None]] = field(default_factory=dict)
    firing: tuple[FiringPair, ...] = ()

    @property
    def burning(self) -> bool:
        return bool(self.firing)

    @property
    def severity(self) -> str | None:
        """The most urgent firing severity (page before ticket)."""
        severities = {f.pair.severity for f in self.firing}
        return "page" if "page" in severities else ("ticket" if severities else None)

    def burn(self, window: str) -> float | None:
        return self.windows.get(window, {}).get("burn_rate")

    def as_dict(self) -> dict[str, Any]:
        return {
            "objective_percent": self.objective_percent,
            "error_budget": self.budget,
            "window": duration(self.window_seconds),
            "sli": self.sli,
            "window_error_ratio": self.window_error_ratio,
            "budget_remaining": self.budget_remaining,
            "windows": self.windows,
            "firing": [f.as_dict() for f in self.firing],
            "severity": self.severity,
        }


def firing_pairs(
    ratios: dict[int, float | None],
    budget: float,
    pairs: Sequence[BurnWindowPair] = WORKBOOK_PAIRS,
) -> tuple[FiringPair, ...]:
    """The pairs whose long and short windows both exceed ``factor * budget``."""
    out = []
    for pair in pairs:
        long_ratio, short_ratio = ratios.get(pair.long_seconds), ratios.get(pair.short_seconds)
        if long_ratio is None or short_ratio is None:
            continue
        threshold = pair.factor * budget
        if long_ratio > threshold and short_ratio > threshold:
            out.append(FiringPair(pair, long_ratio / budget, short_ratio / budget))
    return tuple(out)


def assess(
    objective_percent: Decimal | str | float,
    window_days: int,
    values: Sequence[WindowValue],
    pairs: Sequence[BurnWindowPair] = WORKBOOK_PAIRS,
) -> BurnAssessment:
    """Burn rates, budget and firing pairs from good/total measured per window.

    ``values`` must hold the SLO window (``window_days``) and every window of ``pairs``;
    a window without traffic has no ratio, burns at no rate and never fires.
    """
    budget = error_budget(objective_percent)
    window_seconds = int(window_days) * 86400
    ratios = {v.seconds: v.ratio for v in values}
    windows: dict[str, dict[str, float | None]] = {}
    for v in sorted(values, key=lambda v: v.seconds):
        ratio = ratios[v.seconds]
        windows[duration(v.seconds)] = {
            "good": _number(v.good),
            "total": _number(v.total),
            "error_ratio": ratio,
            "burn_rate": burn_rate(ratio, budget),
        }
    window_ratio = ratios.get(window_seconds)
    return BurnAssessment(
        objective_percent=float(Decimal(str(objective_percent))),
        budget=budget,
        window_seconds=window_seconds,
        sli=None if window_ratio is None else 1 - window_ratio,
        window_error_ratio=window_ratio,
        budget_remaining=budget_remaining(window_ratio, budget),
        windows=windows,
        firing=firing_pairs(ratios, budget, pairs),
    )


# -- from raw counter samples (what a window holds, without Prometheus) ----------------------


def counter_increase(times: Sequence[float], values: Sequence[float], start: float, end: float):
    """Increase of a counter between its first and last sample in ``[start, end]``.

    Counter resets (a value lower than the one before) count from zero, as Prometheus's
    ``increase`` does; NaN samples are skipped. Fewer than two samples: None.
    """
    prev: float | None = None
    total = 0.0
    seen = 0
    for t, v in zip(times, values, strict=True):
        if t < start or t > end or math.isnan(v):
            continue
        seen += 1
        if prev is not None:
            total += v - prev if v >= prev else v
        prev = v
    return total if seen >= 2 else None


def ratio_from_counters(
    times: Sequence[float],
    good: Sequence[float],
    total: Sequence[float],
    end: float,
    window_seconds: float,
) -> float | None:
    """The error ratio over ``(end - window, end]`` from good/total counters sampled
    together; what ``1 - rate(good[w]) / rate(total[w])`` gives when both counters share
    their sample times (Prometheus's extrapolation then scales both alike)."""
    start = end - window_seconds
    g = counter_increase(times, good, start, end)
    t = counter_increase(times, total, start, end)
    return error_ratio(g, t)
