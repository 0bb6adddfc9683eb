"""Evaluator: selectors (lookback, offset, regex), aggregations, binary operators and
vector matching, metric-name dropping, range queries, and execution errors."""

from __future__ import annotations

import math

import pytest

from lab.promql import Engine, EvalError, PromQLError
from lab.tsdb import TSDB

T = 1_000_000  # seconds; evaluation time used throughout


def _requests_db() -> TSDB:
    """http_requests_total for two services, two pods, codes 200/500, one sample every
    10 s for 10 minutes, each series with its own constant rate."""
    db = TSDB()
    rates = {
        ("api", "api-0", "200"): 10.0,
        ("api", "api-0", "500"): 1.0,
        ("api", "api-1", "200"): 6.0,
        ("api", "api-1", "500"): 0.0,
        ("web", "web-0", "200"): 4.0,
        ("web", "web-0", "500"): 2.0,
    }
    for (service, pod, code), rate in rates.items():
        labels = {"__name__": "http_requests_total", "service": service, "pod": pod, "code": code}
        for i in range(61):
            db.add(labels, T - 600 + i * 10, rate * i * 10)
    for pod, depth in (("api-0", 3.0), ("api-1", 5.0), ("web-0", 10.0)):
        labels = {"__name__": "queue_depth", "service": pod.split("-")[0], "pod": pod}
        db.add(labels, T - 30, depth)
    return db


@pytest.fixture(scope="module")
def db() -> TSDB:
    return _requests_db()


def q(db: TSDB, query: str, t: float = T) -> dict[tuple[tuple[str, str], ...], float]:
    result = Engine(db).instant_query(query, round(t * 1000))
    if result.result_type == "scalar":
        return {(): result.value.value}  # type: ignore[union-attr]
    return {s.labels: s.value for s in result.value}  # type: ignore[union-attr]


