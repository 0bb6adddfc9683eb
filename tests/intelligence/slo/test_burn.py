"""Burn maths on plain data: error ratio, budget, burn per window, which pairs fire."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from intelligence.slo.burn import (
    WORKBOOK_PAIRS,
    WindowValue,
    assess,
    burn_windows,
    counter_increase,
    duration,
    error_budget,
    error_ratio,
    firing_pairs,
    ratio_from_counters,
)

H = 3600
DAY = 86400


def values(ratios: dict[int, float | None], total: float = 1000.0) -> list[WindowValue]:
    """Good/total per window giving ``ratios`` (None: no traffic)."""
    return [
        WindowValue(s, 0.0, 0.0) if r is None else WindowValue(s, total * (1 - r), total)
        for s, r in ratios.items()
    ]


def all_windows(ratio: float | None, window_days: int = 28) -> dict[int, float | None]:
    return {s: ratio for s in [*burn_windows(), window_days * DAY]}


def test_workbook_windows_and_thresholds():
    assert [(p.long, p.short, p.factor, p.severity) for p in WORKBOOK_PAIRS] == [
        ("1h", "5m", 14.4, "page"),
        ("6h", "30m", 6.0, "page"),
        ("1d", "2h", 3.0, "ticket"),
        ("3d", "6h", 1.0, "ticket"),
    ]
    assert [duration(s) for s in burn_windows()] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert duration(28 * DAY) == "28d" and duration(DAY + 2 * H + 30) == "1d2h30s"
    with pytest.raises(ValueError):
        duration(0)


def test_budget_is_exact_for_decimal_objectives():
    assert error_budget("99.9") == 0.001
    assert error_budget(Decimal("99.99")) == 0.0001  # 1 - 0.9999 would be 9.9999999999989e-05
    assert error_budget("99.999") == 1e-05
    for bad in ("100", "0", "-1", "101"):
        with pytest.raises(ValueError):
            error_budget(bad)


def test_error_ratio_without_traffic_or_data_is_none():
    assert error_ratio(990, 1000) == pytest.approx(0.01)
    assert error_ratio(0, 0) is None  # no traffic: Prometheus's 0/0 = NaN
    assert error_ratio(5, 0) is None  # good without total (a scrape race): no ratio
    assert error_ratio(None, 10) is None and error_ratio(10, None) is None  # empty vector
    assert error_ratio(math.nan, 10) is None and error_ratio(10, math.nan) is None
    assert error_ratio(math.inf, math.inf) is None
    # good counted slightly ahead of total: a small negative ratio, like the rule's
    assert error_ratio(1001, 1000) == pytest.approx(-0.001)


def test_steady_small_errors_spend_budget_but_fire_nothing():
    a = assess("99.9", 28, values(all_windows(0.0005)))
    assert a.sli == pytest.approx(0.9995)
    assert a.budget_remaining == pytest.approx(0.5)
    assert a.burn("1h") == pytest.approx(0.5)
    assert not a.burning and a.severity is None


def test_fast_burn_pages_and_names_both_windows():
    ratios = all_windows(0.0002)
    ratios[H] = ratios[300] = 0.02  # 20x on a 99.9 % SLO
    a = assess("99.9", 28, values(ratios))
    assert a.burning and a.severity == "page"
    (fired,) = a.firing
    assert (fired.pair.long, fired.pair.short) == ("1h", "5m")
    assert fired.long_burn == pytest.approx(20) and fired.short_burn == pytest.approx(20)


def test_long_window_alone_does_not_fire_once_burning_stopped():
    ratios = all_windows(0.0002)
    ratios[H] = 0.02  # the last hour is still bad on average...
    ratios[300] = 0.0  # ...but the last five minutes are clean: the alert resolves
    a = assess("99.9", 28, values(ratios))
    assert not a.burning


def test_slow_burn_makes_a_ticket_not_a_page():
    ratios = all_windows(0.0002)
    ratios[3 * DAY] = ratios[6 * H] = 0.0015  # 1.5x: spends a 30-day budget in 20 days
    a = assess("99.9", 28, values(ratios))
    assert a.severity == "ticket"
    assert [(f.pair.long, f.pair.short) for f in a.firing] == [("3d", "6h")]


def test_threshold_is_strict_and_decided_as_prometheus_does():
    budget = error_budget("99.9")
    at = 14.4 * budget  # the same float the rule's (14.4 * 0.001) gives
    ratios = dict.fromkeys(burn_windows(), 0.0)
    ratios[H] = ratios[300] = at
    assert not firing_pairs(ratios, budget)
    ratios[H] = ratios[300] = math.nextafter(at, 1)
    assert [f.pair.factor for f in firing_pairs(ratios, budget)] == [14.4]


def test_objective_four_nines():
    ratios = all_windows(0.00001, window_days=30)  # a tenth of a 99.99 % budget
    ratios[H] = ratios[300] = 0.0015  # 15x of 1e-4
    a = assess(Decimal("99.99"), 30, values(ratios, total=1e7))
    assert a.budget == 0.0001
    assert a.budget_remaining == pytest.approx(0.9)
    assert a.burn("5m") == pytest.approx(15)
    assert a.severity == "page"


def test_no_traffic_burns_nothing_and_has_no_sli():
    a = assess("99.9", 28, values(all_windows(None)))
    assert a.sli is None and a.budget_remaining is None
    assert a.windows["1h"]["burn_rate"] is None
    assert not a.burning


def test_nan_short_window_blocks_the_pair():
    ratios = all_windows(0.0002)
    ratios[H] = 0.05
    vals = [v if v.seconds != 300 else WindowValue(300, math.nan, 100.0) for v in values(ratios)]
    a = assess("99.9", 28, vals)
    assert a.windows["5m"]["error_ratio"] is None and not a.burning


def test_overspent_budget_is_negative():
    a = assess("99.9", 28, values(all_windows(0.003)))
    assert a.budget_remaining == pytest.approx(-2.0)
    assert a.as_dict()["window"] == "28d"


def test_counter_increase_handles_resets_nan_and_sparse_windows():
    times = [0, 10, 20, 30, 40]
    assert counter_increase(times, [5, 7, 2, 4, 6], 0, 40) == pytest.approx(2 + 2 + 2 + 2)
    assert counter_increase(times, [5, math.nan, 9, 10, 12], 0, 40) == pytest.approx(7)
    assert counter_increase(times, [5, 7, 9, 10, 12], 15, 25) is None  # one sample only


def test_ratio_from_counters_window_shorter_and_longer_than_the_data():
    times = list(range(0, 3600, 15))
    total = [1000.0 + 10 * i for i in range(len(times))]
    good = [1000.0 + 10 * i - (0 if t < 3000 else (t - 3000) / 15 * 2) for i, t in enumerate(times)]
    end = times[-1]
    # the last 5 minutes: 2 of 10 per 15 s fail
    assert ratio_from_counters(times, good, total, end, 300) == pytest.approx(0.2)
    # a window longer than the data uses what there is: every sample
    whole = ratio_from_counters(times, good, total, end, 86400)
    assert whole == pytest.approx(1 - (good[-1] - good[0]) / (total[-1] - total[0]))
    assert whole == pytest.approx(2 * 39 / (10 * 239))  # 39 bad ticks of 239 intervals
