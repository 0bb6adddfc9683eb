"""Mine a whole file of raw log lines: the shared core of the CLI and the benchmark."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .headers import compile_log_format
from .miner import TemplateMiner


@dataclass(frozen=True)
class MinedLine:
    """One input line's final assignment (after all merges)."""

    line_id: int
    cluster_id: str
    template: str


def mine_lines(
    lines: Iterable[str],
    log_format: str | None,
    miner: TemplateMiner | None = None,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 4096,
) -> tuple[list[MinedLine], TemplateMiner]:
    """Mine raw lines in order; every line is reported with its template's final id.

    Templates can merge while streaming, so ids are resolved once at the end.
    ``on_progress(n)`` is called after every ``chunk`` lines (and at the end).
    """
    header = compile_log_format(log_format)
    miner = miner or TemplateMiner()
    ids: list[str] = []
    buf: list[str] = []
    for line in lines:
        buf.append(header.content(line.rstrip("\r\n")))
        if len(buf) >= chunk:
            ids.extend(miner.add_many(buf))
            if on_progress is not None:
                on_progress(len(buf))
            buf = []
    ids.extend(miner.add_many(buf))
    if on_progress is not None and buf:
        on_progress(len(buf))
    out = []
    for i, tid in enumerate(ids, start=1):
        tpl = miner.template_of(tid)
        out.append(MinedLine(i, tpl.id if tpl else tid, tpl.text if tpl else ""))
    return out, miner


def write_prediction(rows: Iterable[MinedLine], fh: TextIO) -> None:
    """Write ``LineId,ClusterId,EventTemplate`` (the benchmark's prediction format)."""
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(["LineId", "ClusterId", "EventTemplate"])
    for r in rows:
        w.writerow([r.line_id, r.cluster_id, r.template])


def count_lines(path: Path) -> int:
    """Count lines cheaply (for a progress bar total)."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
