"""A tiny loopback Loki that answers ``/loki/api/v1/query_range`` in the public format."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class StubLoki:
    """Entries are ``(ts_ns, line, labels)``; ``fail_status``/``delay_s`` simulate outages."""

    entries: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    fail_status: int | None = None
    delay_s: float = 0.0
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def answer(self, params: dict[str, str]) -> dict:
        start, end = int(params["start"]), int(params["end"])
        limit = int(params.get("limit", "100"))
        rows = [e for e in self.entries if start <= e[0] < end]
        rows.sort(key=lambda e: e[0], reverse=params.get("direction") == "backward")
        rows = rows[:limit]
        streams: dict[str, dict] = {}
        for ts, line, labels in rows:
            key = json.dumps(labels, sort_keys=True)
            streams.setdefault(key, {"stream": labels, "values": []})["values"].append(
                [str(ts), line]
            )
        return {
            "status": "success",
            "data": {"resultType": "streams", "result": list(streams.values())},
        }


@contextmanager
def serve(stub: StubLoki) -> Iterator[StubLoki]:
    """Run ``stub`` on 127.0.0.1 on a free port for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            stub.requests.append(params)
            if stub.delay_s:
                time.sleep(stub.delay_s)
            if url.path != "/loki/api/v1/query_range":
                self._send(404, {"status": "error", "error": "not found"})
            elif stub.fail_status:
                self._send(stub.fail_status, {"status": "error", "error": "boom"})
            else:
                self._send(200, stub.answer(params))

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
