"""Evaluates a parsed PromQL expression over ``lab.tsdb.TSDB``.

Time is handled in integer milliseconds, like Prometheus, so window edges are exact
(``[t - range, t]``, both ends included as in Prometheus 2.x). Each selector's data is
fetched once per query for the whole evaluation span and sliced per step with
``searchsorted``, so range queries stay cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lab.promql import functions as fn
from lab.promql.errors import EvalError, PromQLError
from lab.promql.nodes import (
    COMPARISON_OPS,
    MATRIX,
    SCALAR,
    STRING,
    Aggregate,
    Binary,
    Call,
    MatrixSelector,
    Node,
    NumberLiteral,
    Paren,
    StringLiteral,
    Subquery,
    Unary,
    VectorMatching,
    VectorSelector,
)
from lab.promql.parser import parse
from lab.tsdb import TSDB

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs

LOOKBACK_DELTA_MS = 5 * 60 * 1000
# A subquery without a step uses Prometheus's default global evaluation_interval.
DEFAULT_SUBQUERY_STEP_MS = 60 * 1000
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_EXPAND_BRACED_RE = re.compile(r"\$\{([a-zA-Z0-9_]+)\}")
_EXPAND_BARE_RE = re.compile(r"\$([a-zA-Z0-9_]+)")
_DROP_NAME_OPS = frozenset({"+", "-", "*", "/", "%", "^"})


@dataclass
class Sample:
    labels: Labels
    value: float


@dataclass
class Scalar:
    value: float


@dataclass
class String:
    value: str


@dataclass
class RangeSeries:
    """A series with its samples: a range-vector element or a range-query result row."""

    labels: Labels
    t_ms: np.ndarray  # int64
    values: np.ndarray  # float64


Vector = list[Sample]
Matrix = list[RangeSeries]
Value = Scalar | String | Vector | Matrix


@dataclass
class QueryResult:
    """What a query returns: ``result_type`` is the API's ``resultType``."""

    result_type: str  # "vector", "matrix", "scalar" or "string"
    value: Value


