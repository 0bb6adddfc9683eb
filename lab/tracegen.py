"""Trace generation: spans that follow the call graph, with latency and errors taken from
the model at that instant and propagated from callees to callers (timeouts included)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from lab.estate import Route, Service
from lab.kube import Pod
from lab.model import DEFAULT_TIMEOUT_MS, TIMEOUT_MS, poisson
from lab.traces import Span

if TYPE_CHECKING:
    from lab.sim import Lab

TRACES_PER_ROUTE_S = 1 / 15  # sampled traces per entry route per second
_DB_SYSTEMS = {
    "database": ("db.system", "postgresql"),
    "cache": ("db.system", "redis"),
    "queue": ("messaging.system", "rabbitmq"),
}


def generate_traces(lab: Lab, t: np.ndarray, dt: np.ndarray, rnd: random.Random) -> None:
    """Sampled traces for one grid: per entry route about one per 15 s, plus extra failing
    ones (tail sampling), spans following the call graph with the model's own effects."""
    own = {}
    for svc in lab.estate:
        for ri, route in enumerate(svc.routes):
            o = lab.model.own(svc, ri, t)
            own[(svc.name, route.key)] = (
                route.latency_ms * o["lat_mult"] + o["lat_add"],
                o["e500"],
                o["e503"],
                o["e504"],
            )
    edges = {}
    for svc in lab.estate:
        for callee in svc.depends_on:
            edges[(svc.name, callee)] = lab.model.edge(svc.name, callee, t)
    alive = {s.name: lab.cluster.pods_of(s.name) for s in lab.estate}
    builder = TraceBuilder(lab, own, edges, alive, rnd)
    for svc in lab.estate:
        for route in svc.routes:
            if route.entry_rps <= 0:
                continue
            for i in range(len(t)):
                lam = TRACES_PER_ROUTE_S * dt[i]
                n = poisson(rnd, lam)
                o = own[(svc.name, route.key)]
                if rnd.random() < lam and (o[1][i] + o[2][i] + o[3][i]) > 0.02:
                    n += 1  # tail sampling keeps more failing traces
                for _ in range(n):
                    at = t[i] - rnd.random() * dt[i]
                    spans = builder.trace(svc, route, i, at)
                    lab.traces.add(spans)


class TraceBuilder:
    """Builds one trace by walking a route's calls; errors and timeouts propagate up."""

    def __init__(
        self, lab: Lab, own: dict, edges: dict, pods: dict[str, list[Pod]], rnd: random.Random
    ) -> None:
        self.lab, self.own, self.edges, self.pods, self.rnd = lab, own, edges, pods, rnd

    def _id(self, n: int) -> bytes:
        return self.rnd.getrandbits(8 * n).to_bytes(n, "big")

    def _pod(self, service: str, at: float) -> str:
        alive = [p for p in self.pods[service] if p.alive(at)] or self.pods[service]
        return self.rnd.choice(alive).name

    def trace(self, svc: Service, route: Route, i: int, at: float) -> list[Span]:
        spans: list[Span] = []
        tid = self._id(16)
        self._server(svc, route, i, int(at * 1e9), b"", tid, spans, at)
        return spans

    def _server(
        self,
        svc: Service,
        route: Route,
        i: int,
        start: int,
        parent: bytes,
        tid: bytes,
        spans: list[Span],
        at: float,
    ) -> tuple[int, bool, int]:
        rnd = self.rnd
        lat, e500, e503, e504 = self.own[(svc.name, route.key)]
        own_ms = float(lat[i]) * rnd.lognormvariate(0, 0.4)
        sid = self._id(8)
        pod = self._pod(svc.name, at)
        u = rnd.random()
        code, error, message = (201 if route.method == "POST" else 200), False, ""
        if u < e500[i]:
            code, error, message = 500, True, "unhandled exception"
        elif u < e500[i] + e503[i]:
            code, error, message = 503, True, "service unavailable"
        elif u < e500[i] + e503[i] + e504[i]:
            code, error, message = 504, True, "deadline exceeded"
        cursor = start + int(own_ms * 0.3e6)
        timeout = TIMEOUT_MS.get(svc.tier, DEFAULT_TIMEOUT_MS)
        for call in route.calls:
            callee = self.lab.estate[call.service]
            croute = callee.route(call.route)
            edge_lat, edge_err = self.edges[(svc.name, callee.name)]
            cid = self._id(8)
            c_start = cursor
            attrs: dict = {"peer.service": callee.name}
            if callee.tier == "data":
                clat, c500, c503, c504 = self.own[(callee.name, croute.key)]
                dur_ms = float(clat[i]) * rnd.lognormvariate(0, 0.4) + float(edge_lat[i])
                failed = rnd.random() < float(c500[i] + c503[i] + c504[i] + edge_err[i])
                system = _DB_SYSTEMS.get(callee.name, ("db.system", callee.name))
                attrs[system[0]] = system[1]
                attrs["db.operation" if system[0] == "db.system" else "messaging.operation"] = (
                    croute.method if callee.name != "queue" else croute.path.split()[0].lower()
                )
                kind = (
                    "producer"
                    if croute.method == "AMQP" and croute.path.startswith("PUBLISH")
                    else "client"
                )
                name = croute.path
                sub_code = 0
            else:
                sub_end, sub_err, sub_code = self._server(
                    callee, croute, i, c_start + 200_000, cid, tid, spans, at
                )
                dur_ms = (sub_end - c_start) / 1e6 + 0.4 + float(edge_lat[i])
                failed = sub_err or rnd.random() < float(edge_err[i])
                kind, name = "client", f"{croute.method} {croute.path}"
                attrs.update(
                    {
                        "http.method": croute.method,
                        "http.request.method": croute.method,
                        "http.url": f"http://{callee.name}.prod.svc:8080{croute.path}",
                        "server.address": f"{callee.name}.prod.svc",
                    }
                )
            timed_out = dur_ms > timeout
            if timed_out:
                dur_ms, failed = timeout, True
            c_end = c_start + int(dur_ms * 1e6)
            if kind == "client" and callee.tier != "data":
                status = (
                    504 if timed_out else (sub_code if sub_err else 503 if failed else sub_code)
                )
                attrs["http.status_code"] = status
                attrs["http.response.status_code"] = status
            msg = (
                "context deadline exceeded"
                if timed_out
                else (f"{callee.name} call failed" if failed else "")
            )
            spans.append(
                Span(tid, cid, sid, svc.name, pod, name, kind, c_start, c_end, attrs, failed, msg)
            )
            if failed and not error and rnd.random() < call.weight:
                code, error = (504 if timed_out else 503), True
                message = f"upstream {callee.name} failed"
            cursor = c_end + int(rnd.uniform(0.05, 0.3) * 1e6)
        end = cursor + int(own_ms * 0.7e6)
        kind = "consumer" if route.method == "CONSUME" else "server"
        attrs = {
            "http.method": route.method,
            "http.request.method": route.method,
            "http.route": route.path,
            "http.status_code": code,
            "http.response.status_code": code,
            "k8s.pod.name": pod,
        }
        if kind == "consumer":
            attrs = {
                "messaging.system": "rabbitmq",
                "messaging.destination.name": route.path,
                "messaging.operation": "process",
            }
        name = f"{route.method} {route.path}" if kind == "server" else f"{route.path} process"
        spans.append(
            Span(tid, sid, parent, svc.name, pod, name, kind, start, end, attrs, error, message)
        )
        return end, error, code
