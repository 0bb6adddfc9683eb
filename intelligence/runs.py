"""Analysis runs in the database: requesting, starting, progressing, finishing.

One running analysis per incident (a partial unique index says so). A request while a run
waits in the queue is folded into it when it only reports growth (the queued run reads the
incident when it starts), so a storm of joins costs one run per debounce window; any other
request supersedes the waiting run. A run that starts supersedes the one still running
(that one stops at its next step boundary and keeps what it found). Every change of a run
is written on its row and pushed live to the incident's audience.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.lifecycle import IncidentStatus
from incidents.live import publish_on_commit
from incidents.models import SLO, Alert, Dependency, Incident, Service, TimelineEvent
from incidents.timeline import add_events
from intelligence.analysis.context import (
    AlertFacts,
    IncidentFacts,
    ServiceFacts,
    WindowPolicy,
    build_context,
    context_as_dict,
)
from intelligence.analysis.impact import SLOFacts, assess_impact
from intelligence.analysis.run import Outcome, Step, StepSpec, progress_of, run_steps, summarize
from intelligence.models import Insight
from intelligence.signals.types import AnalysisContext, Finding, SignalResult

logger = logging.getLogger(__name__)

Status = Insight.Status
GROWTH_REASONS = ("alerts_joined",)
ACTIVE = (Status.QUEUED, Status.RUNNING)


# -- requesting --------------------------------------------------------------------------


@dataclass
class Requested:
    insight: Insight
    countdown: float
    new: bool


def request(incident_id: int, reason: str, *, user: Any = None) -> Requested | None:
    """Queue an analysis of the incident (call inside or outside a transaction).

    Returns None when there is nothing to analyse (gone or merged away). Growth folds into
    a waiting run, or waits ``ANALYSIS_DEBOUNCE_S`` so the joins that follow it fold in too.
    """
    with transaction.atomic():
        incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None or incident.merged_into_id:
            return None
        queued = Insight.objects.filter(incident=incident, status=Status.QUEUED).order_by("-pk")
        waiting = queued.first()
        if reason in GROWTH_REASONS and waiting is not None:
            return Requested(waiting, 0, False)
        if reason == "scheduled" and (
            waiting is not None
            or Insight.objects.filter(incident=incident, status=Status.RUNNING).exists()
        ):
            return None  # live work beats a routine refresh
        insight = Insight.objects.create(
            incident=incident,
            status=Status.QUEUED,
            reason=reason,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
        )
        queued.exclude(pk=insight.pk).update(
            status=Status.SUPERSEDED, superseded_by=insight, finished_at=timezone.now()
        )
        countdown = settings.ANALYSIS_DEBOUNCE_S if reason in GROWTH_REASONS else 0.0
        announce(insight)
    return Requested(insight, countdown, True)


# -- running -----------------------------------------------------------------------------

START_RETRY = "retry"


def start(insight_id: int, now: datetime | None = None) -> Insight | str | None:
    """Mark a queued run running; ``START_RETRY`` while an older run still runs.

    None when there is nothing to do (superseded, already done: a redelivered task).
    The older running run is told to stop (``superseded_by``); one whose worker died long
    ago is closed as failed so it cannot block the incident forever.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            insight = Insight.objects.select_for_update().filter(pk=insight_id).first()
            if insight is None or insight.status != Status.QUEUED:
                return None
            older = Insight.objects.filter(incident_id=insight.incident_id, status=Status.RUNNING)
            stale = now - timedelta(seconds=settings.ANALYSIS_STALE_AFTER_S)
            older.filter(started_at__lt=stale).update(
                status=Status.FAILED,
                finished_at=now,
                gaps=["the worker running this analysis was lost"],
            )
            older.filter(superseded_by__isnull=True).update(superseded_by=insight)
            if older.exists():
                return START_RETRY
            insight.status, insight.started_at = Status.RUNNING, now
            insight.save(update_fields=["status", "started_at"])
    except IntegrityError:  # another run of the incident became running meanwhile
        return START_RETRY
    announce(insight)
    return insight


@dataclass
class RunInputs:
    context: AnalysisContext
    alerting: list[str]
    graph: dict[str, tuple[str, ...]]
    tiers: dict[str, int]
    slos: list[SLOFacts]