def L(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_instant_selector_returns_latest_sample_with_its_name(db: TSDB) -> None:
    got = q(db, 'queue_depth{pod="web-0"}')
    assert got == {L(__name__="queue_depth", service="web", pod="web-0"): 10.0}


def test_lookback_is_five_minutes(db: TSDB) -> None:
    assert len(q(db, "queue_depth", T - 30 + 300)) == 3  # exactly 5 min old: still there
    assert q(db, "queue_depth", T - 30 + 301) == {}
    assert q(db, "queue_depth", T - 31) == {}  # nothing before the first sample


def test_regex_and_negative_matchers(db: TSDB) -> None:
    got = q(db, 'http_requests_total{pod=~"api-.*", code!="500"}')
    assert {dict(k)["pod"] for k in got} == {"api-0", "api-1"}
    assert len(q(db, 'http_requests_total{pod!~"api-.*"}')) == 2
    assert len(q(db, '{__name__=~"queue_.*|http_.*"}')) == 9
    assert q(db, 'http_requests_total{pod=~"api"}') == {}  # regexes are fully anchored


def test_offset_shifts_the_evaluation_time(db: TSDB) -> None:
    now = q(db, 'http_requests_total{pod="api-0",code="200"}')
    before = q(db, 'http_requests_total{pod="api-0",code="200"} offset 1m')
    assert list(now.values()) == [6000.0] and list(before.values()) == [5400.0]
    rate = q(db, 'rate(http_requests_total{pod="api-0",code="200"}[1m] offset 5m)')
    assert list(rate.values()) == pytest.approx([10.0])


def test_rate_drops_the_metric_name(db: TSDB) -> None:
    got = q(db, 'rate(http_requests_total{service="web"}[5m])')
    assert got == pytest.approx(
        {
            L(service="web", pod="web-0", code="200"): 4.0,
            L(service="web", pod="web-0", code="500"): 2.0,
        }
    )


def test_sum_by_and_without_in_both_positions(db: TSDB) -> None:
    by = q(db, "sum by (service) (rate(http_requests_total[5m]))")
    assert by == pytest.approx({L(service="api"): 17.0, L(service="web"): 6.0})
    assert q(db, "sum(rate(http_requests_total[5m])) by (service)") == by
    without = q(db, "sum without (pod, code) (rate(http_requests_total[5m]))")
    assert without == by
    assert q(db, "sum(rate(http_requests_total[5m]))") == pytest.approx({(): 23.0})


def test_without_drops_the_metric_name_by_keeps_only_listed(db: TSDB) -> None:
    assert set(q(db, "max without (pod) (queue_depth)")) == {L(service="api"), L(service="web")}
    assert set(q(db, "max by (__name__) (queue_depth)")) == {L(__name__="queue_depth")}
    assert set(q(db, "max by (nosuchlabel) (queue_depth)")) == {()}


def test_avg_min_max_count(db: TSDB) -> None:
    assert q(db, "avg(queue_depth)") == pytest.approx({(): 6.0})
    assert q(db, "min by (service) (queue_depth)") == {
        L(service="api"): 3.0,
        L(service="web"): 10.0,
    }
    assert q(db, "max by (service) (queue_depth)") == {
        L(service="api"): 5.0,
        L(service="web"): 10.0,
    }
    assert q(db, "count by (service) (queue_depth)") == {
        L(service="api"): 2.0,
        L(service="web"): 1.0,
    }


def test_topk_and_bottomk_keep_labels(db: TSDB) -> None:
    assert list(q(db, "topk(1, queue_depth)").values()) == [10.0]
    assert set(q(db, "bottomk by (service) (1, queue_depth)").values()) == {3.0, 10.0}
    assert all(dict(k)["__name__"] == "queue_depth" for k in q(db, "topk(2, queue_depth)"))
    assert q(db, "topk(0, queue_depth)") == {}


def test_error_ratio_vector_division_matches_on_all_labels(db: TSDB) -> None:
    got = q(
        db,
        'sum by (service) (rate(http_requests_total{code="500"}[5m]))'
        " / sum by (service) (rate(http_requests_total[5m]))",
    )
    assert got == pytest.approx({L(service="api"): 1 / 17, L(service="web"): 2 / 6})


def test_ignoring_and_on(db: TSDB) -> None:
    ratio = q(
        db,
        'http_requests_total{code="500"} / ignoring(code) http_requests_total{code="200"}',
    )
    assert ratio == pytest.approx(
        {
            L(service="api", pod="api-0"): 0.1,
            L(service="api", pod="api-1"): 0.0,
            L(service="web", pod="web-0"): 0.5,
        }
    )
    on = q(db, 'queue_depth / on(pod) http_requests_total{code="200"}')
    assert on == pytest.approx(
        {L(pod="api-0"): 3 / 6000, L(pod="api-1"): 5 / 3600, L(pod="web-0"): 10 / 2400}
    )


def test_group_left_copies_labels_from_the_one_side() -> None:
    db = TSDB()
    db.add({"__name__": "errors", "service": "api", "pod": "a"}, T, 4)
    db.add({"__name__": "errors", "service": "api", "pod": "b"}, T, 6)
    db.add({"__name__": "owner", "service": "api", "team": "sre"}, T, 1)
    got = q(db, "errors * on(service) group_left(team) owner")
    assert got == {
        L(service="api", pod="a", team="sre"): 4.0,
        L(service="api", pod="b", team="sre"): 6.0,
    }
    right = q(db, "owner * on(service) group_right(team) errors")
    assert right == got


def test_many_to_many_and_unmarked_many_to_one_are_errors() -> None:
    db = TSDB()
    db.add({"__name__": "a", "service": "x", "pod": "1"}, T, 1)
    db.add({"__name__": "a", "service": "x", "pod": "2"}, T, 1)
    db.add({"__name__": "b", "service": "x"}, T, 1)
    db.add({"__name__": "c", "service": "x", "pod": "1"}, T, 1)
    with pytest.raises(EvalError, match="many-to-one matching must be explicit"):
        q(db, "a / on(service) b")
    with pytest.raises(EvalError, match="found duplicate series for the match group"):
        q(db, "b / on(service) a")
    with pytest.raises(EvalError, match="same labelset"):
        q(db, '{__name__=~"a|c"} * 2')


def test_comparison_filters_keep_the_name_bool_drops_it(db: TSDB) -> None:
    got = q(db, "queue_depth > 4")
    assert set(got.values()) == {5.0, 10.0}
    assert all("__name__" in dict(k) for k in got)
    assert q(db, "4 < queue_depth") == got  # the vector's value even when it is on the right
    flags = q(db, "queue_depth > bool 4")
    assert sorted(flags.values()) == [0.0, 1.0, 1.0]
    assert all("__name__" not in dict(k) for k in flags)
    assert q(db, "queue_depth == 5") == {L(__name__="queue_depth", service="api", pod="api-1"): 5.0}
    assert len(q(db, "queue_depth != 5")) == 2
    assert len(q(db, "queue_depth >= 5")) == 2
    assert len(q(db, "queue_depth <= 5")) == 2


def test_vector_comparison_keeps_left_values(db: TSDB) -> None:
    got = q(db, 'queue_depth > on(pod) (rate(http_requests_total{code="500"}[5m]))')
    assert got == {L(pod="api-0"): 3.0, L(pod="api-1"): 5.0, L(pod="web-0"): 10.0}
    flags = q(db, 'queue_depth > bool on(pod) (rate(http_requests_total{code="500"}[5m]) * 4)')
    assert flags == pytest.approx({L(pod="api-0"): 0.0, L(pod="api-1"): 1.0, L(pod="web-0"): 1.0})


def test_scalar_arithmetic_and_ieee_semantics(db: TSDB) -> None:
    assert q(db, "1 + 2 * 3 - 4 / 2") == {(): 5.0}
    assert q(db, "2 ^ 3 ^ 2") == {(): 512.0}
    assert q(db, "-2 ^ 2") == {(): -4.0}
    assert q(db, "7 % 3") == {(): 1.0}
    assert q(db, "1 / 0") == {(): math.inf}
    assert q(db, "-1 / 0") == {(): -math.inf}
    assert math.isnan(q(db, "0 / 0")[()])
    assert math.isnan(q(db, "5 % 0")[()])
    assert q(db, "2 > bool 1") == {(): 1.0}
    assert q(db, "(1 + 2) * 3") == {(): 9.0}


def test_vector_scalar_arithmetic_drops_the_name(db: TSDB) -> None:
    got = q(db, 'queue_depth{pod="web-0"} * 2 + 1')
    assert got == {L(service="web", pod="web-0"): 21.0}
    assert q(db, 'queue_depth{pod="web-0"} - queue_depth{pod="web-0"}') == {
        L(service="web", pod="web-0"): 0.0
    }
    assert q(db, '-queue_depth{pod="web-0"}') == {L(service="web", pod="web-0"): -10.0}
    assert q(db, '100 / queue_depth{pod="web-0"}') == {L(service="web", pod="web-0"): 10.0}


def test_set_operators(db: TSDB) -> None:
    depth = 'queue_depth{service="api"}'
    assert len(q(db, f"{depth} and on(pod) queue_depth > 4")) == 1
    assert len(q(db, f"{depth} unless on(pod) queue_depth > 4")) == 1
    assert len(q(db, f'{depth} or queue_depth{{service="web"}}')) == 3


def test_scalar_vector_and_time_functions(db: TSDB) -> None:
    assert q(db, "time()") == {(): float(T)}
    assert q(db, "vector(3)") == {(): 3.0}
    assert q(db, 'scalar(queue_depth{pod="web-0"})') == {(): 10.0}
    assert math.isnan(q(db, "scalar(queue_depth)")[()])  # not exactly one element


def test_range_query_steps_and_scalars(db: TSDB) -> None:
    engine = Engine(db)
    rows = engine.range_query(
        'rate(http_requests_total{pod="api-0",code="200"}[1m])', (T - 120) * 1000, T * 1000, 60_000
    )
    assert len(rows) == 1
    assert rows[0].t_ms.tolist() == [(T - 120) * 1000, (T - 60) * 1000, T * 1000]
    assert rows[0].values.tolist() == pytest.approx([10.0, 10.0, 10.0])
    scalar_rows = engine.range_query("1 + 1", 0, 2000, 1000)
    assert scalar_rows[0].labels == () and scalar_rows[0].values.tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(PromQLError, match='invalid expression type "range vector"'):
        engine.range_query("queue_depth[5m]", 0, 1000, 1000)


def test_range_vector_instant_query_returns_raw_samples(db: TSDB) -> None:
    result = Engine(db).instant_query('http_requests_total{pod="web-0",code="500"}[30s]', T * 1000)
    assert result.result_type == "matrix"
    (series,) = result.value  # type: ignore[misc]
    assert series.t_ms.tolist() == [(T - 30) * 1000, (T - 20) * 1000, (T - 10) * 1000, T * 1000]


def test_absent(db: TSDB) -> None:
    assert q(db, 'absent(queue_depth{pod="web-0"})') == {}
    assert q(db, 'absent(nope{job="x", env=~"p.*", pod="a", pod="b"})') == {L(job="x"): 1.0}
    assert q(db, "absent(sum(nope))") == {(): 1.0}


def test_sort_and_sort_desc_keep_their_order(db: TSDB) -> None:
    ascending = Engine(db).instant_query("sort(queue_depth)", T * 1000).value
    assert [s.value for s in ascending] == [3.0, 5.0, 10.0]  # type: ignore[union-attr]
    descending = Engine(db).instant_query("sort_desc(queue_depth)", T * 1000).value
    assert [s.value for s in descending] == [10.0, 5.0, 3.0]  # type: ignore[union-attr]
    assert all(dict(s.labels)["__name__"] == "queue_depth" for s in descending)  # type: ignore[union-attr]


def test_stddev_stdvar_quantile_group(db: TSDB) -> None:
    # queue_depth: 3, 5, 10 -> mean 6, population variance (9 + 1 + 16) / 3
    assert q(db, "stdvar(queue_depth)") == pytest.approx({(): 26 / 3})
    assert q(db, "stddev(queue_depth)") == pytest.approx({(): (26 / 3) ** 0.5})
    assert q(db, "quantile(0.5, queue_depth)") == {(): 5.0}
    assert q(db, "quantile(0.75, queue_depth)") == {(): 7.5}  # between 5 and 10
    assert q(db, "quantile(2, queue_depth)") == {(): math.inf}
    assert q(db, "quantile by (service) (0, queue_depth)") == {
        L(service="api"): 3.0,
        L(service="web"): 10.0,
    }
    assert q(db, "group by (service) (queue_depth)") == {
        L(service="api"): 1.0,
        L(service="web"): 1.0,
    }


def test_quantile_and_stddev_over_time() -> None:
    db = TSDB()
    for t, v in (
        (10, 2.0),
        (20, 4.0),
        (30, 4.0),
        (40, 4.0),
        (50, 5.0),
        (60, 5.0),
        (70, 7.0),
        (80, 9.0),
    ):
        db.add({"__name__": "g"}, t, v)
    assert q(db, "stddev_over_time(g[70s])", 80) == {(): pytest.approx(2.0)}
    assert q(db, "stdvar_over_time(g[70s])", 80) == {(): pytest.approx(4.0)}
    assert q(db, "quantile_over_time(0.5, g[70s])", 80) == {(): 4.5}
    assert q(db, "quantile_over_time(-1, g[70s])", 80) == {(): -math.inf}


def test_timestamp_gives_sample_times_for_selectors(db: TSDB) -> None:
    assert set(q(db, "timestamp(queue_depth)").values()) == {float(T - 30)}
    assert set(q(db, "timestamp(queue_depth * 1)").values()) == {float(T)}  # eval time
    assert all("__name__" not in dict(k) for k in q(db, "timestamp(queue_depth)"))


def test_at_modifier_pins_the_evaluation_time(db: TSDB) -> None:
    pinned = q(db, f'http_requests_total{{pod="api-0",code="200"}} @ {T - 60}', T + 1000)
    assert list(pinned.values()) == [5400.0]
    rate = q(db, f'rate(http_requests_total{{pod="web-0",code="500"}}[1m] @ {T - 60})', T + 1)
    assert list(rate.values()) == pytest.approx([2.0])
    rows = Engine(db).range_query(
        'queue_depth{pod="web-0"} @ end() - queue_depth{pod="web-0"} @ start()',
        (T - 20) * 1000,
        T * 1000,
        10_000,
    )
    assert rows[0].values.tolist() == [0.0, 0.0, 0.0]
