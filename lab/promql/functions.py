"""The numeric heart of the PromQL functions, on plain numpy arrays.

Each function follows Prometheus 2.x's engine (``promql/functions.go``, ``quantile.go``)
closely enough that results agree to floating-point rounding: that is what the
faithfulness test against a real Prometheus checks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence


def extrapolated_rate(
    t_ms: Sequence[int],
    values: Sequence[float],
    range_start_ms: int,
    range_end_ms: int,
    *,
    is_counter: bool,
    is_rate: bool,
) -> float | None:
    """``rate``/``increase``/``delta``: the change over the samples in the window,
    extrapolated towards the window edges.

    Extrapolation goes to an edge only when the edge is within 1.1 average sample
    intervals of the first/last sample, else only half an interval (the series likely
    started or ended inside the window). For counters the extrapolation to the start is
    also capped where the counter would have been zero, and every decrease counts as a
    reset (the value before the drop is added back). ``None`` means "no output sample"
    (fewer than two samples).
    """
    n = len(values)
    if n < 2:
        return None
    first = float(values[0])
    result = float(values[-1]) - first
    if is_counter:
        previous = first
        for value in values:
            if value < previous:
                result += previous
            previous = value
    to_start = (int(t_ms[0]) - range_start_ms) / 1000
    to_end = (range_end_ms - int(t_ms[-1])) / 1000
    sampled = (int(t_ms[-1]) - int(t_ms[0])) / 1000
    average_interval = sampled / (n - 1)
    if is_counter and result > 0 and first >= 0:
        to_zero = sampled * (first / result)
        to_start = min(to_start, to_zero)
    threshold = average_interval * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average_interval / 2
    interval += to_end if to_end < threshold else average_interval / 2
    # One combined factor, in Prometheus's order of operations: results then agree to the
    # last bit, not just to rounding.
    factor = interval / sampled
    if is_rate:
        factor /= (range_end_ms - range_start_ms) / 1000
    return float(result * factor)


def instant_rate(t_ms: Sequence[int], values: Sequence[float], *, is_rate: bool) -> float | None:
    """``irate``/``idelta``: from the last two samples only; for ``irate`` a decrease is
    a counter reset, so the increase is the new value itself."""
    if len(values) < 2:
        return None
    last, previous = float(values[-1]), float(values[-2])
    result = last if is_rate and last < previous else last - previous
    interval_ms = int(t_ms[-1]) - int(t_ms[-2])
    if interval_ms == 0:
        return None
    if is_rate:
        result /= interval_ms / 1000
    return result


def over_time(name: str, values: Sequence[float]) -> float:
    """The ``<aggregation>_over_time`` family over one window's values (non-empty)."""
    if name == "count_over_time":
        return float(len(values))
    if name == "sum_over_time":
        total = compensation = 0.0
        for v in values:
            total, compensation = _neumaier_add(float(v), total, compensation)
        return total if math.isinf(total) else total + compensation
    if name == "avg_over_time":
        # An incrementally updated mean, compensated like the sum; infinities short-cut.
        mean = compensation = 0.0
        for count, v in enumerate(values, start=1):
            v = float(v)
            if math.isinf(mean):
                if math.isinf(v) and (mean > 0) == (v > 0):
                    continue
                if not math.isinf(v) and not math.isnan(v):
                    continue
            mean, compensation = _neumaier_add(v / count - mean / count, mean, compensation)
        return mean if math.isinf(mean) else mean + compensation
    if name == "last_over_time":
        return float(values[-1])
    best = float(values[0])
    for v in values:
        v = float(v)
        better = v > best if name == "max_over_time" else v < best
        if better or math.isnan(best):
            best = v
    return best


def quantile(q: float, values: Sequence[float]) -> float:
    """The q-quantile of a sample set, linearly interpolated between the two nearest ranks
    (``quantile`` aggregation and ``quantile_over_time``)."""
    if not values:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values, key=lambda v: (not math.isnan(v), v))  # NaN sorts first
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def variance_over_time(values: Sequence[float]) -> float:
    """Population variance with a compensated running mean (``stdvar_over_time``)."""
    count = 0.0
    mean = c_mean = aux = c_aux = 0.0
    for v in values:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _neumaier_add(delta / count, mean, c_mean)
        aux, c_aux = _neumaier_add(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def changes(values: Sequence[float]) -> float:
    """How often the value changed (NaN to NaN is no change)."""
    count = 0
    previous = values[0]
    for value in values[1:]:
        if value != previous and not (math.isnan(value) and math.isnan(previous)):
            count += 1
        previous = value
    return float(count)


def resets(values: Sequence[float]) -> float:
    """How often the value decreased (counter resets)."""
    return float(sum(1 for a, b in itertools.pairwise(values) if b < a))


def linear_regression(
    t_ms: Sequence[int], values: Sequence[float], intercept_ms: int
) -> tuple[float, float]:
    """Least-squares (slope per second, value at ``intercept_ms``), with compensated sums;
    x is measured from ``intercept_ms`` to keep the numbers small. A constant series has
    slope 0 exactly (NaN if the constant is infinite)."""
    n = 0.0
    sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    first = float(values[0])
    constant = True
    for i, (t, v) in enumerate(zip(t_ms, values, strict=True)):
        v = float(v)
        if constant and i > 0 and v != first:
            constant = False
        n += 1.0
        x = (int(t) - intercept_ms) / 1e3
        sum_x, c_x = _neumaier_add(x, sum_x, c_x)
        sum_y, c_y = _neumaier_add(v, sum_y, c_y)
        sum_xy, c_xy = _neumaier_add(x * v, sum_xy, c_xy)
        sum_x2, c_x2 = _neumaier_add(x * x, sum_x2, c_x2)
    if constant:
        return (math.nan, math.nan) if math.isinf(first) else (0.0, first)
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    covariance = sum_xy - sum_x * sum_y / n
    variance = sum_x2 - sum_x * sum_x / n
    slope = covariance / variance
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def _neumaier_add(increment: float, total: float, compensation: float) -> tuple[float, float]:
    """Compensated (Kahan-Neumaier) summation step, as Prometheus uses for *_over_time."""
    new_total = total + increment
    if abs(total) >= abs(increment):
        compensation += (total - new_total) + increment
    else:
        compensation += (increment - new_total) + total
    return new_total, compensation


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """``histogram_quantile`` for one histogram: ``buckets`` are (upper bound, cumulative
    count) pairs in any order.

    As in Prometheus: q outside [0, 1] gives -Inf/+Inf; no +Inf bucket or fewer than two
    buckets or zero observations give NaN; buckets with equal bounds are merged and
    counts are forced monotonic (rates of separately-scraped buckets can dip); the
    quantile is linearly interpolated inside its bucket, assuming the first bucket starts
    at 0 unless its bound is <= 0, and a quantile in the +Inf bucket returns the highest
    finite bound.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for upper, count in ordered:
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    highest = -math.inf
    for bucket in merged:
        if bucket[1] > highest:
            highest = bucket[1]
        elif bucket[1] < highest:
            bucket[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            b = i
            break
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start = 0.0
    end, count = merged[b]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)


def go_max(a: float, b: float) -> float:
    """Go's ``math.Max``: NaN wins, unlike Python's ``max``."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a > b else b


def go_min(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a < b else b
