"""Log line templates: a normal mix per service plus the lines each fault makes.

Lines are logfmt for the application services and the native formats of PostgreSQL,
Redis and RabbitMQ for the data tier, with variable ids, durations, IPs and paths so log
pattern mining has real work to do.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime

from lab.estate import Route, Service

_FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
_PY_ERRORS = [
    ("TypeError", "'NoneType' object is not subscriptable", 'amount = payload["amount"]["value"]'),
    ("KeyError", "'currency'", 'currency = order["currency"]'),
    ("AttributeError", "'dict' object has no attribute 'sku'", "skus = [i.sku for i in items]"),
]


@functools.lru_cache(maxsize=65536)
def _second(s: int) -> str:
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso(ns: int) -> str:
    """RFC 3339 with milliseconds; cached per second because it runs for every line."""
    s, rest = divmod(ns, 1_000_000_000)
    return f"{_second(s)}.{rest // 1_000_000:03d}Z"


class LineMaker:
    """Renders lines for one service; ``rnd`` is seeded per chunk so output is reproducible."""

    def __init__(self, service: Service, rnd: random.Random) -> None:
        self.svc = service
        self.rnd = rnd

    # -- variable fields ------------------------------------------------------------------
    def _ip(self) -> str:
        bits = self.rnd.getrandbits(24)
        return f"10.{bits & 3}.{(bits >> 2) & 255}.{(bits >> 10) % 253 + 2}"

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.rnd.randint(10000, 999999)}"

    def _trace(self) -> str:
        return f"{self.rnd.getrandbits(128):032x}"

    def _path(self, route: Route) -> str:
        path = route.path
        if path.endswith("/products") and self.rnd.random() < 0.6:
            return f"{path}/{self.rnd.randint(1000, 99999)}"
        if path.endswith("/search"):
            return f"{path}?q={self.rnd.choice(['shoes', 'lamp', 'desk', 'sofa', 'mug'])}"
        return path

    # -- normal traffic ---------------------------------------------------------------------
    def access(self, ns: int, route: Route, latency_ms: float) -> tuple[str, str]:
        r = self.rnd
        dur = latency_ms * r.lognormvariate(0, 0.5)
        tier = self.svc.tier
        if self.svc.name == "database":
            return "info", (
                f"{iso(ns)[:-1].replace('T', ' ')} UTC [{r.randint(100, 9999)}] LOG:  duration: "
                f"{dur:.3f} ms  statement: {route.path.split()[0]} * FROM "
                f"{route.path.split()[-1]} WHERE id = {r.randint(1, 99999)}"
            )
        if self.svc.name == "cache":
            if r.random() < 0.5:
                return (
                    "info",
                    f"1:M {self._redis_time(ns)} * {r.randint(1, 90)} changes in 60 seconds. "
                    "Saving...",
                )
            return "info", f"1:M {self._redis_time(ns)} * DB saved on disk"
        if self.svc.name == "queue":
            return "info", (
                f"{iso(ns)[:-1].replace('T', ' ')}+00:00 [info] <0.{r.randint(100, 999)}.0> "
                f"accepting AMQP connection {self._ip()}:{r.randint(30000, 60000)} -> "
                "10.42.0.30:5672"
            )
        if tier == "support":
            return "info", (
                f'ts={iso(ns)} level=info msg="notification sent" order_id={self._id("ord")} '
                f"channel={r.choice(['email', 'push'])} duration_ms={dur:.1f} "
                f"trace_id={self._trace()}"
            )
        status = 201 if route.method == "POST" else 200
        return "info", (
            f'ts={iso(ns)} level=info msg="request completed" method={route.method} '
            f"path={self._path(route)} status={status} duration_ms={dur:.1f} "
            f"client_ip={self._ip()} user_id={self._id('u')} trace_id={self._trace()}"
        )

    def background(self, ns: int) -> tuple[str, str]:
        r = self.rnd
        if self.svc.tier == "data":
            return self.access(ns, self.svc.routes[0], 1.0)
        msg = r.choice(
            [
                f'level=debug msg="cache refreshed" entries={r.randint(100, 5000)}',
                f'level=info msg="health check ok" uptime_s={r.randint(60, 900000)}',
                f'level=info msg="config reloaded" version={self.svc.version}',
                f'level=warn msg="slow client" client_ip={self._ip()} '
                f"write_ms={r.randint(200, 900)}",
            ]
        )
        level = msg.split()[0].split("=")[1]
        return ("info" if level == "debug" else level), f"ts={iso(ns)} {msg}"

    @staticmethod
    def _redis_time(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%d %b %Y %H:%M:%S.%f")[:-3]

    # -- failures ---------------------------------------------------------------------------------
    def error(
        self, ns: int, route: Route, code: int, cause: str, upstream: str | None, version: str
    ) -> tuple[str, str]:
        r = self.rnd
        head = f"ts={iso(ns)} level=error"
        where = (
            f"method={route.method} path={self._path(route)} status={code} trace_id={self._trace()}"
        )
        if self.svc.name == "cache":
            return (
                "error",
                f"1:M {self._redis_time(ns)} # Error accepting a client connection: connection "
                f"refused (maxclients reached: {r.randint(10000, 10100)})",
            )
        if self.svc.name == "database":
            return (
                "error",
                f"{iso(ns)[:-1].replace('T', ' ')} UTC [{r.randint(100, 9999)}] ERROR:  "
                "canceling statement due to statement timeout",
            )
        if self.svc.name == "queue":
            return (
                "error",
                f"{iso(ns)[:-1].replace('T', ' ')}+00:00 [error] <0.{r.randint(100, 999)}.0> "
                "closing AMQP connection: connection_closed_abruptly",
            )
        if cause == "bad_deploy":
            exc, text, code_line = r.choice(_PY_ERRORS)
            fn = route.path.strip("/").replace("/", "_").replace("v1_", "") or "handler"
            return "error", (
                f'{head} msg="unhandled exception" {where} version={version} error="{exc}: '
                f'{text}"\n'
                f"Traceback (most recent call last):\n"
                f'  File "/app/{self.svc.name}/handlers.py", line {r.randint(80, 400)}, in {fn}\n'
                f"    {code_line}\n{exc}: {text}"
            )
        if cause == "bad_feature_flag":
            return "error", (
                f'{head} msg="feature flag code path failed" flag={upstream} {where} '
                'error="ValueError: unsupported pricing rule '
                f"'{r.choice(['promo', 'bundle', 'tiered'])}'\"\n"
                f"Traceback (most recent call last):\n"
                f'  File "/app/{self.svc.name}/flags.py", line {r.randint(20, 90)}, in evaluate\n'
                f"    rule = RULES[ctx.rule]\nValueError: unsupported pricing rule"
            )
        if cause == "db_pool_exhaustion":
            return "error", (
                f'{head} msg="could not acquire database connection" {where} pool=primary '
                f"active={self.svc.db_pool} max={self.svc.db_pool} "
                f"waited_ms={r.randint(1900, 5000)} "
                f'error="timeout acquiring connection from pool"'
            )
        if cause == "packet_loss" and upstream:
            return "error", (
                f'{head} msg="request to {upstream} failed" {where} error="read tcp {self._ip()}:'
                f'{r.randint(30000, 60000)}->{self._ip()}:8080: read: connection reset by peer" '
                f"attempt={r.randint(1, 3)}"
            )
        if code == 504 and upstream:
            return "error", (
                f'{head} msg="upstream request timed out" upstream={upstream} {where} '
                f'timeout_ms=1000 error="context deadline exceeded"'
            )
        if code == 504:
            return (
                "error",
                f'{head} msg="request deadline exceeded" {where} '
                f"duration_ms={r.randint(1000, 3000)}",
            )
        if upstream == "cache":
            return "error", (
                f'{head} msg="cache error" {where} error="dial tcp 10.42.0.9:6379: connect: '
                'connection refused"'
            )
        if upstream:
            return "error", (
                f'{head} msg="upstream request failed" upstream={upstream} {where} '
                f'error="{upstream} returned 503 Service Unavailable"'
            )
        if cause == "memory_leak":
            return (
                "error",
                f'{head} msg="request failed" {where} error="MemoryError: cannot allocate"',
            )
        return "error", f'{head} msg="internal error" {where} error="unexpected EOF"'

    def symptom(self, ns: int, cause: str, detail: dict) -> tuple[str, str] | None:
        """Non-error lines a fault produces even when requests still succeed."""
        r = self.rnd
        head = f"ts={iso(ns)}"
        if cause == "cpu_saturation":
            return (
                "warn",
                f'{head} level=warn msg="worker pool saturated" queued={r.randint(20, 400)} '
                f"workers=8 cpu_throttled_pct={r.randint(40, 90)}",
            )
        if cause == "memory_leak" and detail.get("frac", 0) > 0.6:
            limit = int(self.svc.memory_limit_bytes / 2**20)
            return (
                "warn",
                f'{head} level=warn msg="heap usage high" '
                f"heap_mb={int(limit * detail['frac'])} limit_mb={limit} "
                f"gc_pause_ms={r.randint(50, 900)}",
            )
        if cause == "slow_dependency":
            if self.svc.tier == "data":
                return (
                    "warn",
                    f"{iso(ns)[:-1].replace('T', ' ')} UTC [{r.randint(100, 9999)}] LOG:  "
                    f"duration: {r.randint(900, 4000)}.{r.randint(100, 999)} ms  statement: "
                    "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id",
                )
            return (
                "warn",
                f'{head} level=warn msg="slow request" duration_ms={r.randint(1200, 3500)} '
                "handler=default stage=db_query",
            )
        if cause == "db_pool_exhaustion":
            return (
                "warn",
                f'{head} level=warn msg="connection pool at capacity" pool=primary '
                f"active={self.svc.db_pool} idle=0 waiting={r.randint(5, 60)}",
            )
        if cause == "packet_loss":
            return (
                "warn",
                f'{head} level=warn msg="retrying request" upstream={detail.get("target")} '
                f'attempt={r.randint(1, 3)} backoff_ms={r.choice([100, 200, 400])} error="i/o '
                'timeout"',
            )
        if cause == "noisy_neighbour":
            return "warn", (
                f'{head} level=warn msg="event loop lag high" lag_ms={r.randint(150, 900)} '
                f"cpu_throttled=true nr_throttled={r.randint(20, 90)}"
            )
        if cause == "cache_fallback":
            return (
                "warn",
                f'{head} level=warn msg="cache unavailable, falling back to database" '
                f'key=product:{r.randint(1000, 99999)} error="dial tcp 10.42.0.9:6379: '
                'connect: connection refused"',
            )
        if cause == "cache_failure":
            return (
                "error",
                f"1:M {self._redis_time(ns)} # Connection refused: max number of clients reached",
            )
        if cause == "bad_feature_flag":
            return (
                "info",
                f'{head} level=info msg="feature flag evaluated" flag={detail.get("flag")} '
                f"value=true user_id={self._id('u')}",
            )
        return None

    def oom(self, ns: int, restarts: int) -> list[tuple[int, str, str]]:
        limit = int(self.svc.memory_limit_bytes / 2**20)
        return [
            (
                ns - 2_000_000_000,
                "error",
                f'ts={iso(ns - 2_000_000_000)} level=error msg="fatal error: runtime: out of '
                f'memory" heap_mb={limit} limit_mb={limit}',
            ),
            (
                ns + 8_000_000_000,
                "warn",
                f'ts={iso(ns + 8_000_000_000)} level=warn msg="starting {self.svc.name}" '
                f"version={self.svc.version} previous_exit=OOMKilled exit_code=137 "
                f"restart_count={restarts}",
            ),
        ]

    def user(self) -> str:
        return self.rnd.choice(_FIRST)
