"""Trace storage and the slice of Tempo's HTTP API the product uses: trace by id (OTLP
JSON, ids base64 as Tempo's protobuf-JSON marshalling gives them) and search by tags or a
basic TraceQL spanset filter.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS = {
    "server": "SPAN_KIND_SERVER",
    "client": "SPAN_KIND_CLIENT",
    "producer": "SPAN_KIND_PRODUCER",
    "consumer": "SPAN_KIND_CONSUMER",
    "internal": "SPAN_KIND_INTERNAL",
}


@dataclass
class Span:
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    service: str
    pod: str
    name: str
    kind: str  # server | client | producer | consumer | internal
    start_ns: int
    end_ns: int
    attrs: dict[str, str | int | float | bool] = field(default_factory=dict)
    error: bool = False
    message: str = ""

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def attr(self, scope: str, name: str) -> object:
        """A TraceQL attribute: ``resource.x``, ``span.x`` or ``.x`` (either)."""
        if scope in ("resource", ""):
            if name == "service.name":
                return self.service
            if name in ("k8s.pod.name", "host.name"):
                return self.pod
            if name == "k8s.namespace.name":
                return "prod"
        if scope in ("span", ""):
            return self.attrs.get(name)
        return None


@dataclass
class Trace:
    trace_id: bytes
    spans: list[Span]

    @property
    def root(self) -> Span:
        return next((s for s in self.spans if not s.parent_id), self.spans[0])

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_ns for s in self.spans)


class TraceStore:
    def __init__(self) -> None:
        self.traces: dict[bytes, Trace] = {}
        self._order: list[tuple[int, bytes]] = []  # (start ns, id), sorted
        self.lock = threading.Lock()
        self.span_count = 0

    def add(self, spans: list[Span]) -> None:
        trace = Trace(spans[0].trace_id, spans)
        with self.lock:
            self.traces[trace.trace_id] = trace
            bisect.insort(self._order, (trace.start_ns, trace.trace_id))
            self.span_count += len(spans)

    def get(self, trace_id: bytes) -> Trace | None:
        with self.lock:
            return self.traces.get(trace_id)

    def between(self, start_ns: int, end_ns: int) -> list[Trace]:
        with self.lock:
            lo = bisect.bisect_left(self._order, (start_ns, b""))
            hi = bisect.bisect_right(self._order, (end_ns, b"\xff" * 16))
            return [self.traces[i] for _, i in reversed(self._order[lo:hi])]


# -- TraceQL (spanset filters) ----------------------------------------------------------


class TraceQLError(ValueError):
    pass


_TQ_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<dur>\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))(?![\w.])'
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>&&|\|\||=~|!~|!=|>=|<=|=|>|<|\{|\}|\(|\))"
    r"|(?P<attr>(?:resource|span)?\.[\w.\-]+|[A-Za-z_][\w]*))"
)
_DUR_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_INTRINSICS = {
    "name",
    "status",
    "kind",
    "duration",
    "rootName",
    "rootServiceName",
    "traceDuration",
    "statusMessage",
}


def parse_duration_ns(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text.strip())
    if not m:
        raise TraceQLError(f"invalid duration {text!r}")
    return int(float(m.group(1)) * _DUR_NS[m.group(2)])


Cond = Callable[[Span, Trace], bool]


class _TQParser:
    """``{ a && (b || c) } && { d }``: spanset filters joined by && / || at trace level."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[tuple[str, str]] = []
        pos = 0
        while text[pos:].strip():
            m = _TQ_TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise TraceQLError(f"parse error at col {pos + 1}: unexpected {text[pos]!r}")
            kind = m.lastgroup or ""
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok[0] == "eof" or (value is not None and tok[1] != value):
            raise TraceQLError(
                f"parse error: expected {value or 'more input'}, got {tok[1] or 'end of query'}"
            )
        self.i += 1
        return tok

    def query(self) -> Callable[[Trace], list[Span] | None]:
        left = self.spanset()
        while self.peek()[1] in ("&&", "||"):
            op = self.take()[1]
            right = self.spanset()
            left = _combine(left, right, op)
        if self.peek()[0] != "eof":
            raise TraceQLError(f"parse error: unexpected {self.peek()[1]}")
        return left

    def spanset(self) -> Callable[[Trace], list[Span] | None]:
        self.take("{")
        cond: Cond = lambda s, t: True  # noqa: E731 - ``{}`` matches every span
        if self.peek()[1] != "}":
            cond = self.expr()
        self.take("}")

        def run(trace: Trace) -> list[Span] | None:
            spans = [s for s in trace.spans if cond(s, trace)]
            return spans or None

        return run

    def expr(self) -> Cond:
        left = self.term()
        while self.peek()[1] == "||":
            self.take()
            right = self.term()
            left = (lambda a, b: lambda s, t: a(s, t) or b(s, t))(left, right)
        return left

    def term(self) -> Cond:
        left = self.atom()
        while self.peek()[1] == "&&":
            self.take()
            right = self.atom()
            left = (lambda a, b: lambda s, t: a(s, t) and b(s, t))(left, right)
        return left

    def atom(self) -> Cond:
        if self.peek()[1] == "(":
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        kind, name = self.take()
        if kind != "attr":
            raise TraceQLError(f"parse error: expected an attribute, got {name}")
        op = self.take()[1]
        if op not in ("=", "!=", ">", ">=", "<", "<=", "=~", "!~"):
            raise TraceQLError(f"parse error: unexpected operator {op}")
        vkind, raw = self.take()
        value: object
        if vkind == "str":
            value = json.loads(raw)
        elif vkind == "dur":
            value = parse_duration_ns(raw)
        elif vkind == "num":
            value = float(raw)
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            value = raw  # status / kind enums: error, ok, unset, server, client...
        getter = _getter(name)
        return _compare(getter, op, value)


