"""The Prometheus HTTP API (``/api/v1/...``) over the lab's TSDB, byte-compatible in the
parts clients read: response envelopes, value and timestamp formatting, error types and
HTTP status codes, parameter parsing (RFC3339 or unix seconds, durations or seconds).

``PrometheusAPI.handle`` is framework-free so the lab's single server can mount it;
``serve`` is a small standalone server (API plus ``/metrics``) for tests.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

from lab import exposition
from lab.promql import Engine, PromQLError, RangeSeries
from lab.promql.engine import DEFAULT_SUBQUERY_STEP_MS, LOOKBACK_DELTA_MS, Labels, Sample
from lab.promql.lexer import parse_duration
from lab.promql.parser import parse, parse_metric_selector
from lab.tsdb import TSDB, Matcher

JSON_HEADERS = {"Content-Type": "application/json"}
MAX_POINTS = 11_000
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RFC3339_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE
)
# Prometheus's boundary times (what it uses when start/end are omitted), in ms.
MIN_TIME_MS = -9223309901257974
MAX_TIME_MS = 9223309901257974
_STATUS = {"bad_data": 400, "execution": 422, "internal": 500, "not_found": 404}

BUILD_INFO = {
    "version": "2.42.0",
    "revision": "reliability-studio-lab",
    "branch": "lab",
    "buildUser": "lab",
    "buildDate": "20260101-00:00:00",
    "goVersion": "go1.21",
}


class APIError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _invalid(param: str, message: str) -> APIError:
    return APIError("bad_data", f'invalid parameter "{param}": {message}')


# -- formatting ----------------------------------------------------------------------


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: Go's ``FormatFloat(v, 'f', -1, 64)``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return np.format_float_positional(value, unique=True, trim="-")


def format_timestamp(t_ms: int) -> str:
    """Milliseconds as seconds with up to three decimals, e.g. ``1435781451.781``."""
    sign = "-" if t_ms < 0 else ""
    t_ms = abs(t_ms)
    whole, fraction = divmod(t_ms, 1000)
    return f"{sign}{whole}.{fraction:03d}" if fraction else f"{sign}{whole}"


def _json_seconds(t_ms: int) -> str:
    """Scalar and string results carry ``t / 1000`` as a plain JSON float (shortest form:
    ``1.18``, ``2``), unlike vector/matrix points, which always print three decimals."""
    return np.format_float_positional(t_ms / 1000, unique=True, trim="-")


def _labels_json(labels: Labels) -> str:
    return json.dumps(dict(labels), separators=(",", ":"), ensure_ascii=False)


def _point(t_ms: int, value: float) -> str:
    return f'[{format_timestamp(t_ms)},"{format_value(value)}"]'


def _vector_json(samples: list[Sample], t_ms: int) -> str:
    rows = [
        f'{{"metric":{_labels_json(s.labels)},"value":{_point(t_ms, s.value)}}}' for s in samples
    ]
    return "[" + ",".join(rows) + "]"


def _matrix_json(series: list[RangeSeries]) -> str:
    rows = []
    for s in series:
        points = ",".join(_point(int(t), float(v)) for t, v in zip(s.t_ms, s.values, strict=True))
        rows.append(f'{{"metric":{_labels_json(s.labels)},"values":[{points}]}}')
    return "[" + ",".join(rows) + "]"


def _success(data_json: str) -> tuple[int, dict[str, str], bytes]:
    return 200, dict(JSON_HEADERS), f'{{"status":"success","data":{data_json}}}'.encode()


def _error(err: APIError) -> tuple[int, dict[str, str], bytes]:
    body = {"status": "error", "errorType": err.error_type, "error": str(err)}
    return _STATUS.get(err.error_type, 400), dict(JSON_HEADERS), json.dumps(body).encode()


# -- parameter parsing -----------------------------------------------------------------


def parse_time(text: str) -> int:
    """Unix seconds (fractions rounded to ms) or RFC3339, as Prometheus's ``parseTime``."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None and math.isfinite(seconds):
        whole = math.trunc(seconds)
        return whole * 1000 + round((seconds - whole) * 1000)
    match = _RFC3339_RE.fullmatch(text.strip())
    if match:
        base, fraction, zone = match.groups()
        zone = "+00:00" if zone.upper() == "Z" else zone
        try:
            moment = datetime.fromisoformat(base + zone)
        except ValueError:
            moment = None
        if moment is not None:
            ms = int(moment.timestamp()) * 1000
            if fraction:
                ms += int(fraction[1:].ljust(9, "0")) // 1_000_000
            return ms
    if text == "-292273086-05-16T16:47:06Z":
        return MIN_TIME_MS
    if text == "292277025-08-17T07:12:55.807Z":
        return MAX_TIME_MS
    raise ValueError(f'cannot parse "{text}" to a valid timestamp')


