"""Running an analysis: every step at once, each on its own, progress reported as they end.

A step is a name, its data source and a function of the context returning a
``SignalResult``. Steps run concurrently (they wait on different systems); one that raises,
hits a down source or overruns the deadline records a gap and the others carry on, so the
run is ``partial``, never lost. Nothing here touches the database or Celery: the caller
passes a ``Progress`` that stores and announces.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from intelligence.signals.types import AnalysisContext, Finding, SignalResult
from reliability.http import DataSourceError

logger = logging.getLogger(__name__)

# How much each kind of evidence says about what broke (impact and burn say who is hurt).
KIND_WEIGHT = {"impact": 0.3, "slo_burn": 0.6}
MAX_FINDINGS = 50


@dataclass
class StepSpec:
    name: str
    source: str
    collect: Callable[[AnalysisContext], SignalResult]


@dataclass
class Step:
    name: str
    source: str
    status: str = "pending"  # pending, running, ok, partial, failed, timeout, cancelled
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    findings: int = 0
    calls: int = 0
    call_seconds: float = 0.0
    gaps: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status not in ("pending", "running")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "status": self.status,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": round(self.seconds, 3) if self.seconds is not None else None,
            "findings": self.findings,
            "calls": self.calls,
            "call_seconds": round(self.call_seconds, 3),
            "gaps": self.gaps,
        }


@dataclass
class Outcome:
    status: str  # complete, partial, superseded
    steps: list[Step]
    findings: list[Finding]
    gaps: list[str]
    calls: int = 0
    call_seconds: float = 0.0

    @property
    def progress(self) -> int:
        return progress_of(self.steps)


class Progress(Protocol):
    def update(self, steps: list[Step], findings: list[Finding], gaps: list[str]) -> None: ...

    def should_stop(self) -> bool: ...


def progress_of(steps: Sequence[Step]) -> int:
    return round(100 * sum(s.done for s in steps) / len(steps)) if steps else 100


def rank(findings: Sequence[Finding], hops: dict[str, int] | None = None) -> list[Finding]:
    """Strongest evidence first; a tie goes to the service nearer the alerts."""
    hops = hops or {}

    def key(f: Finding) -> tuple:
        weighted = f.score * KIND_WEIGHT.get(f.kind, 1.0)
        return (-round(weighted, 6), hops.get(f.service, 99), f.kind, f.title)

    return sorted(findings, key=key)[:MAX_FINDINGS]


def summarize(findings: Sequence[Finding], gaps: Sequence[str]) -> tuple[str, float]:
    """A one-paragraph summary and the run's confidence (its strongest weighted evidence)."""
    if not findings:
        text = "No abnormal evidence found."
        return (text + (f" Gaps: {'; '.join(gaps)}." if gaps else ""), 0.0)
    top = findings[:3]
    text = "Top evidence: " + "; ".join(f"{f.title} [{f.service}]" for f in top) + "."
    if gaps:
        text += f" Gaps: {'; '.join(gaps)}."
    confidence = max(f.score * KIND_WEIGHT.get(f.kind, 1.0) for f in findings)
    return text, round(min(1.0, confidence), 4)


def _now() -> datetime:
    return datetime.now(UTC)


def run_steps(
    context: AnalysisContext,
    specs: Sequence[StepSpec],
    progress: Progress,
    *,
    deadline_s: float = 60.0,
    gaps: Sequence[str] = (),
) -> Outcome:
    """Run ``specs`` concurrently; report after each ends; stop early when told to.

    ``gaps`` are those known before starting (sources not configured are not gaps: they
    are skipped and said so by the caller).
    """
    steps = [Step(s.name, s.source) for s in specs]
    all_gaps = list(gaps)
    findings: list[Finding] = []
    hops = {s.slug: s.hops for s in context.services}
    if not specs:
        return Outcome("partial" if all_gaps else "complete", steps, [], all_gaps)
    pool = ThreadPoolExecutor(max_workers=len(specs), thread_name_prefix="analysis")
    started = time.monotonic()
    futures: dict[Future, Step] = {}
    for spec, step in zip(specs, steps, strict=True):
        step.status, step.started_at = "running", _now()
        futures[pool.submit(_timed, spec.collect, context)] = step
    progress.update(steps, [], all_gaps)
    superseded = False
    pending = set(futures)
    try:
        while pending:
            left = deadline_s - (time.monotonic() - started)
            if left <= 0:
                break
            done, pending = wait(pending, timeout=min(left, 1.0), return_when=FIRST_COMPLETED)
            for future in done:
                step = futures[future]
                new = _finish(step, future)
                all_gaps += step.gaps
                findings = rank([*findings, *new], hops)
            if done:
                progress.update(steps, findings, all_gaps)
            if pending and progress.should_stop():
                superseded = True
                break
    finally:
        for future in pending:
            future.cancel()
            step = futures[future]
            step.status = "cancelled" if superseded else "timeout"
            step.finished_at = _now()
            step.seconds = time.monotonic() - started
            if not superseded:
                step.gaps.append(f"{step.name}: no answer within {deadline_s:.0f} s")
                all_gaps += step.gaps
        pool.shutdown(wait=False, cancel_futures=True)
    status = "superseded" if superseded else ("partial" if all_gaps else "complete")
    return Outcome(
        status,
        steps,
        findings,
        all_gaps,
        calls=sum(s.calls for s in steps),
        call_seconds=sum(s.call_seconds for s in steps),
    )


def _timed(collect: Callable[[AnalysisContext], SignalResult], context: AnalysisContext):
    t0 = time.monotonic()
    try:
        return collect(context), None, time.monotonic() - t0
    except Exception as exc:  # one broken step must not take the run with it
        return None, exc, time.monotonic() - t0


def _finish(step: Step, future: Future) -> list[Finding]:
    result, error, seconds = future.result()
    step.finished_at, step.seconds = _now(), seconds
    if error is not None:
        step.status = "failed"
        if isinstance(error, DataSourceError):
            step.gaps.append(f"{step.name}: {error}")
        else:
            logger.exception("analysis step %s failed", step.name, exc_info=error)
            step.gaps.append(f"{step.name}: failed ({type(error).__name__}: {error})")
        return []
    step.calls, step.call_seconds = result.calls, result.call_seconds
    step.findings = len(result.findings)
    step.gaps = [g if g.startswith(step.name) else f"{step.name}: {g}" for g in result.gaps]
    step.status = "partial" if step.gaps else "ok"
    return list(result.findings)