def _getter(name: str) -> Callable[[Span, Trace], object]:
    if name in _INTRINSICS:
        if name == "name":
            return lambda s, t: s.name
        if name == "status":
            return lambda s, t: "error" if s.error else "unset"
        if name == "statusMessage":
            return lambda s, t: s.message
        if name == "kind":
            return lambda s, t: s.kind
        if name == "duration":
            return lambda s, t: s.duration_ns
        if name == "rootName":
            return lambda s, t: t.root.name
        if name == "rootServiceName":
            return lambda s, t: t.root.service
        return lambda s, t: t.end_ns - t.start_ns
    if name.startswith("resource."):
        scope, attr = "resource", name[len("resource.") :]
    elif name.startswith("span."):
        scope, attr = "span", name[len("span.") :]
    elif name.startswith("."):
        scope, attr = "", name[1:]
    else:
        raise TraceQLError(f"parse error: unknown intrinsic {name}")
    return lambda s, t: s.attr(scope, attr)


def _compare(get: Callable[[Span, Trace], object], op: str, value: object) -> Cond:
    if op in ("=~", "!~"):
        pattern = re.compile(f"(?:{value})\\Z")

        def regex(s: Span, t: Trace) -> bool:
            v = get(s, t)
            hit = v is not None and pattern.match(str(v)) is not None
            return hit if op == "=~" else not hit

        return regex

    def cmp(s: Span, t: Trace) -> bool:
        v = get(s, t)
        if v is None:
            return op == "!="
        if isinstance(value, float) and not isinstance(v, bool):
            try:
                v = float(v)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
        elif isinstance(value, str):
            v = str(v)
        try:
            return {
                "=": v == value,
                "!=": v != value,
                ">": v > value,
                ">=": v >= value,  # type: ignore[operator]
                "<": v < value,
                "<=": v <= value,  # type: ignore[operator]
            }[op]
        except TypeError:
            return False

    return cmp


SpansetFn = Callable[[Trace], list[Span] | None]