def parse_duration_param(text: str) -> int:
    """Seconds (float) or a Prometheus duration, in milliseconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or abs(seconds) * 1e9 > 2**63:
            raise ValueError(f'cannot parse "{text}" to a valid duration. It overflows int64')
        return int(seconds * 1000)
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f'cannot parse "{text}" to a valid duration') from None


class PrometheusAPI:
    """Request handling for the Prometheus HTTP API routes the product and Grafana use."""

    def __init__(
        self,
        tsdb: TSDB,
        now: Callable[[], float] = time.time,
        lookback_delta_ms: int = LOOKBACK_DELTA_MS,
        evaluation_interval_ms: int = DEFAULT_SUBQUERY_STEP_MS,
    ) -> None:
        """``evaluation_interval_ms`` plays Prometheus's global ``evaluation_interval``:
        the step of subqueries written without one (``x[10m:]``)."""
        self.tsdb = tsdb
        self.now = now
        self.engine = Engine(tsdb, lookback_delta_ms, evaluation_interval_ms)

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body). POST bodies are form-encoded and,
        like Go's ``FormValue``, take precedence over the URL's query string."""
        method = method.upper()
        if "?" in path:
            path, _, raw = path.partition("?")
            query = {**parse_qs(raw, keep_blank_values=True), **query}
        form: dict[str, list[str]] = {}
        if method == "POST" and body:
            try:
                form = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                return _error(APIError("bad_data", "request body is not valid form data"))
        params = {k: form.get(k, []) + query.get(k, []) for k in {*form, *query}}
        route = self._route(path)
        if route is None:
            return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"
        handler, methods, arg = route
        if method not in methods:
            return 405, {"Content-Type": "text/plain; charset=utf-8"}, b"Method Not Allowed\n"
        try:
            return _success(handler(params, arg) if arg is not None else handler(params))
        except APIError as err:
            return _error(err)
        except RecursionError:
            return _error(APIError("bad_data", "query is nested too deeply"))
        except Exception as exc:  # a server answers, even about its own bugs
            return _error(APIError("internal", f"{type(exc).__name__}: {exc}"))

    def _route(self, path: str) -> tuple[Callable[..., str], tuple[str, ...], str | None] | None:
        both = ("GET", "POST")
        routes: dict[str, tuple[Callable[..., str], tuple[str, ...]]] = {
            "/api/v1/query": (self._query, both),
            "/api/v1/query_range": (self._query_range, both),
            "/api/v1/series": (self._series, both),
            "/api/v1/labels": (self._labels, both),
            "/api/v1/status/buildinfo": (self._buildinfo, ("GET",)),
            "/api/v1/metadata": (self._metadata, ("GET",)),
        }
        if path in routes:
            handler, methods = routes[path]
            return handler, methods, None
        match = re.fullmatch(r"/api/v1/label/([^/]+)/values", path)
        if match:
            return self._label_values, ("GET",), match.group(1)
        return None

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _first(params: dict[str, list[str]], name: str) -> str:
        values = params.get(name)
        return values[0] if values else ""

    def _time_param(self, params: dict[str, list[str]], name: str, default: int) -> int:
        text = self._first(params, name)
        if text == "":
            return default
        try:
            return parse_time(text)
        except ValueError as exc:
            raise _invalid(name, str(exc)) from None

    def _now_ms(self) -> int:
        return round(self.now() * 1000)

    def _matcher_sets(self, values: list[str]) -> list[list[Matcher]]:
        sets = []
        for text in values:
            try:
                sets.append(parse_metric_selector(text))
            except PromQLError as exc:
                raise _invalid("match[]", str(exc)) from None
        return sets

    def _matching_labels(self, params: dict[str, list[str]]) -> list[dict[str, str]]:
        start = self._time_param(params, "start", MIN_TIME_MS)
        end = self._time_param(params, "end", MAX_TIME_MS)
        sets = self._matcher_sets(params.get("match[]", [])) or [[]]
        seen: dict[tuple, dict[str, str]] = {}
        for matchers in sets:
            for labels in self.tsdb.series_labels(matchers, start / 1000, end / 1000):
                seen.setdefault(tuple(sorted(labels.items())), labels)
        return [seen[k] for k in sorted(seen)]

    # -- endpoints ----------------------------------------------------------------------
    def _query(self, params: dict[str, list[str]]) -> str:
        t_ms = self._time_param(params, "time", self._now_ms())
        try:
            node = parse(self._first(params, "query"))
        except PromQLError as exc:
            raise _invalid("query", str(exc)) from None
        try:
            result = self.engine.instant_query(node, t_ms)
        except PromQLError as exc:
            raise APIError(exc.error_type, str(exc)) from None
        value = result.value
        if result.result_type == "vector":
            data = _vector_json(value, t_ms)  # type: ignore[arg-type]
        elif result.result_type == "matrix":
            data = _matrix_json(value)  # type: ignore[arg-type]
        elif result.result_type == "scalar":
            seconds = _json_seconds(t_ms)
            data = f'[{seconds},"{format_value(value.value)}"]'  # type: ignore[union-attr]
        else:
            data = f"[{_json_seconds(t_ms)},{json.dumps(value.value)}]"  # type: ignore[union-attr]
        return f'{{"resultType":"{result.result_type}","result":{data}}}'

    def _query_range(self, params: dict[str, list[str]]) -> str:
        start = self._time_param_required(params, "start")
        end = self._time_param_required(params, "end")
        if end < start:
            raise _invalid("end", "end timestamp must not be before start time")
        try:
            step = parse_duration_param(self._first(params, "step"))
        except ValueError as exc:
            raise _invalid("step", str(exc)) from None
        if step <= 0:
            raise _invalid(
                "step",
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer",
            )
        if (end - start) // step > MAX_POINTS:
            raise APIError(
                "bad_data",
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)",
            )
        try:
            # Unlike /query, Prometheus 2.42 reports range-query parse errors unprefixed.
            node = parse(self._first(params, "query"))
        except PromQLError as exc:
            raise APIError("bad_data", str(exc)) from None
        try:
            matrix = self.engine.range_query(node, start, end, step)
        except PromQLError as exc:
            raise APIError(exc.error_type, str(exc)) from None
        return f'{{"resultType":"matrix","result":{_matrix_json(matrix)}}}'

    def _time_param_required(self, params: dict[str, list[str]], name: str) -> int:
        try:
            return parse_time(self._first(params, name))
        except ValueError as exc:
            raise _invalid(name, str(exc)) from None

    def _series(self, params: dict[str, list[str]]) -> str:
        if not params.get("match[]"):
            raise APIError("bad_data", "no match[] parameter provided")
        return json.dumps(self._matching_labels(params), separators=(",", ":"), ensure_ascii=False)

    def _labels(self, params: dict[str, list[str]]) -> str:
        names = sorted({name for labels in self._matching_labels(params) for name in labels})
        return json.dumps(names, separators=(",", ":"), ensure_ascii=False)

    def _label_values(self, params: dict[str, list[str]], name: str) -> str:
        if not _LABEL_NAME_RE.fullmatch(name):
            raise APIError("bad_data", f'invalid label name: "{name}"')
        values = sorted(
            {labels[name] for labels in self._matching_labels(params) if name in labels}
        )
        return json.dumps(values, separators=(",", ":"), ensure_ascii=False)

    def _metadata(self, params: dict[str, list[str]]) -> str:
        """Types inferred from names as ``exposition`` declares them; no help or unit text."""
        names = set(self.tsdb.label_values("__name__"))
        families = exposition.metric_families(names)
        wanted = self._first(params, "metric")
        limit_text = self._first(params, "limit")
        try:
            limit = int(limit_text) if limit_text else -1
        except ValueError:
            raise APIError("bad_data", "limit must be a number") from None
        data: dict[str, list[dict[str, str]]] = {}
        for family, kind in families.items():
            if wanted and family != wanted:
                continue
            if 0 <= limit <= len(data):
                break
            data[family] = [{"type": kind, "help": "", "unit": ""}]
        return json.dumps(data, separators=(",", ":"))

    def _buildinfo(self, params: dict[str, list[str]]) -> str:
        return json.dumps(BUILD_INFO, separators=(",", ":"))


