"""Log streams and the slice of Loki's HTTP API the product uses.

LogQL here: a stream selector ``{a="b", c=~"x.*"}`` followed by a pipeline of line filters
(``|= != |~ !~``), parsers (``| logfmt``, ``| json``) and label filters (``| status=~"5.."``,
``| duration_ms > 500``); metric queries ``count_over_time``/``rate``/``bytes_over_time`` over
such a selector, optionally inside ``sum|count|max|min|avg [by|without (labels)]``.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from lab.tsdb import Matcher

StreamKey = tuple[tuple[str, str], ...]


class LogQLError(ValueError):
    """A query Loki would reject with 400."""


@dataclass
class Stream:
    labels: dict[str, str]
    times: list[int] = field(default_factory=list)  # ns since the epoch, ascending
    lines: list[str] = field(default_factory=list)


class LogStore:
    """Append-mostly streams, each sorted by time; safe for one writer and many readers."""

    def __init__(self) -> None:
        self.streams: dict[StreamKey, Stream] = {}
        self.lock = threading.Lock()
        self.count = 0

    def append(self, labels: dict[str, str], entries: list[tuple[int, str]]) -> None:
        if not entries:
            return
        entries.sort(key=lambda e: e[0])
        key = tuple(sorted(labels.items()))
        with self.lock:
            stream = self.streams.get(key)
            if stream is None:
                stream = self.streams[key] = Stream(dict(labels))
            if stream.times and entries[0][0] < stream.times[-1]:
                merged = sorted(zip(stream.times, stream.lines, strict=True), key=lambda e: e[0])
                merged += entries
                merged.sort(key=lambda e: e[0])
                stream.times = [e[0] for e in merged]
                stream.lines = [e[1] for e in merged]
            else:
                stream.times.extend(e[0] for e in entries)
                stream.lines.extend(e[1] for e in entries)
            self.count += len(entries)

    def select(self, matchers: list[Matcher]) -> list[Stream]:
        with self.lock:
            streams = list(self.streams.values())
        return [s for s in streams if all(m.matches(s.labels.get(m.name, "")) for m in matchers)]


# -- LogQL -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<dur>\d+(?:ms|s|m|h|d))(?![\w])'
    r"|(?P<num>\d+(?:\.\d+)?)|(?P<op>\|=|\|~|!=|!~|=~|==|>=|<=|>|<|=|\||\{|\}|\(|\)|\[|\]|,)"
    r"|(?P<id>[A-Za-z_][\w.]*))"
)
_AGGREGATIONS = {"sum", "count", "max", "min", "avg"}
_RANGE_FUNCS = {"count_over_time", "rate", "bytes_over_time", "bytes_rate"}
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class LineFilter:
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op in ("|~", "!~"):
            try:
                self._re = re.compile(self.value)
            except re.error as exc:
                raise LogQLError(f"parse error : invalid regex {self.value!r}: {exc}") from exc

    def keep(self, line: str) -> bool:
        if self.op == "|=":
            return self.value in line
        if self.op == "!=":
            return self.value not in line
        hit = self._re.search(line) is not None
        return hit if self.op == "|~" else not hit


@dataclass
class Parser:
    """``| logfmt`` or ``| json``: extract labels from the line, as Loki does."""

    kind: str

    def extract(self, line: str, labels: dict[str, str]) -> dict[str, str]:
        found: dict[str, str] = {}
        if self.kind == "logfmt":
            for key, raw in _LOGFMT.findall(line):
                found[key] = json.loads(raw) if raw.startswith('"') else raw
        else:
            try:
                doc = json.loads(line)
            except ValueError:
                return {**labels, "__error__": "JSONParserErr"}
            if not isinstance(doc, dict):
                return {**labels, "__error__": "JSONParserErr"}
            found = _flatten(doc)
        out = dict(labels)
        for key, value in found.items():
            name = re.sub(r"[^A-Za-z0-9_]", "_", key)
            out[f"{name}_extracted" if name in labels else name] = str(value)
        return out


@dataclass
class LabelFilter:
    """``| name op value`` on stream and extracted labels; numbers compare numerically."""

    name: str
    op: str
    value: str | float

    def keep(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if isinstance(self.value, float):
            try:
                number = float(re.sub(r"(ms|s|m|h)$", "", actual))
            except ValueError:
                return False
            return {
                "=": number == self.value,
                "==": number == self.value,
                "!=": number != self.value,
                ">": number > self.value,
                ">=": number >= self.value,
                "<": number < self.value,
                "<=": number <= self.value,
            }[self.op]
        return Matcher(self.name, "=" if self.op == "==" else self.op, self.value).matches(actual)


def _flatten(doc: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in doc.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        elif not isinstance(value, list):
            out[name] = (
                ""
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
    return out


_LOGFMT = re.compile(r'([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


@dataclass
class LogQuery:
    matchers: list[Matcher]
    stages: list[LineFilter | Parser | LabelFilter]

    @property
    def simple(self) -> bool:
        """Only line filters: the stream's labels are the result's labels."""
        return all(isinstance(s, LineFilter) for s in self.stages)

    def keep(self, line: str) -> bool:
        return all(s.keep(line) for s in self.stages if isinstance(s, LineFilter))

    def apply(self, line: str, labels: dict[str, str]) -> dict[str, str] | None:
        """The labels a kept line carries after the pipeline, or None if dropped."""
        for stage in self.stages:
            if isinstance(stage, LineFilter):
                if not stage.keep(line):
                    return None
            elif isinstance(stage, Parser):
                labels = stage.extract(line, labels)
            elif not stage.keep(labels):
                return None
        return labels


@dataclass
class MetricQuery:
    func: str
    query: LogQuery
    range_s: float
    agg: str | None = None
    grouping: list[str] | None = None
    without: bool = False


def _unquote(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1]
    return json.loads(tok)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self.error(pos, f"unexpected character {text[pos]!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def error(self, pos: int, what: str) -> LogQLError:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return LogQLError(f"parse error at line {line}, col {col}: syntax error: {what}")

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "", len(self.text))

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        k, v, pos = self.peek()
        if (value is not None and v != value) or (kind is not None and k != kind) or k == "eof":
            want = value or kind or "token"
            got = v if k != "eof" else "end of input"
            raise self.error(pos, f"unexpected {got}, expecting {want}")
        self.i += 1
        return v

    def parse(self) -> LogQuery | MetricQuery:
        k, v, _ = self.peek()
        out: LogQuery | MetricQuery
        if k == "id" and v in _AGGREGATIONS:
            out = self.aggregation()
        elif k == "id" and v in _RANGE_FUNCS:
            out = self.range_func()
        else:
            out = self.log_query()
        if self.peek()[0] != "eof":
            _, v, pos = self.peek()
            raise self.error(pos, f"unexpected {v}")
        return out

    def aggregation(self) -> MetricQuery:
        agg = self.take(kind="id")
        grouping, without = None, False
        if self.peek()[1] in ("by", "without"):
            grouping, without = self.grouping()
        self.take("(")
        inner = self.range_func()
        self.take(")")
        if grouping is None and self.peek()[1] in ("by", "without"):
            grouping, without = self.grouping()
        inner.agg, inner.grouping, inner.without = agg, grouping or [], without
        return inner

    def grouping(self) -> tuple[list[str], bool]:
        without = self.take(kind="id") == "without"
        self.take("(")
        names = []
        while self.peek()[1] != ")":
            names.append(self.take(kind="id"))
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        return names, without

    def range_func(self) -> MetricQuery:
        func = self.take(kind="id")
        if func not in _RANGE_FUNCS:
            raise self.error(self.peek()[2], f"unknown function {func}")
        self.take("(")
        query = self.log_query(stop_at_range=True)
        self.take("[")
        dur = self.take(kind="dur")
        self.take("]")
        self.take(")")
        m = re.match(r"(\d+)(\w+)", dur)
        assert m is not None
        return MetricQuery(func, query, float(m.group(1)) * _UNITS[m.group(2)])

    def log_query(self, stop_at_range: bool = False) -> LogQuery:
        self.take("{")
        matchers = []
        while self.peek()[1] != "}":
            name = self.take(kind="id")
            _, op, pos = self.peek()
            if op not in ("=", "!=", "=~", "!~"):
                raise self.error(pos, f"unexpected {op or 'end of input'}, expecting = != =~ !~")
            self.i += 1
            value = _unquote(self.take(kind="str"))
            try:
                matcher = Matcher(name, op, value)
                if op in ("=~", "!~"):
                    matcher.matches("")
            except re.error as exc:
                raise self.error(pos, f"invalid regex {value!r}") from exc
            matchers.append(matcher)
            if self.peek()[1] == ",":
                self.take(",")
        self.take("}")
        if not any(m.op in ("=", "=~") and not m.matches("") for m in matchers):
            raise LogQLError(
                "parse error : queries require at least one regexp or equality matcher that "
                'does not have an empty-compatible value. For instance, app=~".*" does not '
                'meet this requirement, but app=~".+" will'
            )
        stages: list[LineFilter | Parser | LabelFilter] = []
        while self.peek()[1] in ("|=", "!=", "|~", "!~", "|"):
            op = self.take()
            if op != "|":
                stages.append(LineFilter(op, _unquote(self.take(kind="str"))))
                continue
            _, name, pos = self.peek()
            name = self.take(kind="id")
            if name in ("logfmt", "json"):
                stages.append(Parser(name))
                continue
            _, op, pos = self.peek()
            if op not in ("=", "!=", "=~", "!~", ">", ">=", "<", "<=", "=="):
                raise self.error(
                    pos, f"unexpected {op or 'end of input'}, expecting a label filter"
                )
            self.i += 1
            kind, raw, _ = self.peek()
            if kind == "str":
                stages.append(LabelFilter(name, op, _unquote(self.take())))
            elif kind in ("num", "dur"):
                self.take()
                stages.append(LabelFilter(name, op, float(re.sub(r"[a-z]+$", "", raw))))
            else:
                raise self.error(pos, f"unexpected {raw or 'end of input'}, expecting a value")
        return LogQuery(matchers, stages)


def parse_logql(text: str) -> LogQuery | MetricQuery:
    if not text.strip():
        raise LogQLError("parse error : syntax error: unexpected end of input")
    return _Parser(text).parse()


# -- the HTTP API -----------------------------------------------------------------------


def parse_time_ns(value: str) -> int:
    """Loki accepts ns (or s, with a fraction) epochs and RFC3339."""
    value = value.strip()
    if re.fullmatch(r"\d+", value):
        n = int(value)
        return n if n > 10**15 else n * 10**9
    if re.fullmatch(r"\d+\.\d*", value):
        return int(float(value) * 1e9)
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError as exc:
        raise LogQLError(f"invalid time {value!r}") from exc


def parse_step_s(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", value.strip())
    if not m:
        raise LogQLError(f"invalid step {value!r}")
    return float(m.group(1)) * _UNITS.get(m.group(2) or "s", 1)


class LokiAPI:
    def __init__(self, store: LogStore, now: Callable[[], float]) -> None:
        self.store = store
        self.now = now

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        args = {k: v[-1] for k, v in query.items() if v}
        try:
            if path.endswith("/query_range"):
                payload = self.query_range(args)
            elif path.endswith("/query"):
                payload = self.instant(args)
            elif path.endswith("/labels") or path.endswith("/label"):
                payload = {"status": "success", "data": self.label_names(args)}
            elif "/label/" in path and path.endswith("/values"):
                name = path.split("/label/", 1)[1].rsplit("/values", 1)[0]
                payload = {"status": "success", "data": self.label_values(name, args)}
            elif path.endswith("/series"):
                payload = {"status": "success", "data": self.series(query.get("match[]", []))}
            else:
                return 404, {"Content-Type": "text/plain"}, b"404 page not found\n"
        except LogQLError as exc:
            return 400, {"Content-Type": "text/plain; charset=utf-8"}, str(exc).encode()
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    def _window(self, args: dict[str, str], default_s: float = 3600) -> tuple[int, int]:
        end = parse_time_ns(args["end"]) if "end" in args else int(self.now() * 1e9)
        start = parse_time_ns(args["start"]) if "start" in args else end - int(default_s * 1e9)
        if "since" in args and "start" not in args:
            start = end - int(parse_step_s(args["since"]) * 1e9)
        if end < start:
            raise LogQLError("end timestamp must not be before or equal to start time")
        return start, end

    def query_range(self, args: dict[str, str]) -> dict:
        query = parse_logql(args.get("query", ""))
        start, end = self._window(args)
        limit = int(args.get("limit", "100"))
        if isinstance(query, MetricQuery):
            step = (
                parse_step_s(args["step"])
                if "step" in args
                else max(1.0, (end - start) / 1e9 / 250)
            )
            return self._matrix(query, start, end, step)
        return self._streams(query, start, end, limit, args.get("direction", "backward").lower())

    def instant(self, args: dict[str, str]) -> dict:
        query = parse_logql(args.get("query", ""))
        at = parse_time_ns(args["time"]) if "time" in args else int(self.now() * 1e9)
        if isinstance(query, MetricQuery):
            data = self._matrix(query, at, at, 1.0)
            data["data"]["resultType"] = "vector"
            data["data"]["result"] = [
                {"metric": r["metric"], "value": r["values"][-1]} for r in data["data"]["result"]
            ]
            return data
        start = at - int(3600 * 1e9)
        return self._streams(
            query, start, at, int(args.get("limit", "100")), args.get("direction", "backward")
        )

    @staticmethod
    def _stats(lines: int, nbytes: int) -> dict:
        return {
            "summary": {
                "bytesProcessedPerSecond": nbytes * 10,
                "linesProcessedPerSecond": lines * 10,
                "totalBytesProcessed": nbytes,
                "totalLinesProcessed": lines,
                "execTime": 0.1,
                "queueTime": 0.0,
                "subqueries": 0,
                "totalEntriesReturned": lines,
            },
            "querier": {"store": {"totalChunksRef": 0, "totalChunksDownloaded": 0}},
            "ingester": {"totalReached": 1, "totalChunksMatched": 0, "totalBatches": 0},
        }

    def _entries(
        self, query: LogQuery, start: int, end: int
    ) -> Iterator[tuple[Stream, list[int], list[str]]]:
        for stream in self.store.select(query.matchers):
            with self.store.lock:
                lo = bisect.bisect_left(stream.times, start)
                hi = bisect.bisect_left(stream.times, end)  # Loki: start <= t < end
                times, lines = stream.times[lo:hi], stream.lines[lo:hi]
            yield stream, times, lines

    def _streams(self, query: LogQuery, start: int, end: int, limit: int, direction: str) -> dict:
        if direction not in ("forward", "backward"):
            raise LogQLError(f"invalid direction {direction!r}")
        picked: list[tuple[int, tuple, str]] = []  # (ns, result labels, line)
        scanned = nbytes = 0
        for stream, times, lines in self._entries(query, start, end):
            scanned += len(lines)
            pairs = zip(times, lines, strict=True)
            if direction == "backward":
                pairs = reversed(list(pairs))
            stream_key = tuple(sorted(stream.labels.items()))
            taken = 0
            for t, line in pairs:
                if query.simple:
                    if not query.keep(line):
                        continue
                    key = stream_key
                else:  # parsed labels split a stream, as in Loki
                    labels = query.apply(line, stream.labels)
                    if labels is None:
                        continue
                    key = tuple(sorted(labels.items()))
                picked.append((t, key, line))
                nbytes += len(line)
                taken += 1
                if taken >= limit:
                    break
        picked.sort(key=lambda e: e[0], reverse=direction == "backward")
        picked = picked[:limit]
        by_stream: dict[tuple, list[list[str]]] = {}
        for t, key, line in picked:
            by_stream.setdefault(key, []).append([str(t), line])
        result = [{"stream": dict(k), "values": v} for k, v in by_stream.items()]
        return {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": result,
                "stats": self._stats(scanned, nbytes),
            },
        }

    def _matrix(self, q: MetricQuery, start: int, end: int, step_s: float) -> dict:
        step = int(step_s * 1e9)
        rng = int(q.range_s * 1e9)
        points = list(range(start, end + 1, step)) or [end]
        series: dict[tuple, dict] = {}
        groups: dict[tuple, list[tuple[int, int]]] = {}
        for stream, times, lines in self._entries(q.query, start - rng, end + 1):
            for t, line in zip(times, lines, strict=True):
                labels = q.query.apply(line, stream.labels)
                if labels is not None:
                    groups.setdefault(tuple(sorted(labels.items())), []).append((t, len(line)))
        for key, kept in groups.items():
            kept.sort()
            ts = [t for t, _ in kept]
            cum = [0]
            for _, n in kept:
                cum.append(cum[-1] + n)
            values = []
            for p in points:
                lo = bisect.bisect_right(ts, p - rng)
                hi = bisect.bisect_right(ts, p)
                if hi <= lo:
                    continue
                n = hi - lo if q.func in ("count_over_time", "rate") else cum[hi] - cum[lo]
                v = n / q.range_s if q.func in ("rate", "bytes_rate") else float(n)
                values.append((p, v))
            if values:
                series[key] = {
                    "labels": dict(key),
                    "values": values,
                }
        if q.agg is not None:
            series = self._aggregate(q, series)
        result = [
            {
                "metric": s["labels"],
                "values": [[_ts(p), _fmt(v)] for p, v in sorted(s["values"])],
            }
            for s in series.values()
        ]
        return {
            "status": "success",
            "data": {"resultType": "matrix", "result": result, "stats": self._stats(0, 0)},
        }

    @staticmethod
    def _aggregate(q: MetricQuery, series: dict[tuple, dict]) -> dict[tuple, dict]:
        groups: dict[tuple, dict[int, list[float]]] = {}
        labels_of: dict[tuple, dict[str, str]] = {}
        for s in series.values():
            if q.without:
                labels = {k: v for k, v in s["labels"].items() if k not in (q.grouping or [])}
            else:
                labels = {k: s["labels"][k] for k in q.grouping or [] if k in s["labels"]}
            key = tuple(sorted(labels.items()))
            labels_of[key] = labels
            for p, v in s["values"]:
                groups.setdefault(key, {}).setdefault(p, []).append(v)
        fn: dict[str, Callable[[list[float]], float]] = {
            "sum": sum,
            "count": len,
            "max": max,
            "min": min,
            "avg": lambda v: sum(v) / len(v),
        }
        agg = fn[q.agg or "sum"]
        return {
            key: {"labels": labels_of[key], "values": [(p, float(agg(v))) for p, v in pts.items()]}
            for key, pts in groups.items()
        }

    def _matchers_from(self, args: dict[str, str]) -> list[Matcher]:
        if "query" not in args:
            return []
        q = parse_logql(args["query"])
        return (q.query if isinstance(q, MetricQuery) else q).matchers

    def _live_streams(self, args: dict[str, str]) -> list[Stream]:
        start, end = self._window(args, default_s=6 * 3600)
        out = []
        for stream in self.store.select(self._matchers_from(args)):
            with self.store.lock:
                if stream.times and stream.times[0] <= end and stream.times[-1] >= start:
                    out.append(stream)
        return out

    def label_names(self, args: dict[str, str]) -> list[str]:
        return sorted({k for s in self._live_streams(args) for k in s.labels})

    def label_values(self, name: str, args: dict[str, str]) -> list[str]:
        return sorted({s.labels[name] for s in self._live_streams(args) if name in s.labels})

    def series(self, selectors: list[str]) -> list[dict[str, str]]:
        out: dict[tuple, dict[str, str]] = {}
        for sel in selectors or ['{service=~".+"}']:
            q = parse_logql(sel)
            matchers = (q.query if isinstance(q, MetricQuery) else q).matchers
            for s in self.store.select(matchers):
                out[tuple(sorted(s.labels.items()))] = s.labels
        return list(out.values())


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _ts(ns: int) -> float | int:
    return ns // 10**9 if ns % 10**9 == 0 else ns / 1e9
