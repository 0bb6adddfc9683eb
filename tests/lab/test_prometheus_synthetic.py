"""The synthetic generator the faithfulness test relies on: deterministic per tick,
one counter reset, monotonic histogram buckets, evenly stamped live ticks."""

from __future__ import annotations

import time

from lab.promql import Engine
from lab.synthetic import LiveGenerator, SyntheticMetrics
from lab.tsdb import TSDB, Matcher


def _fill(ticks: int) -> TSDB:
    db = TSDB()
    metrics = SyntheticMetrics(reset_tick=5)
    for k in range(ticks):
        metrics.tick(db, 1000 + k)
    return db


def test_same_ticks_same_values() -> None:
    def snapshot(db: TSDB) -> list[tuple]:
        return sorted((sorted(labels.items()), t, v) for labels, t, v in db.latest())

    assert snapshot(_fill(8)) == snapshot(_fill(8))


def test_reset_pod_counter_drops_once() -> None:
    db = _fill(10)
    (series,) = db.select(
        [
            Matcher("__name__", "=", "http_requests_total"),
            Matcher("pod", "=", "cart-1"),
            Matcher("code", "=", "200"),
        ],
        0,
        2000,
    )
    drops = (series.values[1:] < series.values[:-1]).nonzero()[0].tolist()
    assert drops == [4]  # between tick 4 and tick 5
    result = Engine(db).instant_query('increase(http_requests_total{pod="cart-1"}[20s])', 1_009_000)
    assert all(s.value > 0 for s in result.value)  # type: ignore[union-attr]


def test_histogram_buckets_are_cumulative() -> None:
    db = _fill(3)
    for service in ("checkout", "cart", "search"):
        found = db.select(
            [
                Matcher("__name__", "=", "http_request_duration_seconds_bucket"),
                Matcher("service", "=", service),
            ],
            0,
            2000,
        )
        by_le = sorted((float(s.labels["le"]), s.values[-1]) for s in found)
        counts = [count for _le, count in by_le]
        assert counts == sorted(counts) and counts[-1] > 0


def test_live_generator_stamps_scheduled_times() -> None:
    db = TSDB()
    metrics = SyntheticMetrics()
    generator = LiveGenerator(db, metrics, interval=0.05)
    start = time.time()
    generator.start(first_tick_at=start + 0.01)
    time.sleep(0.3)
    generator.stop()
    assert metrics.ticks >= 3
    gaps = {
        round(b - a, 6) for a, b in zip(metrics.tick_times, metrics.tick_times[1:], strict=False)
    }
    assert gaps == {0.05}