# -- standalone server -------------------------------------------------------------------


def metrics_response(tsdb: TSDB, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
    """``/metrics`` (exporter mode): every series, or with ``?target=<pod>`` only the series
    whose ``pod`` label is that pod, so Prometheus can scrape one target per pod."""
    targets = query.get("target")
    only = None
    if targets:
        wanted = targets[0]

        def only(labels: dict[str, str]) -> bool:
            return labels.get("pod") == wanted

    text = exposition.render(tsdb, only=only)
    return 200, {"Content-Type": exposition.CONTENT_TYPE}, text.encode()


def serve(
    tsdb: TSDB,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api: PrometheusAPI | None = None,
    on_scrape: Callable[[], None] | None = None,
) -> tuple[ThreadingHTTPServer, str]:
    """Serve the API and ``/metrics`` on ``host:port`` (0 = a free port) in a daemon
    thread; returns (server, base URL). Stop with ``server.shutdown(); server.server_close()``.
    ``on_scrape`` runs before each ``/metrics`` answer (tests use it to observe scrapes)."""
    prometheus = api or PrometheusAPI(tsdb)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if parts.path == "/metrics" and method == "GET":
                if on_scrape is not None:
                    on_scrape()
                status, headers, payload = metrics_response(tsdb, query)
            elif parts.path in ("/-/ready", "/-/healthy") and method == "GET":
                status, headers, payload = 200, {"Content-Type": "text/plain"}, b"OK\n"
            else:
                status, headers, payload = prometheus.handle(method, parts.path, query, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests and the lab log elsewhere."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="lab-prometheus", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    return server, f"http://{bound_host}:{bound_port}"
