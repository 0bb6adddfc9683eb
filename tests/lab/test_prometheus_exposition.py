"""Text exposition format 0.0.4: TYPE lines by name, histogram families kept together,
label escaping, special values, no timestamps, newest sample only."""

from __future__ import annotations

import math
import re

from lab.exposition import escape_label_value, format_value, render
from lab.synthetic import SyntheticMetrics
from lab.tsdb import TSDB

# name{labels} value  -- with no timestamp
_SAMPLE_RE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? \S+$'
)


def test_types_and_newest_sample_only() -> None:
    db = TSDB()
    db.add({"__name__": "jobs_total", "queue": "q"}, 1, 5)
    db.add({"__name__": "jobs_total", "queue": "q"}, 2, 7)
    db.add({"__name__": "temperature"}, 2, 21.5)
    assert render(db) == (
        "# TYPE jobs_total counter\n"
        'jobs_total{queue="q"} 7\n'
        "# TYPE temperature gauge\n"
        "temperature 21.5\n"
    )


def test_histogram_family_is_contiguous_under_one_type_line() -> None:
    db = TSDB()
    for le, count in (("+Inf", 10), ("0.5", 7), ("0.1", 3)):
        db.add({"__name__": "lat_seconds_bucket", "svc": "a", "le": le}, 1, count)
    db.add({"__name__": "lat_seconds_sum", "svc": "a"}, 1, 2.5)
    db.add({"__name__": "lat_seconds_count", "svc": "a"}, 1, 10)
    db.add({"__name__": "lat_seconds_extra"}, 1, 1)  # not part of the histogram
    db.add({"__name__": "other_count"}, 1, 4)  # _count without buckets: a gauge
    assert render(db) == (
        "# TYPE lat_seconds histogram\n"
        'lat_seconds_bucket{svc="a",le="0.1"} 3\n'
        'lat_seconds_bucket{svc="a",le="0.5"} 7\n'
        'lat_seconds_bucket{svc="a",le="+Inf"} 10\n'
        'lat_seconds_sum{svc="a"} 2.5\n'
        'lat_seconds_count{svc="a"} 10\n'
        "# TYPE lat_seconds_extra gauge\n"
        "lat_seconds_extra 1\n"
        "# TYPE other_count gauge\n"
        "other_count 4\n"
    )


def test_label_values_are_escaped() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    db = TSDB()
    db.add({"__name__": "m", "path": 'C:\\tmp "x"\nnext'}, 1, 1)
    line = render(db).splitlines()[1]
    assert line == 'm{path="C:\\\\tmp \\"x\\"\\nnext"} 1'
    assert _SAMPLE_RE.match(line)


def test_special_and_fractional_values() -> None:
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(3.0) == "3"
    assert format_value(0.1) == "0.1"
    assert float(format_value(1e300)) == 1e300
    assert float(format_value(2.0**60)) == 2.0**60


def test_only_filters_series_and_empty_store_renders_nothing() -> None:
    db = TSDB()
    db.add({"__name__": "up", "pod": "a"}, 1, 1)
    db.add({"__name__": "up", "pod": "b"}, 1, 0)
    assert render(db, only=lambda labels: labels.get("pod") == "b") == (
        '# TYPE up gauge\nup{pod="b"} 0\n'
    )
    assert render(TSDB()) == ""


def test_every_line_is_well_formed() -> None:
    db = TSDB()
    metrics = SyntheticMetrics()
    for t in range(3):
        metrics.tick(db, 100 + t)
    text = render(db)
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(families) == len(set(families))  # each family declared once
    for line in text.splitlines():
        assert line.startswith("# TYPE ") or _SAMPLE_RE.match(line), line
