"""Prometheus text exposition format 0.0.4 for the newest sample of each series, so a
real Prometheus can scrape the lab like any exporter.

Metric types are inferred from names, the way the lab's metrics are named: a family with
``_bucket`` series carrying ``le`` is a histogram (its ``_bucket``, ``_sum`` and ``_count``
series are written together under one ``# TYPE`` line, which the format requires), a
``*_total`` name is a counter, anything else a gauge. No timestamps are written: the
scraper stamps samples with its own scrape time, as with real exporters.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lab.tsdb import TSDB

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Shortest round-trip text for a float; integral values without a trailing ``.0``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _family(name: str, histogram_bases: set[str]) -> tuple[str, str]:
    """(family name, type) of a metric name."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in histogram_bases:
            return name[: -len(suffix)], "histogram"
    if name.endswith("_total"):
        return name, "counter"
    return name, "gauge"


def _le_order(labels: dict[str, str]) -> float:
    try:
        return float(labels.get("le", "nan"))
    except ValueError:
        return math.nan


def metric_families(names: set[str]) -> dict[str, str]:
    """Family name -> type for a set of metric names (what ``/api/v1/metadata`` lists)."""
    bases = {name[: -len("_bucket")] for name in names if name.endswith("_bucket")}
    return dict(sorted(_family(name, bases) for name in names))


def render(tsdb: TSDB, *, only: Callable[[dict[str, str]], bool] | None = None) -> str:
    """The exposition text for every series (or those ``only`` accepts)."""
    latest = [
        (labels, value)
        for labels, _t, value in tsdb.latest()
        if "__name__" in labels and (only is None or only(labels))
    ]
    histogram_bases = {
        labels["__name__"][: -len("_bucket")]
        for labels, _v in latest
        if labels["__name__"].endswith("_bucket") and "le" in labels
    }
    families: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}
    for labels, value in latest:
        family, kind = _family(labels["__name__"], histogram_bases)
        families.setdefault(family, (kind, []))[1].append((labels, value))
    suffix_rank = {"_bucket": 0, "_sum": 1, "_count": 2}
    lines: list[str] = []
    for family in sorted(families):
        kind, members = families[family]

        def order(item: tuple[dict[str, str], float], family: str = family) -> tuple:
            labels = item[0]
            rest = sorted((k, v) for k, v in labels.items() if k not in ("__name__", "le"))
            suffix = labels["__name__"][len(family) :]
            le = _le_order(labels)
            return (rest, suffix_rank.get(suffix, 3), math.isnan(le), 0.0 if math.isnan(le) else le)

        lines.append(f"# TYPE {family} {kind}")
        for labels, value in sorted(members, key=order):
            pairs = [(k, v) for k, v in labels.items() if k != "__name__"]
            pairs.sort(key=lambda p: (p[0] == "le", p[0]))
            body = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs)
            name = labels["__name__"]
            series = f"{name}{{{body}}}" if body else name
            lines.append(f"{series} {format_value(value)}")
    return "\n".join(lines) + "\n" if lines else ""
