"""The contract between signals (which gather evidence) and the analysis run (which stores it).

Everything here is plain data: frozen dataclasses with ``as_dict()`` for the insight's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Pointer:
    """Where a finding came from, exactly enough to re-run the query that produced it.

    ``source`` is ``prometheus``, ``loki``, ``tempo`` or ``kubernetes``; ``query`` is the
    PromQL, LogQL, TraceQL / trace id, or the Kubernetes object (``kind/namespace/name``).
    """

    source: str
    query: str
    start: datetime | None = None
    end: datetime | None = None
    step_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "query": self.query,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "step_seconds": self.step_seconds,
        }


@dataclass(frozen=True)
class Finding:
    """One scored, explained piece of evidence about one service.

    ``kind`` is one of: ``metric_anomaly``, ``log_pattern``, ``trace_error``,
    ``trace_latency``, ``change`` (deploy, rollout, config/flag), ``k8s_event``,
    ``impact``, ``slo_burn``. ``score`` is in [0, 1]: how strongly this points at something
    abnormal (not yet "how likely a root cause": that is RCA's job). ``onset`` is when the
    abnormality (or the change) started, if known. ``details`` is JSON-able (series
    points, baseline statistics, examples, direction...).
    """

    kind: str
    service: str
    score: float
    title: str
    pointer: Pointer
    onset: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "service": self.service,
            "score": round(float(self.score), 4),
            "title": self.title,
            "onset": self.onset.isoformat() if self.onset else None,
            "pointer": self.pointer.as_dict(),
            "details": self.details,
        }


@dataclass(frozen=True)
class ServiceContext:
    """A service in scope of an analysis: its slug, the labels that identify its telemetry,
    and how far it sits from the incident's alerting services on the dependency graph."""

    slug: str
    labels: dict[str, str]
    hops: int = 0
    namespace: str | None = None
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisContext:
    """What a signal needs to know about the incident: who, and when.

    Windows are anchored at the first alert's ``startsAt`` (never at "now"): the incident
    window runs from ``incident_start`` to ``incident_end``, the baseline is the stretch
    before it (it may be only a few minutes long).
    """

    incident_id: int
    services: tuple[ServiceContext, ...]
    incident_start: datetime
    incident_end: datetime
    baseline_start: datetime
    baseline_end: datetime
    # The alert's own expression where its generatorURL carries PromQL, else None.
    trigger_expressions: tuple[str, ...] = ()
    # The alerts' labels (one dict per alert), for when there is no expression.
    trigger_labels: tuple[dict[str, str], ...] = ()


@dataclass
class SignalResult:
    """What one signal returns: findings, the gaps it hit, and its data-source calls."""

    findings: list[Finding] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)  # "prometheus unavailable: timeout", ...
    calls: int = 0
    call_seconds: float = 0.0


class Signal(Protocol):
    name: str
    source: str

    def collect(self, context: AnalysisContext) -> SignalResult: ...
