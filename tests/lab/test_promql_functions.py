"""Functions on hand-computed examples: rate/increase/delta extrapolation (each edge
case of Prometheus's rule), counter resets, irate/idelta, *_over_time and
histogram_quantile's bucket interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lab.promql import EvalError
from lab.promql.engine import Engine
from lab.promql.functions import bucket_quantile, extrapolated_rate, instant_rate
from lab.tsdb import TSDB


def _rate(times_s: list[float], values: list[float], end_s: float, range_s: float, **kw) -> float:
    t_ms = np.array([round(t * 1000) for t in times_s], dtype=np.int64)
    end = round(end_s * 1000)
    result = extrapolated_rate(
        t_ms, np.array(values, dtype=float), end - round(range_s * 1000), end, **kw
    )
    assert result is not None
    return result


COUNTER_RATE = {"is_counter": True, "is_rate": True}
COUNTER_INCREASE = {"is_counter": True, "is_rate": False}
GAUGE_DELTA = {"is_counter": False, "is_rate": False}


def test_samples_on_both_window_edges_need_no_extrapolation() -> None:
    times = [0, 10, 20, 30, 40, 50, 60]
    values = [0, 10, 20, 30, 40, 50, 60]
    assert _rate(times, values, 60, 60, **COUNTER_INCREASE) == 60
    assert _rate(times, values, 60, 60, **COUNTER_RATE) == 1


def test_extrapolates_to_edges_within_1_1_sample_intervals() -> None:
    # 50 observed over 50 s; each edge 5 s away (< 1.1 * 10 s): scaled to the full 60 s.
    times, values = [5, 15, 25, 35, 45, 55], [10, 20, 30, 40, 50, 60]
    assert _rate(times, values, 60, 60, **COUNTER_INCREASE) == pytest.approx(60)
    assert _rate(times, values, 60, 60, **COUNTER_RATE) == pytest.approx(1)


def test_counter_extrapolation_stops_where_the_counter_would_be_zero() -> None:
    # First value 2 at slope 1/s: zero was reached 2 s before the first sample, not 5 s.
    times, values = [5, 15, 25, 35, 45, 55], [2, 12, 22, 32, 42, 52]
    assert _rate(times, values, 60, 60, **COUNTER_INCREASE) == pytest.approx(57)
    # A gauge has no such floor.
    assert _rate(times, values, 60, 60, **GAUGE_DELTA) == pytest.approx(60)


def test_far_edge_gets_only_half_an_interval() -> None:
    # Series starts 30 s into the window (>= 11 s): +5 s there, +10 s at the end.
    times, values = [30, 40, 50], [100, 110, 120]
    assert _rate(times, values, 60, 60, **COUNTER_INCREASE) == pytest.approx(35)
    assert _rate(times, values, 60, 60, **COUNTER_RATE) == pytest.approx(35 / 60)


def test_counter_reset_adds_back_the_value_before_the_drop() -> None:
    times, values = [0, 10, 20, 30], [5, 10, 2, 6]
    assert _rate(times, values, 30, 30, **COUNTER_INCREASE) == pytest.approx(11)
    assert _rate(times, values, 30, 30, **COUNTER_RATE) == pytest.approx(11 / 30)
    # delta treats the same data as a gauge: just last - first.
    assert _rate(times, values, 30, 30, **GAUGE_DELTA) == pytest.approx(1)


def test_delta_extrapolates_decreases() -> None:
    assert _rate([5, 15, 25], [10, 4, 1], 30, 30, **GAUGE_DELTA) == pytest.approx(-13.5)


def test_fewer_than_two_samples_give_no_result() -> None:
    t = np.array([1000], dtype=np.int64)
    assert extrapolated_rate(t, np.array([1.0]), 0, 1000, is_counter=True, is_rate=True) is None
    assert instant_rate(t, np.array([1.0]), is_rate=True) is None


def test_irate_and_idelta_use_the_last_two_samples() -> None:
    t = np.array([0, 10_000, 20_000], dtype=np.int64)
    assert instant_rate(t, np.array([5.0, 10.0, 14.0]), is_rate=True) == pytest.approx(0.4)
    assert instant_rate(t, np.array([5.0, 10.0, 14.0]), is_rate=False) == 4
    # reset: the new value is the whole increase
    assert instant_rate(t, np.array([5.0, 10.0, 2.0]), is_rate=True) == pytest.approx(0.2)
    assert instant_rate(t, np.array([5.0, 10.0, 2.0]), is_rate=False) == -8


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (math.inf, 50.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.4)  # 0.1 + 0.4 * 15/20
    assert bucket_quantile(0.1, buckets) == pytest.approx(0.05)  # first bucket starts at 0
    assert bucket_quantile(0.9, buckets) == 1.0  # in the +Inf bucket: highest finite bound
    assert bucket_quantile(0.5, list(reversed(buckets))) == pytest.approx(0.4)  # any order


def test_histogram_quantile_edge_cases() -> None:
    buckets = [(0.1, 10.0), (math.inf, 20.0)]
    assert bucket_quantile(-0.1, buckets) == -math.inf
    assert bucket_quantile(1.1, buckets) == math.inf
    assert math.isnan(bucket_quantile(math.nan, buckets))
    assert math.isnan(bucket_quantile(0.5, [(0.1, 10.0), (1.0, 20.0)]))  # no +Inf bucket
    assert math.isnan(bucket_quantile(0.5, [(math.inf, 20.0)]))  # a single bucket
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))  # no observations
    # first bound <= 0: return it rather than interpolate from 0
    assert bucket_quantile(0.2, [(-1.0, 5.0), (0.0, 10.0), (math.inf, 10.0)]) == -1.0


def test_histogram_quantile_forces_monotonic_counts_and_merges_equal_bounds() -> None:
    # 0.5 bucket dips below 0.1's count (separately scraped buckets): treated as 10.
    dipped = [(0.1, 10.0), (0.5, 8.0), (1.0, 40.0), (math.inf, 50.0)]
    assert bucket_quantile(0.5, dipped) == pytest.approx(0.75)  # 0.5 + 0.5 * 15/30
    duplicated = [(0.1, 4.0), (0.1, 6.0), (math.inf, 20.0)]
    assert bucket_quantile(0.25, duplicated) == pytest.approx(0.05)


def _db_with(series: dict[str, list[tuple[float, float]]]) -> TSDB:
    db = TSDB()
    for name, points in series.items():
        for t, v in points:
            db.add({"__name__": name, "job": "j"}, t, v)
    return db


def _one(db: TSDB, query: str, t: float) -> float:
    result = Engine(db).instant_query(query, round(t * 1000))
    assert len(result.value) == 1, result  # type: ignore[arg-type]
    return result.value[0].value  # type: ignore[index]


def test_over_time_functions() -> None:
    db = _db_with({"g": [(10, 3.0), (20, 9.0), (30, 6.0), (40, 1.0)]})
    assert _one(db, "avg_over_time(g[30s])", 40) == pytest.approx(4.75)
    assert _one(db, "max_over_time(g[30s])", 40) == 9
    assert _one(db, "min_over_time(g[25s])", 40) == 1
    assert _one(db, "sum_over_time(g[30s])", 40) == 19
    assert _one(db, "count_over_time(g[20s])", 40) == 3  # both window ends included
    assert _one(db, "last_over_time(g[1m])", 35) == 6


def test_histogram_quantile_groups_by_labels_without_le() -> None:
    db = TSDB()
    for service, counts in (("a", (10, 30, 40, 50)), ("b", (0, 0, 10, 10))):
        for le, count in zip(("0.1", "0.5", "1", "+Inf"), counts, strict=True):
            db.add({"__name__": "h_bucket", "service": service, "le": le}, 100, count)
    db.add({"__name__": "h_bucket", "service": "a"}, 100, 1)  # no le: ignored
    result = Engine(db).instant_query("histogram_quantile(0.5, h_bucket)", 100_000)
    got = {dict(s.labels)["service"]: s.value for s in result.value}  # type: ignore[union-attr]
    assert got == pytest.approx({"a": 0.4, "b": 0.75})
    assert all("__name__" not in dict(s.labels) for s in result.value)  # type: ignore[union-attr]


def test_math_functions_and_clamps() -> None:
    db = _db_with({"v": [(10, -2.5)]})
    assert _one(db, "abs(v)", 10) == 2.5
    assert _one(db, "ceil(v)", 10) == -2
    assert _one(db, "floor(v)", 10) == -3
    assert _one(db, "round(v)", 10) == -2  # Prometheus rounds half up
    assert _one(db, "round(v, 2)", 10) == -2
    assert _one(db, "clamp_min(v, 0)", 10) == 0
    assert _one(db, "clamp_max(v, -3)", 10) == -3
    assert _one(db, "clamp(v, -1, 1)", 10) == -1
    assert Engine(db).instant_query("clamp(v, 1, -1)", 10_000).value == []
    assert _one(db, "sqrt(abs(v) * 10)", 10) == 5
    assert _one(db, "exp(v - v)", 10) == 1
    assert _one(db, "ln(exp(v))", 10) == pytest.approx(-2.5)
    assert _one(db, "log2(abs(v) * 0 + 8)", 10) == 3
    assert _one(db, "log10(abs(v) * 0 + 1000)", 10) == 3
    assert math.isnan(_one(db, "sqrt(v)", 10))


def test_sum_and_avg_over_time_are_compensated_like_prometheus() -> None:
    from lab.promql.functions import over_time

    # Plain left-to-right float addition loses the 1 entirely; Prometheus's Kahan-Neumaier
    # summation keeps it.
    assert over_time("sum_over_time", [1e16, 1.0, -1e16]) == 1.0
    assert over_time("avg_over_time", [math.inf, 1.0]) == math.inf
    assert math.isnan(over_time("avg_over_time", [math.inf, -math.inf]))
    assert over_time("sum_over_time", [math.inf, 1.0]) == math.inf


def test_rate_uses_one_combined_factor() -> None:
    # Same data, two orders of float operations: Prometheus multiplies by
    # (extrapolated / sampled / range) once, which is what we must reproduce bit for bit.
    # 0.7 over 2 s of samples, extrapolated by 1 s to the window start, per 3 s:
    # 0.7 * (3 / 2 / 3) == 0.35, whereas (0.7 * 3 / 2) / 3 == 0.3499999999999999.
    t = np.array([1_000, 2_000, 3_000], dtype=np.int64)
    values = np.array([1.0, 1.2, 1.7])
    got = extrapolated_rate(t, values, 0, 3_000, is_counter=False, is_rate=True)
    assert got == 0.35


def test_changes_resets_deriv_predict_linear() -> None:
    db = _db_with({"disk": [(100 + i * 10, 1000 - i * 20.0) for i in range(10)]})
    db.add({"__name__": "c", "job": "j"}, 10, 5)
    db.add({"__name__": "c", "job": "j"}, 20, 2)
    db.add({"__name__": "c", "job": "j"}, 30, 2)
    db.add({"__name__": "c", "job": "j"}, 40, 1)
    assert _one(db, "deriv(disk[1m])", 190) == pytest.approx(-2.0)
    # anchored at the evaluation time: 820 now, falling 2/s for an hour
    assert _one(db, "predict_linear(disk[1m], 3600)", 190) == pytest.approx(820 - 7200)
    assert _one(db, "changes(c[1m])", 40) == 2
    assert _one(db, "resets(c[1m])", 40) == 2
    flat = _db_with({"f": [(10, 3.0), (20, 3.0)]})
    assert _one(flat, "deriv(f[1m])", 20) == 0.0
    assert _one(flat, "predict_linear(f[1m], 100)", 20) == 3.0


def test_label_replace() -> None:
    db = TSDB()
    db.add({"__name__": "up", "pod": "web-7", "job": "x"}, 10, 1)
    engine = Engine(db)

    def labels(query: str) -> dict[str, str]:
        (sample,) = engine.instant_query(query, 10_000).value  # type: ignore[misc]
        return dict(sample.labels)

    assert labels('label_replace(up, "app", "$1", "pod", "(.*)-[0-9]+")')["app"] == "web"
    assert labels('label_replace(up, "app", "${1}x$2", "pod", "(.*)-([0-9])")')["app"] == "webx7"
    assert labels('label_replace(up, "app", "$1x", "pod", "(.*)")').get("app") is None  # $1x
    assert labels('label_replace(up, "app", "$$1", "pod", ".*")')["app"] == "$1"
    assert "pod" not in labels('label_replace(up, "pod", "", "pod", ".*")')
    assert "app" not in labels('label_replace(up, "app", "a", "pod", "web")')  # anchored
    assert labels('label_replace(up, "app", "a", "pod", "web")')["__name__"] == "up"


def test_label_replace_errors() -> None:
    db = _db_with({"up": [(10, 1.0)]})
    with pytest.raises(EvalError, match="invalid destination label name"):
        Engine(db).instant_query('label_replace(up, "1x", "a", "job", ".*")', 10_000)
    with pytest.raises(EvalError, match="invalid regular expression"):
        Engine(db).instant_query('label_replace(up, "x", "a", "job", "(")', 10_000)