def load_inputs(incident: Incident, now: datetime) -> RunInputs:
    """Read what the analysis needs from the database into plain data."""
    alerts = [
        AlertFacts(starts_at=a.starts_at, labels=a.labels, generator_url=a.generator_url, service=s)
        for a, s in (
            (a, a.service.slug if a.service_id else None)
            for a in Alert.objects.filter(incident=incident).select_related("service")[:2000]
        )
    ]
    own = list(incident.services.values_list("slug", flat=True))
    graph: dict[str, list[str]] = {}
    for caller, callee in Dependency.objects.values_list("service__slug", "depends_on__slug"):
        graph.setdefault(caller, []).append(callee)
    services = {
        slug: ServiceFacts(
            slug=slug,
            labels=labels or {"service": slug},
            depends_on=tuple(sorted(graph.get(slug, ()))),
            tier=tier,
        )
        for slug, labels, tier in Service.objects.values_list("slug", "alert_labels", "tier")
    }
    previous_end = (
        Incident.objects.filter(
            services__slug__in=own,
            resolved_at__isnull=False,
            resolved_at__lt=incident.created_at,
        )
        .exclude(pk=incident.pk)
        .order_by("-resolved_at")
        .values_list("resolved_at", flat=True)
        .first()
    )
    policy = WindowPolicy(
        lead=timedelta(seconds=settings.ANALYSIS_LEAD_S),
        baseline=timedelta(seconds=settings.ANALYSIS_BASELINE_S),
        min_baseline=timedelta(seconds=settings.ANALYSIS_MIN_BASELINE_S),
        hops=settings.ANALYSIS_HOPS,
    )
    facts = IncidentFacts(
        incident_id=incident.pk,
        alerts=alerts,
        services=own,
        created_at=incident.created_at,
        previous_end=previous_end,
    )
    context = build_context(facts, services, now, policy)
    alerting = sorted(set(own) | {a.service for a in alerts if a.service})
    slos = [
        SLOFacts(slug, name, float(objective), good, total)
        for slug, name, objective, good, total in SLO.objects.filter(
            service__slug__in=list(services)
        ).values_list("service__slug", "name", "objective", "good_query", "total_query")
    ]
    return RunInputs(
        context=context,
        alerting=alerting,
        graph={k: tuple(v) for k, v in graph.items()},
        tiers={slug: f.tier for slug, f in services.items()},
        slos=slos,
    )


class StoredProgress:
    """Writes each step's end onto the run's row and pushes it live."""

    def __init__(self, insight: Insight) -> None:
        self.insight = insight

    def update(self, steps: list[Step], findings: list[Finding], gaps: list[str]) -> None:
        insight = self.insight
        insight.steps = [s.as_dict() for s in steps]
        insight.progress = progress_of(steps)
        insight.gaps = list(gaps)
        insight.evidence = {**(insight.evidence or {}), "findings": [f.as_dict() for f in findings]}
        fields = ["steps", "progress", "gaps", "evidence"]
        if findings and insight.first_finding_at is None:
            insight.first_finding_at = timezone.now()
            fields.append("first_finding_at")
        insight.summary, insight.confidence_score = summarize(findings, gaps)
        fields += ["summary", "confidence_score"]
        Insight.objects.filter(pk=insight.pk).update(**{f: getattr(insight, f) for f in fields})
        announce(insight)

    def should_stop(self) -> bool:
        return Insight.objects.filter(pk=self.insight.pk, superseded_by__isnull=False).exists()


SignalsFactory = Callable[[], tuple[list[Any], list[str]]]
ReaderFactory = Callable[[], Any]


def execute(
    insight: Insight,
    signals_factory: SignalsFactory,
    reader_factory: ReaderFactory | None = None,
    *,
    now: datetime | None = None,
) -> Insight:
    """Run a started analysis to its end; any failure ends as a failed run, never raises."""
    now = now or timezone.now()
    try:
        inputs = load_inputs(insight.incident, now)
        insight.context = context_as_dict(inputs.context)
        Insight.objects.filter(pk=insight.pk).update(context=insight.context)
        signals, skipped = signals_factory()
        specs = [StepSpec(s.name, s.source, s.collect) for s in signals]
        impact: dict[str, Any] = {}
        specs.append(StepSpec("impact", "prometheus", _impact_step(inputs, reader_factory, impact)))
        outcome = run_steps(
            inputs.context,
            specs,
            StoredProgress(insight),
            deadline_s=settings.ANALYSIS_DEADLINE_S,
        )
        finish(insight, outcome, skipped, impact)
    except Exception as exc:  # the incident, webhook and other runs never see this
        logger.exception("analysis %s failed", insight.pk)
        fail(insight, exc)
    return insight


