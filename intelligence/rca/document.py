"""The RCA document of one analysis: summary, timeline, ranked hypotheses with confidence
and pointers, what was not checked and why, and next steps. Plain data in, plain data out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from intelligence.rca.calibration import Calibration, apply_confidence
from intelligence.rca.ranking import Hypothesis, rank_hypotheses, suspects
from intelligence.signals.types import AnalysisContext, Finding

SOURCES = ("prometheus", "loki", "tempo", "kubernetes")
MAX_HYPOTHESES = 10

NEXT_STEPS = {
    "bad_deploy": "Compare {service}'s new version with the previous one; roll back {service} "
    "if the errors started with the rollout.",
    "config_or_flag": "Review the configuration / feature-flag change on {service}; turn it "
    "back if the failures started with it.",
    "resource_exhaustion": "Check {service}'s CPU, memory and connection-pool limits against "
    "its use; scale out or restart {service} if it is pinned at a limit.",
    "noisy_neighbour": "Look for CPU throttling of {service}'s pods and what shares their "
    "nodes; reschedule (restart) {service}'s pods.",
    "network_loss": "Check packet drops and retransmits between {service} and its callers; "
    "restart or reschedule the affected pods.",
    "slow_dependency": "Find where {service}'s latency comes from (its own work or what it "
    "calls): traces of slow requests, its dependencies' latency.",
    "unavailable": "Check whether {service} is up: restarts, readiness, connection refusals; "
    "restart it and look at why it stopped answering.",
    "error_surge": "Read {service}'s new error log patterns and failing spans to find the "
    "failing operation.",
}


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # alert | change | onset
    service: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "service": self.service,
            "text": self.text,
        }


@dataclass
class RcaDocument:
    summary: str
    confidence: float
    hypotheses: list[Hypothesis]
    timeline: list[TimelineEntry] = field(default_factory=list)
    not_checked: list[dict[str, str]] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    partial: bool = False

    @property
    def suspects(self) -> list[dict[str, Any]]:
        return [
            {
                "service": h.service,
                "kind": h.kind,
                "confidence": round(h.confidence, 4),
                "rank": h.rank,
            }
            for h in suspects(self.hypotheses)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "confidence": round(self.confidence, 4),
            "partial": self.partial,
            "suspects": self.suspects,
            "hypotheses": [h.as_dict() for h in self.hypotheses],
            "timeline": [t.as_dict() for t in self.timeline],
            "not_checked": self.not_checked,
            "next_steps": self.next_steps,
        }


def _timeline(
    findings: Sequence[Finding],
    alerts: Sequence[tuple[datetime, str, str]],
    hypotheses: Sequence[Hypothesis],
) -> list[TimelineEntry]:
    out = [
        TimelineEntry(at, "alert", service, f"alert {name} fired") for at, name, service in alerts
    ]
    for f in findings:
        if f.kind in ("change", "k8s_event") and f.onset is not None:
            out.append(TimelineEntry(f.onset, "change", f.service, f.title))
    for h in suspects(hypotheses):
        if h.onset is not None:
            out.append(TimelineEntry(h.onset, "onset", h.service, f"{h.service} abnormal"))
    out.sort(key=lambda e: (e.at, {"change": 0, "onset": 1, "alert": 2}[e.kind], e.service))
    return out


def _not_checked(
    gaps: Sequence[str], missing_sources: Sequence[str], findings: Sequence[Finding]
) -> list[dict[str, str]]:
    out = [
        {"what": source, "why": "not configured for this deployment"} for source in missing_sources
    ]
    out += [{"what": gap.split(" ", 1)[0], "why": gap} for gap in gaps]
    seen = {f.pointer.source for f in findings}
    for source in SOURCES:
        if (
            source not in seen
            and source not in missing_sources
            and not any(g.startswith(source) for g in gaps)
        ):
            out.append({"what": source, "why": "queried, but it showed nothing abnormal"})
    return out


def _gap_source(gap: str) -> str | None:
    """The data source a recorded gap is about ("metrics: prometheus unavailable: ...")."""
    text = gap.lower()
    return next((s for s in SOURCES if s in text), None)


def deterministic_summary(doc: RcaDocument) -> str:
    """A summary written from the document alone (used when no LLM is configured)."""
    ranked = suspects(doc.hypotheses)
    if not ranked:
        return "No service showed abnormal behaviour in the analysed window."
    top = ranked[0]
    lead = (
        f"Most likely cause: {top.service} ({top.kind.replace('_', ' ')}), "
        f"confidence {top.confidence:.0%}"
    )
    if top.onset is not None:
        lead += f", abnormal from {top.onset:%H:%M:%S} UTC"
    reasons = [e.reason for e in top.supporting[:3]]
    text = lead + (": " + "; ".join(reasons) if reasons else "") + "."
    others = ", ".join(f"{h.service} ({h.confidence:.0%})" for h in ranked[1:3])
    if others:
        text += f" Next suspects: {others}."
    if doc.partial:
        text += " Partial analysis: some sources were not checked, confidence is lowered."
    return text


def build_rca(
    findings: Sequence[Finding],
    context: AnalysisContext,
    dependencies: Mapping[str, Sequence[str]] | None = None,
    *,
    probable_origin: str | None = None,
    gaps: Sequence[str] = (),
    missing_sources: Sequence[str] = (),
    alerts: Sequence[tuple[datetime, str, str]] = (),
    calibration: Calibration | None = None,
) -> RcaDocument:
    """Rank, calibrate and write the document. ``gaps`` are the run's recorded failures
    ("prometheus unavailable: timeout"), ``missing_sources`` those not configured; both
    make the analysis partial and lower confidence."""
    hypotheses = rank_hypotheses(
        findings, context.services, dependencies=dependencies, probable_origin=probable_origin
    )
    failed = {_gap_source(g) for g in gaps} - {None}
    missing = len(set(missing_sources) | failed)
    apply_confidence(hypotheses, missing_sources=missing, calibration=calibration)
    hypotheses = hypotheses[:MAX_HYPOTHESES]
    partial = bool(gaps or missing_sources)
    doc = RcaDocument(
        summary="",
        confidence=hypotheses[0].confidence if hypotheses else 0.0,
        hypotheses=hypotheses,
        timeline=_timeline(findings, alerts, hypotheses),
        not_checked=_not_checked(gaps, missing_sources, findings),
        next_steps=[
            NEXT_STEPS.get(h.kind, NEXT_STEPS["error_surge"]).format(service=h.service)
            for h in suspects(hypotheses)[:3]
        ],
        partial=partial,
    )
    doc.summary = deterministic_summary(doc)
    return doc