def _combine(a: SpansetFn, b: SpansetFn, op: str) -> SpansetFn:
    def run(trace: Trace) -> list[Span] | None:
        x, y = a(trace), b(trace)
        if op == "&&":
            return (x + y) if x and y else None
        return (x or []) + (y or []) or None

    return run


def parse_traceql(text: str) -> Callable[[Trace], list[Span] | None]:
    return _TQParser(text).query()


def tags_filter(tags: str) -> Callable[[Trace], list[Span] | None]:
    """The older ``tags=`` search: logfmt ``key=value`` pairs that one span must all have."""
    pairs = re.findall(r'([\w.\-]+)=("(?:[^"\\]|\\.)*"|\S+)', tags)
    if tags.strip() and not pairs:
        raise TraceQLError(f"invalid tags {tags!r}")

    def span_ok(s: Span) -> bool:
        for key, raw in pairs:
            value = json.loads(raw) if raw.startswith('"') else raw
            if key == "error":
                if (value == "true") != s.error:
                    return False
            elif key in ("name", "span.name"):
                if s.name != value:
                    return False
            elif key == "status.code":
                if ("error" if s.error else "unset") != value:
                    return False
            elif str(s.attr("", key)) != value:
                return False
        return True

    def run(trace: Trace) -> list[Span] | None:
        return [s for s in trace.spans if span_ok(s)] or None

    return run


# -- OTLP JSON --------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _any_value(v: object) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _attrs(d: dict) -> list[dict]:
    return [{"key": k, "value": _any_value(v)} for k, v in d.items()]


def otlp_trace(trace: Trace) -> dict:
    batches: dict[tuple[str, str], list[Span]] = {}
    for s in trace.spans:
        batches.setdefault((s.service, s.pod), []).append(s)
    out = []
    for (service, pod), spans in batches.items():
        out.append(
            {
                "resource": {
                    "attributes": _attrs(
                        {
                            "service.name": service,
                            "service.namespace": "prod",
                            "k8s.namespace.name": "prod",
                            "k8s.pod.name": pod,
                            "telemetry.sdk.language": "python",
                        }
                    )
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.lab", "version": "0.48b0"},
                        "spans": [_otlp_span(s) for s in spans],
                    }
                ],
            }
        )
    return {"batches": out}


def _otlp_span(s: Span) -> dict:
    span = {
        "traceId": _b64(s.trace_id),
        "spanId": _b64(s.span_id),
        "name": s.name,
        "kind": KINDS[s.kind],
        "startTimeUnixNano": str(s.start_ns),
        "endTimeUnixNano": str(s.end_ns),
        "attributes": _attrs(s.attrs),
        "status": {"code": "STATUS_CODE_ERROR", "message": s.message} if s.error else {},
    }
    if s.parent_id:
        span["parentSpanId"] = _b64(s.parent_id)
    return span