def labels_of(mapping: dict[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def format_labels(labels: Labels) -> str:
    """Labels as Prometheus prints them in error messages: ``{a="b", c="d"}``."""
    inner = ", ".join(f'{k}="{_go_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _go_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def drop_name(labels: Labels) -> Labels:
    return tuple(p for p in labels if p[0] != "__name__")


class Engine:
    """Instant and range queries over one TSDB."""

    def __init__(
        self,
        tsdb: TSDB,
        lookback_delta_ms: int = LOOKBACK_DELTA_MS,
        default_subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
    ) -> None:
        self.tsdb = tsdb
        self.lookback_delta_ms = lookback_delta_ms
        self.default_subquery_step_ms = default_subquery_step_ms

    def instant_query(self, query: str | Node, t_ms: int) -> QueryResult:
        node = parse(query) if isinstance(query, str) else query
        ev = _Evaluation(self, t_ms, t_ms, 1)
        with np.errstate(all="ignore"):
            value = ev.eval(node, t_ms)
        if isinstance(value, Scalar):
            return QueryResult("scalar", value)
        if isinstance(value, String):
            return QueryResult("string", value)
        if node.type == MATRIX:
            return QueryResult("matrix", sorted(value, key=lambda s: s.labels))  # type: ignore[arg-type]
        if not _keeps_order(node):
            value = sorted(value, key=lambda s: s.labels)  # type: ignore[arg-type]
        return QueryResult("vector", value)

    def range_query(self, query: str | Node, start_ms: int, end_ms: int, step_ms: int) -> Matrix:
        node = parse(query) if isinstance(query, str) else query
        if node.type not in (SCALAR, "vector"):
            from_type = {MATRIX: "range vector", STRING: "string"}[node.type]
            raise PromQLError(  # bad_data, like Prometheus's NewRangeQuery
                f'invalid expression type "{from_type}" for range query, '
                "must be Scalar or instant Vector"
            )
        ev = _Evaluation(self, start_ms, end_ms, step_ms)
        with np.errstate(all="ignore"):
            rows = ev.collect(node)
        return [
            RangeSeries(labels, np.asarray(times, dtype=np.int64), np.asarray(vals))
            for labels, (times, vals) in sorted(rows.items())
        ]


def _keeps_order(node: Node) -> bool:
    """Results of sort/sort_desc/topk/bottomk are returned in their computed order;
    everything else sorted by labels, for stable output."""
    node = _unparen(node)
    if isinstance(node, Aggregate):
        return node.op in ("topk", "bottomk")
    return isinstance(node, Call) and node.func in ("sort", "sort_desc")


def _unparen(node: Node) -> Node:
    while isinstance(node, Paren):
        node = node.expr
    return node


@dataclass
class _Stored:
    """One selected series with what per-step evaluation reuses: plain lists for cheap
    scalar access, and window bounds for every step computed in one vectorised pass."""

    labels: Labels
    nameless: Labels
    t_ms: np.ndarray
    values: np.ndarray
    t_list: list[int]
    v_list: list[float]
    bounds: dict[tuple[int, int], tuple[list[int], list[int]]]


Window = tuple[_Stored, int, int]  # a series and the [lo, hi) slice inside a range window


class _Evaluation:
    """State of one query: the step grid and the per-selector data cache."""

    def __init__(
        self,
        engine: Engine,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        query_span: tuple[int, int] | None = None,
    ) -> None:
        self.engine = engine
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.step_ms = step_ms
        # what ``@ start()`` / ``@ end()`` mean: the outermost query's span
        self.query_span = query_span or (start_ms, end_ms)
        self.steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        self._cache: dict[tuple[VectorSelector, int], list[_Stored]] = {}
        self._subqueries: dict[Subquery, list[_Stored]] = {}
        self._group_keys: dict[tuple[int, Labels], Labels] = {}

    def collect(self, node: Node) -> dict[Labels, tuple[list[int], list[float]]]:
        """``node`` evaluated at every step: rows of (timestamps, values) per label set."""
        rows: dict[Labels, tuple[list[int], list[float]]] = {}
        for ts in self.steps.tolist():
            value = self.eval(node, ts)
            samples = [Sample((), value.value)] if isinstance(value, Scalar) else value
            for sample in samples:  # type: ignore[union-attr]
                times, values = rows.setdefault(sample.labels, ([], []))
                times.append(ts)
                values.append(sample.value)
        return rows

    def _subquery_series(self, node: Subquery) -> list[_Stored]:
        """The subquery's inner expression evaluated once for the whole query span, on a
        grid aligned to multiples of its step (as Prometheus does), cached per node."""
        cached = self._subqueries.get(node)
        if cached is None:
            step = node.step or self.engine.default_subquery_step_ms
            at = self._at(node.at)
            first, last = (self.start_ms, self.end_ms) if at is None else (at, at)
            earliest = first - node.offset - node.range
            start = step * (earliest // step)
            if start < earliest:
                start += step
            end = last - node.offset
            cached = []
            if start <= end:
                inner = _Evaluation(self.engine, start, end, step, self.query_span)
                for labels, (times, values) in sorted(inner.collect(node.expr).items()):
                    t_ms = np.asarray(times, dtype=np.int64)
                    cached.append(
                        _Stored(
                            labels,
                            drop_name(labels),
                            t_ms,
                            np.asarray(values, dtype=np.float64),
                            times,
                            values,
                            {},
                        )
                    )
            self._subqueries[node] = cached
        return cached

    # -- data access ---------------------------------------------------------------
    def _at(self, at: int | str | None) -> int | None:
        if at == "start":
            return self.query_span[0]
        if at == "end":
            return self.query_span[1]
        return at  # type: ignore[return-value]

    def _series(self, selector: VectorSelector, window_ms: int) -> list[_Stored]:
        key = (selector, window_ms)
        cached = self._cache.get(key)
        if cached is None:
            at = self._at(selector.at)
            first, last = (self.start_ms, self.end_ms) if at is None else (at, at)
            lo = first - selector.offset - window_ms
            hi = last - selector.offset
            found = self.engine.tsdb.select(selector.matchers, (lo - 1) / 1000, (hi + 1) / 1000)
            cached = []
            for s in found:
                labels = labels_of(s.labels)
                t_ms = np.round(s.timestamps * 1000).astype(np.int64)
                cached.append(
                    _Stored(
                        labels,
                        drop_name(labels),
                        t_ms,
                        s.values,
                        t_ms.tolist(),
                        s.values.tolist(),
                        {},
                    )
                )
            cached.sort(key=lambda s: s.labels)
            self._cache[key] = cached
        return cached

    def _bounds(
        self, series: _Stored, offset: int, window_ms: int, ts: int, at: int | None = None
    ) -> tuple[int, int]:
        """[lo, hi) indices of the samples in ``[ts - offset - window, ts - offset]``
        (``at`` instead of ``ts`` when the ``@`` modifier pins the time)."""
        if at is not None:
            end = at - offset
            lo_at = int(np.searchsorted(series.t_ms, end - window_ms, side="left"))
            return lo_at, int(np.searchsorted(series.t_ms, end, side="right"))
        key = (offset, window_ms)
        bounds = series.bounds.get(key)
        if bounds is None:
            ends = self.steps - offset
            lo = np.searchsorted(series.t_ms, ends - window_ms, side="left")
            hi = np.searchsorted(series.t_ms, ends, side="right")
            bounds = series.bounds[key] = (lo.tolist(), hi.tolist())
        i = (ts - self.start_ms) // self.step_ms
        return bounds[0][i], bounds[1][i]

    def _instant_selector(self, node: VectorSelector, ts: int) -> Vector:
        return [Sample(labels, value) for labels, _t, value in self._newest(node, ts)]

    def _newest(self, node: VectorSelector, ts: int) -> list[tuple[Labels, int, float]]:
        """(labels, sample time, value) of each series' newest sample at most the lookback
        delta old."""
        lookback = self.engine.lookback_delta_ms
        out = []
        at = self._at(node.at)
        for series in self._series(node, lookback):
            lo, hi = self._bounds(series, node.offset, lookback, ts, at)
            if hi > lo:
                out.append((series.labels, series.t_list[hi - 1], series.v_list[hi - 1]))
        return out

    def _windows(self, node: MatrixSelector | Subquery, ts: int) -> list[Window]:
        if isinstance(node, Subquery):
            stored, offset, at = self._subquery_series(node), node.offset, self._at(node.at)
        else:
            sel = node.selector
            stored, offset, at = self._series(sel, node.range), sel.offset, self._at(sel.at)
        out: list[Window] = []
        for series in stored:
            lo, hi = self._bounds(series, offset, node.range, ts, at)
            if hi > lo:
                out.append((series, lo, hi))
        return out

    def _matrix_selector(self, node: MatrixSelector | Subquery, ts: int) -> Matrix:
        return [
            RangeSeries(series.labels, series.t_ms[lo:hi], series.values[lo:hi])
            for series, lo, hi in self._windows(node, ts)
        ]

    # -- dispatch ------------------------------------------------------------------
    def eval(self, node: Node, ts: int) -> Value:
        if isinstance(node, NumberLiteral):
            return Scalar(node.value)
        if isinstance(node, StringLiteral):
            return String(node.value)
        if isinstance(node, Paren):
            return self.eval(node.expr, ts)
        if isinstance(node, VectorSelector):
            return self._instant_selector(node, ts)
        if isinstance(node, MatrixSelector | Subquery):
            return self._matrix_selector(node, ts)
        if isinstance(node, Unary):
            return self._unary(node, ts)
        if isinstance(node, Binary):
            return self._binary(node, ts)
        if isinstance(node, Aggregate):
            return self._aggregate(node, ts)
        if isinstance(node, Call):
            return self._call(node, ts)
        raise EvalError(f"unexpected expression {node!r}")

    def _scalar(self, node: Node, ts: int) -> float:
        value = self.eval(node, ts)
        assert isinstance(value, Scalar)
        return value.value

    def _vector(self, node: Node, ts: int) -> Vector:
        value = self.eval(node, ts)
        assert isinstance(value, list)
        return value  # type: ignore[return-value]

    # -- operators -----------------------------------------------------------------
    def _unary(self, node: Unary, ts: int) -> Value:
        value = self.eval(node.expr, ts)
        if isinstance(value, Scalar):
            return Scalar(-value.value)
        out = [Sample(drop_name(s.labels), -s.value) for s in value]  # type: ignore[union-attr]
        return _unique(out)

    def _binary(self, node: Binary, ts: int) -> Value:
        lhs = self.eval(node.lhs, ts)
        rhs = self.eval(node.rhs, ts)
        op = node.op
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            value, keep = _elem(op, lhs.value, rhs.value)
            if op in COMPARISON_OPS:
                value = 1.0 if keep else 0.0
            return Scalar(value)
        if isinstance(rhs, Scalar):
            return self._vector_scalar(op, lhs, rhs.value, node.return_bool, swap=False)  # type: ignore[arg-type]
        if isinstance(lhs, Scalar):
            return self._vector_scalar(op, rhs, lhs.value, node.return_bool, swap=True)  # type: ignore[arg-type]
        matching = node.matching or VectorMatching()
        if op == "and":
            sigs = {_signature(s.labels, matching) for s in rhs}  # type: ignore[union-attr]
            return [s for s in lhs if _signature(s.labels, matching) in sigs]  # type: ignore[union-attr]
        if op == "unless":
            sigs = {_signature(s.labels, matching) for s in rhs}  # type: ignore[union-attr]
            return [s for s in lhs if _signature(s.labels, matching) not in sigs]  # type: ignore[union-attr]
        if op == "or":
            sigs = {_signature(s.labels, matching) for s in lhs}  # type: ignore[union-attr]
            extra = [s for s in rhs if _signature(s.labels, matching) not in sigs]  # type: ignore[union-attr]
            return list(lhs) + extra  # type: ignore[arg-type]
        return _unique(self._vector_vector(op, lhs, rhs, matching, node.return_bool))  # type: ignore[arg-type]

    @staticmethod
    def _vector_scalar(
        op: str, vec: Vector, scalar: float, return_bool: bool, swap: bool
    ) -> Vector:
        out: Vector = []
        for sample in vec:
            left, right = (scalar, sample.value) if swap else (sample.value, scalar)
            value, keep = _elem(op, left, right)
            if op in COMPARISON_OPS and swap:
                value = right  # a filter always returns the vector's own value
            if return_bool:
                value, keep = (1.0 if keep else 0.0), True
            if keep:
                labels = sample.labels
                if op in _DROP_NAME_OPS or return_bool:
                    labels = drop_name(labels)
                out.append(Sample(labels, value))
        return _unique(out)

    @staticmethod
    def _vector_vector(
        op: str, lhs: Vector, rhs: Vector, matching: VectorMatching, return_bool: bool
    ) -> Vector:
        if not lhs or not rhs:
            return []
        swapped = matching.card == "one-to-many"
        if swapped:
            lhs, rhs = rhs, lhs
        right_by_sig: dict[Labels, Sample] = {}
        for rs in rhs:
            sig = _signature(rs.labels, matching)
            if sig in right_by_sig:
                side = "left" if swapped else "right"
                raise EvalError(
                    f"found duplicate series for the match group {format_labels(sig)} on the "
                    f"{side} hand-side of the operation: [{format_labels(rs.labels)}, "
                    f"{format_labels(right_by_sig[sig].labels)}];many-to-many matching not "
                    "allowed: matching labels must be unique on one side"
                )
            right_by_sig[sig] = rs
        matched: dict[Labels, set[Labels]] = {}
        out: Vector = []
        for ls in lhs:
            sig = _signature(ls.labels, matching)
            rs = right_by_sig.get(sig)
            if rs is None:
                continue
            left, right = (rs.value, ls.value) if swapped else (ls.value, rs.value)
            value, keep = _elem(op, left, right)
            if return_bool:
                value = 1.0 if keep else 0.0
            elif not keep:
                continue
            labels = _result_labels(ls.labels, rs.labels, op, matching)
            if return_bool:
                labels = drop_name(labels)
            seen = matched.get(sig)
            if matching.card == "one-to-one":
                if seen is not None:
                    raise EvalError(
                        "multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)"
                    )
                matched[sig] = set()
            else:
                if seen is None:
                    seen = matched[sig] = set()
                elif labels in seen:
                    raise EvalError(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                    )
                seen.add(labels)
            out.append(Sample(labels, value))
        return out

    # -- aggregation ---------------------------------------------------------------
    def _aggregate(self, node: Aggregate, ts: int) -> Vector:
        vec = self._vector(node.expr, ts)
        grouping = set(node.grouping)
        if node.without:
            grouping.add("__name__")

        keys = self._group_keys
        node_id = id(node)
        groups: dict[Labels, list[Sample]] = {}
        for sample in vec:
            key = keys.get((node_id, sample.labels))
            if key is None:
                if node.without:
                    key = tuple(p for p in sample.labels if p[0] not in grouping)
                else:
                    key = tuple(p for p in sample.labels if p[0] in grouping)
                keys[(node_id, sample.labels)] = key
            groups.setdefault(key, []).append(sample)
        if node.op in ("topk", "bottomk"):
            k_value = self._scalar(node.param, ts)  # type: ignore[arg-type]
            return _top_bottom(node.op, k_value, groups)
        if node.op == "quantile":
            q = self._scalar(node.param, ts)  # type: ignore[arg-type]
            return [
                Sample(key, fn.quantile(q, [m.value for m in members]))
                for key, members in groups.items()
            ]
        return [Sample(key, _aggregate_values(node.op, members)) for key, members in groups.items()]

    # -- functions -----------------------------------------------------------------
    def _call(self, node: Call, ts: int) -> Value:
        name = node.func
        if name == "time":
            return Scalar(ts / 1000)
        if name == "vector":
            return [Sample((), self._scalar(node.args[0], ts))]
        if name == "timestamp":
            # A selector argument gives its samples' own times; anything else the
            # evaluation time.
            arg = _unparen(node.args[0])
            if isinstance(arg, VectorSelector):
                return [Sample(drop_name(lab), t / 1000) for lab, t, _v in self._newest(arg, ts)]
            return [Sample(drop_name(s.labels), ts / 1000) for s in self._vector(arg, ts)]
        if name == "absent":
            if self._vector(node.args[0], ts):
                return []
            return [Sample(_absent_labels(node.args[0]), 1.0)]
        if name in ("sort", "sort_desc"):
            # NaN last either way; ties keep their order.
            sign = 1.0 if name == "sort" else -1.0
            vec = self._vector(node.args[0], ts)
            return sorted(vec, key=lambda s: (math.isnan(s.value), sign * s.value))
        if name == "scalar":
            vec = self._vector(node.args[0], ts)
            return Scalar(vec[0].value if len(vec) == 1 else math.nan)
        if name in _RANGE_FUNCTIONS or name in ("predict_linear", "quantile_over_time"):
            return self._range_function(node, ts)
        if name == "label_replace":
            return self._label_replace(node, ts)
        if name == "histogram_quantile":
            return self._histogram_quantile(node, ts)
        vec = self._vector(node.args[0], ts)
        params = [self._scalar(arg, ts) for arg in node.args[1:]]
        if name == "clamp" and params[1] < params[0]:
            return []
        apply = _simple_function(name, params)
        return _unique([Sample(drop_name(s.labels), apply(s.value)) for s in vec])

    def _range_function(self, node: Call, ts: int) -> Vector:
        arg = node.args[1] if node.func == "quantile_over_time" else node.args[0]
        assert isinstance(arg, MatrixSelector | Subquery)
        pinned = arg if isinstance(arg, Subquery) else arg.selector
        at = self._at(pinned.at)
        end = (ts if at is None else at) - pinned.offset
        start = end - arg.range
        compute = _RANGE_FUNCTIONS.get(node.func)
        if node.func == "quantile_over_time":
            q = self._scalar(node.args[0], ts)

            def compute(_t: list[int], v: list[float], _start: int, _end: int) -> float | None:
                return fn.quantile(q, v)

        if node.func == "predict_linear":
            horizon = self._scalar(node.args[1], ts)

            def compute(t: list[int], v: list[float], _start: int, _end: int) -> float | None:
                if len(v) < 2:
                    return None
                slope, intercept = fn.linear_regression(t, v, ts)  # anchored at eval time
                return slope * horizon + intercept

        assert compute is not None
        keep_name = node.func == "last_over_time"
        out: Vector = []
        for series, lo, hi in self._windows(arg, ts):
            value = compute(series.t_list[lo:hi], series.v_list[lo:hi], start, end)
            if value is not None:
                out.append(Sample(series.labels if keep_name else series.nameless, value))
        return _unique(out)

    def _label_replace(self, node: Call, ts: int) -> Vector:
        vec = self._vector(node.args[0], ts)
        dst, replacement, src, pattern = (self._string(arg, ts) for arg in node.args[1:])
        try:
            regex = re.compile(f"^(?:{pattern})$", re.DOTALL)
        except re.error:
            raise EvalError(f"invalid regular expression in label_replace(): {pattern}") from None
        if not _LABEL_NAME_RE.fullmatch(dst):
            raise EvalError(f"invalid destination label name in label_replace(): {dst}")
        out: Vector = []
        for sample in vec:
            labels = dict(sample.labels)
            match = regex.match(labels.get(src, ""))
            if match:
                value = _go_expand(replacement, match)
                if value:
                    labels[dst] = value
                else:
                    labels.pop(dst, None)
            out.append(Sample(labels_of(labels), sample.value))
        return _unique(out)

    def _string(self, node: Node, ts: int) -> str:
        value = self.eval(node, ts)
        assert isinstance(value, String)
        return value.value

    def _histogram_quantile(self, node: Call, ts: int) -> Vector:
        q = self._scalar(node.args[0], ts)
        vec = self._vector(node.args[1], ts)
        histograms: dict[Labels, list[tuple[float, float]]] = {}
        for sample in vec:
            le = dict(sample.labels).get("le")
            if le is None:
                continue
            try:
                upper = float(le)
            except ValueError:
                continue
            key = tuple(p for p in sample.labels if p[0] not in ("le", "__name__"))
            histograms.setdefault(key, []).append((upper, sample.value))
        return [Sample(key, fn.bucket_quantile(q, b)) for key, b in histograms.items()]


# -- helpers -------------------------------------------------------------------------


def _elem(op: str, left: float, right: float) -> tuple[float, bool]:
    """One binary operation with Go/IEEE float semantics (x/0 = ±Inf, x%0 = NaN)."""
    a, b = np.float64(left), np.float64(right)
    if op == "+":
        return float(a + b), True
    if op == "-":
        return float(a - b), True
    if op == "*":
        return float(a * b), True
    if op == "/":
        return float(a / b), True
    if op == "%":
        return float(np.fmod(a, b)), True
    if op == "^":
        return float(np.power(a, b)), True
    if op == "==":
        return left, left == right
    if op == "!=":
        return left, left != right
    if op == ">":
        return left, left > right
    if op == "<":
        return left, left < right
    if op == ">=":
        return left, left >= right
    if op == "<=":
        return left, left <= right
    raise EvalError(f"operator {op!r} not allowed for this operation")


def _signature(labels: Labels, matching: VectorMatching) -> Labels:
    if matching.on:
        wanted = set(matching.labels)
        return tuple(p for p in labels if p[0] in wanted)
    ignored = set(matching.labels) | {"__name__"}
    return tuple(p for p in labels if p[0] not in ignored)


def _result_labels(lhs: Labels, rhs: Labels, op: str, matching: VectorMatching) -> Labels:
    """Labels of a vector/vector result, as Prometheus's ``resultMetric``: arithmetic drops
    the name; one-to-one keeps only ``on`` labels (or drops ``ignoring`` ones); group_x
    copies the listed labels from the "one" side."""
    labels = dict(lhs)
    if op in _DROP_NAME_OPS:
        labels.pop("__name__", None)
    if matching.card == "one-to-one":
        if matching.on:
            labels = {k: v for k, v in labels.items() if k in matching.labels}
        else:
            for name in matching.labels:
                labels.pop(name, None)
    one_side = dict(rhs)
    for name in matching.include:
        if one_side.get(name, ""):
            labels[name] = one_side[name]
        else:
            labels.pop(name, None)
    return labels_of(labels)


def _go_expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``; a missing
    group expands to nothing and ``$name`` takes the longest run of word characters."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if template.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        braced = _EXPAND_BRACED_RE.match(template, i)
        bare = _EXPAND_BARE_RE.match(template, i)
        found = braced or bare
        if found is None:
            out.append("$")
            i += 1
            continue
        name = found.group(1)
        try:
            group = match.group(int(name) if name.isdigit() else name)
        except IndexError:  # no such group
            group = None
        out.append(group or "")
        i = found.end()
    return "".join(out)


def _absent_labels(arg: Node) -> Labels:
    """``absent(sel{a="x", b=~"y"})`` answers ``{a="x"}``: labels fixed by a single
    equality matcher, as Prometheus does; nothing for any other expression."""
    if not isinstance(arg, VectorSelector):
        return ()
    fixed: dict[str, str] = {}
    dropped: set[str] = set()
    for matcher in arg.matchers:
        if matcher.name == "__name__":
            continue
        if matcher.op == "=" and matcher.name not in fixed:
            fixed[matcher.name] = matcher.value
        else:
            dropped.add(matcher.name)
    return labels_of({k: v for k, v in fixed.items() if k not in dropped})


def _unique(vec: Vector) -> Vector:
    seen: set[Labels] = set()
    for sample in vec:
        if sample.labels in seen:
            raise EvalError("vector cannot contain metrics with the same labelset")
        seen.add(sample.labels)
    return vec


def _aggregate_values(op: str, members: list[Sample]) -> float:
    values = [m.value for m in members]
    if op == "count":
        return float(len(values))
    if op == "group":
        return 1.0
    if op in ("stddev", "stdvar"):
        # Welford's running mean and sum of squared deviations.
        mean, squares = values[0], 0.0
        for count, v in enumerate(values[1:], start=2):
            delta = v - mean
            mean += delta / count
            squares += delta * (v - mean)
        variance = squares / len(values)
        return math.sqrt(variance) if op == "stddev" else variance
    if op == "sum":
        total = 0.0
        for v in values:
            total += v
        return total
    if op == "avg":
        mean = 0.0
        for count, v in enumerate(values, start=1):
            if math.isinf(mean):
                if math.isinf(v) and (mean > 0) == (v > 0):
                    continue
                if not math.isinf(v) and not math.isnan(v):
                    continue
            mean += v / count - mean / count
        return mean
    best = values[0]
    for v in values[1:]:
        better = v > best if op == "max" else v < best
        if better or math.isnan(best):
            best = v
    return best


def _top_bottom(op: str, k_value: float, groups: dict[Labels, list[Sample]]) -> Vector:
    if math.isnan(k_value) or k_value < 1:
        return []
    k = int(min(k_value, 2**31))
    out: Vector = []
    for members in groups.values():
        # NaN is never preferred, by either topk or bottomk.
        def rank(s: Sample) -> tuple[bool, float]:
            return (math.isnan(s.value), -s.value if op == "topk" else s.value)

        out.extend(sorted(members, key=rank)[:k])
    return out


def _simple_function(name: str, params: list[float]) -> Callable[[float], float]:
    if name == "abs":
        return abs
    if name == "ceil":
        return lambda v: float(np.ceil(v))
    if name == "floor":
        return lambda v: float(np.floor(v))
    if name == "exp":
        return lambda v: float(np.exp(v))
    if name == "ln":
        return lambda v: float(np.log(v))
    if name == "log2":
        return lambda v: float(np.log2(v))
    if name == "log10":
        return lambda v: float(np.log10(v))
    if name == "sqrt":
        return lambda v: float(np.sqrt(v))
    if name == "clamp_min":
        return lambda v: fn.go_max(v, params[0])
    if name == "clamp_max":
        return lambda v: fn.go_min(v, params[0])
    if name == "clamp":
        return lambda v: fn.go_max(params[0], fn.go_min(params[1], v))
    if name == "round":
        inverse = 1.0 / (params[0] if params else 1.0)
        return lambda v: float(np.floor(v * inverse + 0.5) / inverse)
    raise EvalError(f'function "{name}" is not implemented')


RangeFunction = Callable[[list[int], list[float], int, int], float | None]


def _rate_like(is_counter: bool, is_rate: bool) -> RangeFunction:
    def compute(t_ms: list[int], values: list[float], start: int, end: int) -> float | None:
        return fn.extrapolated_rate(
            t_ms, values, start, end, is_counter=is_counter, is_rate=is_rate
        )

    return compute


def _over_time(name: str) -> RangeFunction:
    return lambda _t, values, _start, _end: fn.over_time(name, values)


_RANGE_FUNCTIONS: dict[str, RangeFunction] = {
    "rate": _rate_like(is_counter=True, is_rate=True),
    "increase": _rate_like(is_counter=True, is_rate=False),
    "delta": _rate_like(is_counter=False, is_rate=False),
    "irate": lambda t, v, _a, _b: fn.instant_rate(t, v, is_rate=True),
    "idelta": lambda t, v, _a, _b: fn.instant_rate(t, v, is_rate=False),
    "changes": lambda _t, v, _a, _b: fn.changes(v),
    "stdvar_over_time": lambda _t, v, _a, _b: fn.variance_over_time(v),
    "stddev_over_time": lambda _t, v, _a, _b: math.sqrt(fn.variance_over_time(v)),
    "resets": lambda _t, v, _a, _b: fn.resets(v),
    "deriv": lambda t, v, _a, _b: fn.linear_regression(t, v, t[0])[0] if len(v) > 1 else None,
    **{
        name: _over_time(name)
        for name in (
            "avg_over_time",
            "min_over_time",
            "max_over_time",
            "sum_over_time",
            "count_over_time",
            "last_over_time",
        )
    },
}