def _impact_step(
    inputs: RunInputs, reader_factory: ReaderFactory | None, into: dict[str, Any]
) -> Callable[[AnalysisContext], SignalResult]:
    def collect(context: AnalysisContext) -> SignalResult:
        reader = reader_factory() if reader_factory else None
        report, result = assess_impact(
            inputs.alerting,
            inputs.graph,
            inputs.tiers,
            inputs.slos,
            (context.incident_start, context.incident_end),
            reader,
        )
        into.update(report)
        return result

    return collect


def finish(
    insight: Insight, outcome: Outcome, skipped: list[str], impact: dict[str, Any]
) -> Insight:
    """Store the run's end, note it on the timeline (unless superseded) and announce it."""
    now = timezone.now()
    findings = [f.as_dict() for f in outcome.findings]
    insight.status = outcome.status
    insight.steps = [s.as_dict() for s in outcome.steps]
    insight.progress = 100 if outcome.status != Status.SUPERSEDED else outcome.progress
    insight.gaps = outcome.gaps
    insight.calls, insight.call_seconds = outcome.calls, round(outcome.call_seconds, 3)
    insight.evidence = {"findings": findings, "impact": impact, "skipped": skipped}
    insight.summary, insight.confidence_score = summarize(outcome.findings, outcome.gaps)
    insight.finished_at = now
    if findings and insight.first_finding_at is None:
        insight.first_finding_at = now
    with transaction.atomic():
        insight.save(  # not superseded_by: another run may have just set it
            update_fields=[
                "status",
                "steps",
                "progress",
                "gaps",
                "calls",
                "call_seconds",
                "evidence",
                "summary",
                "confidence_score",
                "finished_at",
                "first_finding_at",
            ]
        )
        announce(insight)  # the run's end first, then its timeline note
        if insight.status != Status.SUPERSEDED:
            add_events([timeline_event(insight, now)])
    return insight


def fail(insight: Insight, exc: BaseException) -> None:
    now = timezone.now()
    insight.status, insight.finished_at = Status.FAILED, now
    insight.gaps = [*insight.gaps, f"analysis failed: {type(exc).__name__}: {exc}"]
    with transaction.atomic():
        Insight.objects.filter(pk=insight.pk).update(
            status=insight.status, finished_at=now, gaps=insight.gaps
        )
        announce(insight)
        add_events([timeline_event(insight, now)])


def timeline_event(insight: Insight, now: datetime) -> TimelineEvent:
    count = len(insight.findings)
    noun = "finding" if count == 1 else "findings"
    if insight.status == Status.FAILED:
        message = "analysis failed: " + "; ".join(insight.gaps[-1:])
    else:
        message = f"analysis {insight.status}: {count} {noun}"
        if insight.gaps:
            message += f" ({len(insight.gaps)} gaps: {'; '.join(insight.gaps[:3])})"
    return TimelineEvent(
        incident_id=insight.incident_id,
        kind=TimelineEvent.Kind.ANALYSIS,
        message=message[:1000],
        data={"insight": insight.pk, "status": insight.status, "findings": count},
        created_at=now,
    )


# -- telling people ----------------------------------------------------------------------


def insight_summary(insight: Insight, top: int = 3) -> dict[str, Any]:
    """What the live feed carries about a run (the API has the rest)."""
    return {
        "id": insight.pk,
        "incident": insight.incident_id,
        "status": insight.status,
        "reason": insight.reason,
        "progress": insight.progress,
        "steps": [
            {k: s.get(k) for k in ("name", "status", "seconds", "findings")}
            for s in insight.steps or []
        ],
        "findings": len(insight.findings),
        "top_findings": insight.findings[:top],
        "summary": insight.summary,
        "gaps": insight.gaps,
        "superseded_by": insight.superseded_by_id,
    }


def announce(insight: Insight) -> None:
    publish_on_commit(
        [
            (
                {
                    "type": "analysis.updated",
                    "incident_id": insight.incident_id,
                    "insight": insight_summary(insight),
                },
                insight.incident_id,
            )
        ]
    )


def incidents_due(now: datetime) -> list[int]:
    """Open incidents whose latest analysis is older than ``ANALYSIS_REANALYSE_AFTER_S``."""
    cutoff = now - timedelta(seconds=settings.ANALYSIS_REANALYSE_AFTER_S)
    open_ids = Incident.objects.filter(merged_into__isnull=True).exclude(
        status=IncidentStatus.RESOLVED
    )
    fresh = Insight.objects.filter(created_at__gte=cutoff).values("incident_id")
    return list(open_ids.exclude(pk__in=fresh).order_by("pk").values_list("pk", flat=True)[:500])
