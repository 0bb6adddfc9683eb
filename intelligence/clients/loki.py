"""Loki client: ``/loki/api/v1/query_range`` over the shared resilient HTTP factory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reliability.http import DataSourceError, ResilientClient, make_client

NAME = "loki"


@dataclass(frozen=True)
class LogEntry:
    """One log line with its stream labels; ``ts_ns`` is Loki's nanosecond timestamp."""

    ts_ns: int
    line: str
    labels: dict[str, str]

    def as_record(self) -> tuple[int, str, dict[str, str]]:
        """The ``(timestamp, line, labels)`` tuple the evidence module takes."""
        return (self.ts_ns, self.line, self.labels)


def to_ns(ts: datetime | float | int) -> int:
    """Loki wants epoch nanoseconds; accept datetimes, epoch seconds or nanoseconds."""
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1e9)
    value = float(ts)
    return int(value) if value > 1e14 else int(value * 1e9)


class LokiClient:
    """Reads log lines from Loki; transport problems raise ``DataSourceUnavailable``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        http: ResilientClient | None = None,
    ) -> None:
        self.http = http or make_client(NAME, base_url, timeout=timeout, retries=retries)

    def close(self) -> None:
        self.http.close()

    def query_range(
        self,
        query: str,
        start: datetime | float | int,
        end: datetime | float | int,
        *,
        limit: int = 5000,
        max_lines: int = 100_000,
        direction: str = "forward",
    ) -> list[LogEntry]:
        """All lines of ``query`` in [start, end), oldest first, paging by ``limit``."""
        pages = self.iter_range(
            query, start, end, limit=limit, max_lines=max_lines, direction=direction
        )
        return list(pages)

    def iter_range(
        self,
        query: str,
        start: datetime | float | int,
        end: datetime | float | int,
        *,
        limit: int = 5000,
        max_lines: int = 100_000,
        direction: str = "forward",
    ) -> Iterator[LogEntry]:
        """Yield lines page by page; a full page continues after its last timestamp."""
        lo, hi = to_ns(start), to_ns(end)
        seen = 0
        while lo < hi and seen < max_lines:
            page = self._page(query, lo, hi, min(limit, max_lines - seen), direction)
            if not page:
                return
            page.sort(key=lambda e: e.ts_ns, reverse=direction == "backward")
            yield from page
            seen += len(page)
            if len(page) < limit:
                return
            if direction == "forward":
                lo = page[-1].ts_ns + 1
            else:
                hi = page[-1].ts_ns

    def _page(self, query: str, start: int, end: int, limit: int, direction: str) -> list[LogEntry]:
        body = self.http.get_json(
            "/loki/api/v1/query_range",
            params={
                "query": query,
                "start": str(start),
                "end": str(end),
                "limit": str(limit),
                "direction": direction,
            },
        )
        return parse_streams(body)


def parse_streams(body: Any) -> list[LogEntry]:
    """Decode a ``resultType: streams`` answer; anything else is a ``DataSourceError``."""
    if not isinstance(body, dict) or body.get("status") != "success":
        raise DataSourceError(NAME, f"unexpected answer: {str(body)[:200]}")
    data = body.get("data") or {}
    if data.get("resultType") != "streams":
        raise DataSourceError(NAME, f"expected streams, got {data.get('resultType')!r}")
    out = []
    for stream in data.get("result") or []:
        labels = dict(stream.get("stream") or {})
        for ts, line, *_ in stream.get("values") or []:
            out.append(LogEntry(int(ts), line, labels))
    return out
