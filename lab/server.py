"""One loopback HTTP server for every lab API, routed by path like the real systems:

- ``/api/v1/{namespaces,pods,events,...}``, ``/apis/apps/v1/...``: Kubernetes
- ``/api/v1/*`` (the rest) and ``/metrics``: Prometheus (``lab.prometheus_api``)
- ``/loki/api/v1/*``: Loki;  ``/api/search``, ``/api/traces/<id>``: Tempo
- ``/lab/*``: the lab's control plane (faults, remediation, flags, ground truth)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from lab.alerts import WebhookSender
from lab.exposition import render as render_exposition
from lab.faults import DEFAULT_TARGETS, KINDS, FaultSpec
from lab.kube_api import KubernetesAPI
from lab.logs import LokiAPI
from lab.prometheus_api import PrometheusAPI
from lab.sim import Lab
from lab.traces import TempoAPI
from lab.tsdb import label_key

log = logging.getLogger(__name__)

Response = tuple[int, dict[str, str], bytes]
_K8S_CORE = {"namespaces", "pods", "events", "nodes", "services", "configmaps"}


def _json(status: int, payload: object) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


class LabServer:
    """Serves a ``Lab`` on 127.0.0.1; optionally ticks it live and posts alert webhooks."""

    def __init__(
        self, lab: Lab, port: int = 0, webhook_url: str | None = None, tick: float | None = None
    ) -> None:
        self.lab = lab
        self.kube = KubernetesAPI(lab.cluster)
        self.loki = LokiAPI(lab.logs, lab.clock)
        self.tempo = TempoAPI(lab.traces, lab.clock)
        self.prometheus = PrometheusAPI(lab.tsdb, now=lab.clock)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        lab.alerts.external_url = self.base_url
        self.webhooks = WebhookSender(webhook_url, lab.alerts) if webhook_url else None
        if self.webhooks is not None:
            lab.alerts.notify = self.webhooks
        self.tick = tick
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LabServer:
        t = threading.Thread(target=self.httpd.serve_forever, name="lab-http", daemon=True)
        t.start()
        self._threads.append(t)
        if self.webhooks is not None:
            firing = self.lab.alerts.firing()
            if firing:
                self.webhooks(firing, self.lab.clock())
        if self.tick:
            live = threading.Thread(target=self._live, name="lab-live", daemon=True)
            live.start()
            self._threads.append(live)
        return self

    def _live(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.lab.generate_until(self.lab.clock(), step=self.tick)
            except Exception:  # keep serving even if one tick fails
                log.exception("live tick failed")

    def inject_later(self, spec: str, after_s: float) -> None:
        def run() -> None:
            if not self._stop.wait(after_s):
                fault = self.lab.inject(spec)
                log.info("injected %s on %s (fault %d)", fault.kind, fault.service, fault.id)

        threading.Thread(target=run, name="lab-inject", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.webhooks is not None:
            self.webhooks.flush(2.0)
            self.webhooks.close()

    # -- routing --------------------------------------------------------------------------------
    def route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        headers: dict[str, str],
    ) -> Response:
        parts = [p for p in path.split("/") if p]
        ctype = headers.get("content-type", "application/json")
        if (
            parts[:1] == ["apis"]
            or (parts[:2] == ["api", "v1"] and len(parts) > 2 and parts[2] in _K8S_CORE)
            or path.rstrip("/") in ("/version", "/api", "/apis", "/api/v1")
        ):
            return self.kube.handle(method, path, query, body, ctype)
        if parts[:1] == ["loki"]:
            if method == "POST" and "form-urlencoded" in ctype:
                query = {**query, **parse_qs(body.decode(), keep_blank_values=True)}
            return self.loki.handle(method, path, query, body)
        if parts[:2] in (["api", "search"], ["api", "traces"], ["api", "echo"], ["api", "v2"]):
            return self.tempo.handle(method, path, query, body)
        if parts[:2] == ["api", "v1"] or path == "/metrics":
            return self._prometheus(method, path, query, body)
        if parts[:1] == ["lab"]:
            return self.control(method, parts[1:], query, body)
        if path in ("/ready", "/-/ready", "/-/healthy", "/healthz", "/readyz"):
            return 200, {"Content-Type": "text/plain"}, b"ready\n"
        return 404, {"Content-Type": "text/plain"}, b"404 page not found\n"

    def _prometheus(self, method: str, path: str, query: dict, body: bytes) -> Response:
        if path == "/metrics":
            # only what a scrape would see now: no series of pods gone for 5 minutes, and
            # no ALERTS (the lab's own rule state; a scraping Prometheus computes its own)
            now = self.lab.clock()
            stale = {label_key(lab) for lab, t, _ in self.lab.tsdb.latest() if t < now - 300}

            def current(labels: dict[str, str]) -> bool:
                return labels.get("__name__") != "ALERTS" and label_key(labels) not in stale

            text = render_exposition(self.lab.tsdb, only=current)
            return 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}, text.encode()
        return self.prometheus.handle(method, path, query, body)

    def control(self, method: str, parts: list[str], query: dict, body: bytes) -> Response:
        lab = self.lab
        try:
            data = json.loads(body) if body else {}
        except json.JSONDecodeError as exc:
            return _json(400, {"error": f"invalid JSON: {exc}"})
        try:
            if parts == ["faults"] and method == "GET":
                return _json(200, {"faults": lab.ground_truth(), "kinds": describe_kinds()})
            if parts == ["faults"] and method == "POST":
                kind = str(data.get("kind"))
                text = (
                    data.get("fault")
                    or f"{kind}:{data.get('service') or DEFAULT_TARGETS.get(kind, '')}"
                )
                spec = FaultSpec.parse(text)
                spec.peer = data.get("peer", spec.peer)
                spec.flag = data.get("flag")
                if "duration_s" in data:
                    spec.duration = float(data["duration_s"])
                fault = lab.inject(spec)
                return _json(201, fault.ground_truth(lab.estate[fault.service].replicas))
            if len(parts) == 2 and parts[0] == "faults" and method == "DELETE":
                fault = lab.clear(int(parts[1]), "manual")
                return _json(200, fault.ground_truth(lab.estate[fault.service].replicas))
            if parts == ["remediate"] and method == "POST":
                return _json(200, lab.remediate(data))
            if parts == ["flags"] and method == "POST":
                lab.set_flag(data["service"], data["flag"], bool(data.get("enabled", False)))
                return _json(200, {"service": data["service"], "flags": lab.flags[data["service"]]})
            if parts == ["flags"] and method == "GET":
                return _json(200, lab.flags)
            if parts == ["estate"]:
                return _json(200, lab.estate.to_dict())
            if parts == ["ground_truth"]:
                return _json(200, lab.ground_truth())
            if parts == ["alerts"]:
                return _json(200, lab.alerts.payloads(lab.alerts.firing()))
            if parts == ["status"]:
                return _json(
                    200,
                    {
                        "now": lab.clock(),
                        "series": len(lab.tsdb),
                        "samples": lab.samples,
                        "log_lines": lab.logs.count,
                        "traces": len(lab.traces.traces),
                    },
                )
        except (ValueError, KeyError, StopIteration) as exc:
            return _json(400, {"error": str(exc) or type(exc).__name__})
        return _json(404, {"error": "unknown lab endpoint"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                query = parse_qs(split.query, keep_blank_values=True)
                try:
                    status, out_headers, payload = server.route(
                        self.command, split.path, query, body, headers
                    )
                except Exception as exc:  # a bug must not kill the connection silently
                    log.exception("lab request failed: %s %s", self.command, self.path)
                    status, out_headers, payload = _json(500, {"error": repr(exc)})
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                log.debug("lab http: " + format, *args)

        return Handler


def describe_kinds() -> list[dict]:
    return [
        {
            "kind": k.name,
            "description": k.description,
            "remediation": k.action,
            "default_service": DEFAULT_TARGETS[k.name],
        }
        for k in KINDS.values()
    ]


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