class TempoAPI:
    def __init__(self, store: TraceStore, now: Callable[[], float]) -> None:
        self.store = store
        self.now = now

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        args = {k: v[-1] for k, v in query.items() if v}
        try:
            m = re.fullmatch(r"/api(/v2)?/traces/([0-9a-fA-F]+)", path)
            if m:
                return self.trace(m.group(2), v2=bool(m.group(1)))
            if path in ("/api/search", "/api/v2/search"):
                return self._json(self.search(args))
            if path in ("/api/search/tags", "/api/v2/search/tags"):
                return self._json(self.tags(v2="v2" in path))
            m = re.fullmatch(r"/api(/v2)?/search/tag/([^/]+)/values", path)
            if m:
                return self._json(self.tag_values(m.group(2), v2=bool(m.group(1))))
            if path == "/api/echo":
                return 200, {"Content-Type": "text/plain"}, b"echo"
        except TraceQLError as exc:
            return 400, {"Content-Type": "text/plain; charset=utf-8"}, str(exc).encode()
        except ValueError as exc:
            return (
                400,
                {"Content-Type": "text/plain; charset=utf-8"},
                f"invalid request: {exc}".encode(),
            )
        return 404, {"Content-Type": "text/plain"}, b"404 page not found\n"

    @staticmethod
    def _json(payload: dict) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    def trace(self, hex_id: str, v2: bool = False) -> tuple[int, dict[str, str], bytes]:
        if len(hex_id) > 32:
            return 400, {"Content-Type": "text/plain"}, b"invalid trace id"
        trace = self.store.get(bytes.fromhex(hex_id.rjust(32, "0")))
        if trace is None:
            return 404, {"Content-Type": "text/plain"}, f"trace not found: {hex_id}".encode()
        payload = otlp_trace(trace)
        return self._json({"trace": payload, "status": "COMPLETE"} if v2 else payload)

    def search(self, args: dict[str, str]) -> dict:
        now = self.now()
        end = float(args.get("end", now))
        start = float(args.get("start", end - 3600))
        limit = int(args.get("limit", "20"))
        spss = int(args.get("spss", "3"))
        if "q" in args and args["q"].strip():
            match = parse_traceql(args["q"])
        else:
            match = tags_filter(args.get("tags", ""))
        min_d = parse_duration_ns(args["minDuration"]) if args.get("minDuration") else 0
        max_d = parse_duration_ns(args["maxDuration"]) if args.get("maxDuration") else None
        found, inspected = [], 0
        for trace in self.store.between(int(start * 1e9), int(end * 1e9)):
            inspected += 1
            duration = trace.end_ns - trace.start_ns
            if duration < min_d or (max_d is not None and duration > max_d):
                continue
            spans = match(trace)
            if spans is None:
                continue
            found.append(self._summary(trace, spans, spss))
            if len(found) >= limit:
                break
        return {
            "traces": found,
            "metrics": {
                "inspectedTraces": inspected,
                "inspectedBytes": str(inspected * 2048),
                "completedJobs": 1,
                "totalJobs": 1,
            },
        }

    @staticmethod
    def _summary(trace: Trace, spans: list[Span], spss: int) -> dict:
        root = trace.root
        spanset = {
            "spans": [
                {
                    "spanID": s.span_id.hex(),
                    "name": s.name,
                    "startTimeUnixNano": str(s.start_ns),
                    "durationNanos": str(s.duration_ns),
                    "attributes": _attrs(
                        {"service.name": s.service, **({"status": "error"} if s.error else {})}
                    ),
                }
                for s in spans[:spss]
            ],
            "matched": len(spans),
        }
        return {
            "traceID": trace.trace_id.hex().lstrip("0") or "0",  # Tempo trims leading zeros
            "rootServiceName": root.service,
            "rootTraceName": root.name,
            "startTimeUnixNano": str(trace.start_ns),
            "durationMs": max(1, (trace.end_ns - trace.start_ns) // 1_000_000),
            "spanSet": spanset,
            "spanSets": [spanset],
        }

    def _all_tags(self) -> tuple[set[str], set[str]]:
        span_tags: set[str] = set()
        with self.store.lock:
            traces = list(self.store.traces.values())[-500:]
        for t in traces:
            for s in t.spans:
                span_tags.update(s.attrs)
        return {"service.name", "k8s.pod.name", "k8s.namespace.name"}, span_tags

    def tags(self, v2: bool = False) -> dict:
        resource, span = self._all_tags()
        if v2:
            return {
                "scopes": [
                    {"name": "resource", "tags": sorted(resource)},
                    {"name": "span", "tags": sorted(span)},
                ]
            }
        return {"tagNames": sorted(resource | span)}

    def tag_values(self, tag: str, v2: bool = False) -> dict:
        name = tag.split(".", 1)[1] if tag.startswith(("resource.", "span.")) else tag.lstrip(".")
        values: set[str] = set()
        with self.store.lock:
            traces = list(self.store.traces.values())[-2000:]
        for t in traces:
            for s in t.spans:
                v = s.attr("", name)
                if v is not None:
                    values.add(str(v))
        if v2:
            return {"tagValues": [{"type": "string", "value": v} for v in sorted(values)]}
        return {"tagValues": sorted(values)}
