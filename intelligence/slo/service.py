"""The database side of SLO burn: store each SLO's status, and alert through ingestion.

Burn alerts are ordinary alerts: they enter through ``incidents.ingest.service.ingest`` of
a per-team integration named ``slo-burn`` (created on first use, Alertmanager-shaped
alerts, labels ``service``, ``slo``, ``long_window``, ``short_window``, ``severity``), so
correlation groups them with the service's other alerts and they auto-resolve incidents
like any alert. Disabling a team's ``slo-burn`` integration stops its burn alerts.

An alert is sent when a pair starts burning, re-sent while it burns before its end time
comes near (``endsAt`` is ``SLO_ALERT_HOLD_SECONDS`` ahead, so housekeeping expires it if
the beat job stops), and resolved once, when the pair stops burning. When Prometheus
cannot be asked nothing changes: the alert neither fires nor resolves on missing data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from django.conf import settings

from incidents.ingest.parsers import AlertIn, fingerprint_of
from incidents.ingest.service import ingest
from incidents.models import SLO, Alert, Integration
from intelligence.models import SLOStatus
from intelligence.signals.types import Finding, Pointer
from intelligence.slo.burn import WORKBOOK_PAIRS, BurnAssessment, BurnWindowPair
from intelligence.slo.evaluate import InstantQuery, Measurement, evaluate
from intelligence.slo.queries import error_ratio_expression
from intelligence.slo.rules import SLOSpec, alert_labels, summary_for
from intelligence.slo.source import NotConfigured, instant_query
from reliability.http import DataSourceError
from reliability.models import Team

BURN_INTEGRATION = "slo-burn"


def spec_of(slo: SLO) -> SLOSpec:
    return SLOSpec(
        service=slo.service.slug,
        name=slo.name,
        objective_percent=Decimal(str(slo.objective)),
        window_days=slo.window_days,
        good_query=slo.good_query,
        total_query=slo.total_query,
    )


@dataclass
class EvaluationReport:
    evaluated: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # "service/slo" -> reason
    firing: list[str] = field(default_factory=list)  # "service/slo long/short"
    resolved: list[str] = field(default_factory=list)


def burn_integration(team: Team) -> Integration:
    """The team's integration for SLO burn alerts (made on first use)."""
    integration, _ = Integration.objects.get_or_create(
        team=team,
        name=BURN_INTEGRATION,
        defaults={"kind": Integration.Kind.ALERTMANAGER, "group_by": []},
    )
    return integration


def evaluate_slos(now: datetime, query: InstantQuery) -> EvaluationReport:
    """Evaluate every SLO at ``now``, store its status and bring its burn alerts in line."""
    report = EvaluationReport()
    for slo in SLO.objects.select_related("service__team").order_by("pk"):
        key = f"{slo.service.slug}/{slo.name}"
        spec = spec_of(slo)
        try:
            assessment, measurement = evaluate(spec, now, query)
        except (DataSourceError, ValueError) as exc:  # ValueError: an SLO that cannot be
            report.failed[key] = str(exc)  # measured (window of 0 days written by hand)
            SLOStatus.objects.update_or_create(
                slo=slo, defaults={"error": str(exc)[:2000], "error_at": now}
            )
            continue
        report.evaluated += 1
        store_status(slo, assessment, measurement, now)
        fired, resolved = sync_alerts(slo, spec, assessment, now)
        report.firing += [f"{key} {p.long}/{p.short}" for p in fired]
        report.resolved += [f"{key} {p.long}/{p.short}" for p in resolved]
    return report


def store_status(
    slo: SLO, assessment: BurnAssessment, measurement: Measurement, now: datetime
) -> SLOStatus:
    data = assessment.as_dict()
    status, _ = SLOStatus.objects.update_or_create(
        slo=slo,
        defaults={
            "evaluated_at": now,
            "sli": assessment.sli,
            "window_error_ratio": assessment.window_error_ratio,
            "budget_remaining": assessment.budget_remaining,
            "windows": data["windows"],
            "firing": data["firing"],
            "severity": assessment.severity or "",
            "queries": {w: list(q) for w, q in measurement.queries.items()},
            "error": "",
            "error_at": None,
        },
    )
    return status


def _hold() -> timedelta:
    return timedelta(seconds=settings.SLO_ALERT_HOLD_SECONDS)


def sync_alerts(
    slo: SLO, spec: SLOSpec, assessment: BurnAssessment, now: datetime
) -> tuple[list[BurnWindowPair], list[BurnWindowPair]]:
    """Fire, keep alive or resolve one alert per window pair; returns (fired, resolved)."""
    integration = burn_integration(slo.service.team)
    if not integration.enabled:
        return [], []
    burning = {f.pair: f for f in assessment.firing}
    labels = {pair: alert_labels(spec, pair) for pair in WORKBOOK_PAIRS}
    fingerprints = {pair: fingerprint_of(lab) for pair, lab in labels.items()}
    existing = {
        a.fingerprint: a
        for a in Alert.objects.filter(
            integration=integration, fingerprint__in=list(fingerprints.values())
        )
    }
    out: list[AlertIn] = []
    fired, resolved = [], []
    for pair in WORKBOOK_PAIRS:
        alert = existing.get(fingerprints[pair])
        is_firing = alert is not None and alert.status == Alert.Status.FIRING
        if pair in burning:
            fired.append(pair)
            fresh = is_firing and alert.ends_at and alert.ends_at - now > _hold() / 2
            if not fresh:
                starts = alert.starts_at if is_firing else now
                firing = _alert(spec, pair, labels[pair], "firing", starts, now + _hold())
                _annotate(firing, assessment, pair)
                out.append(firing)
        elif is_firing:
            resolved.append(pair)
            out.append(_alert(spec, pair, labels[pair], "resolved", alert.starts_at, now))
    if out:
        ingest(integration, out, now)
    return fired, resolved


def _annotate(alert: AlertIn, assessment: BurnAssessment, pair: BurnWindowPair) -> None:
    long_burn, short_burn = assessment.burn(pair.long), assessment.burn(pair.short)
    alert.annotations["description"] = (
        f"burn rate {long_burn:.1f}x over {pair.long} and {short_burn:.1f}x over {pair.short} "
        f"(alert above {pair.factor:g}x)"
    )
    if assessment.budget_remaining is not None:
        alert.annotations["budget_remaining"] = f"{assessment.budget_remaining:.4f}"


def _alert(
    spec: SLOSpec,
    pair: BurnWindowPair,
    labels: dict[str, str],
    status: str,
    starts_at: datetime,
    ends_at: datetime,
) -> AlertIn:
    return AlertIn(
        fingerprint=fingerprint_of(labels),
        name=labels["alertname"],
        status=status,
        labels=dict(labels),
        annotations={"summary": summary_for(spec, pair)},
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url(spec, pair),
        raw={"source": "slo-burn", "labels": labels, "status": status},
    )


def generator_url(spec: SLOSpec, pair: BurnWindowPair) -> str:
    """A Prometheus graph link with the long window's error ratio (the alert's signal)."""
    base = settings.PROMETHEUS_URL.rstrip("/")
    if not base:
        return ""
    expr = error_ratio_expression(spec.good_query, spec.total_query, pair.long_seconds)
    url = f"{base}/graph?g0.expr={quote(expr, safe='')}"
    return url if len(url) <= 1000 else f"{base}/graph"


# -- for the analysis: which SLOs of these services burn, and how fast ----------------------


@dataclass(frozen=True)
class SLOBurn:
    """One SLO of an affected service at the analysis time."""

    slo_id: int
    service: str
    name: str
    objective_percent: float
    assessment: BurnAssessment
    queries: dict[str, tuple[str, str]]

    @property
    def burning(self) -> bool:
        return self.assessment.burning

    def as_dict(self) -> dict[str, Any]:
        return {
            "slo_id": self.slo_id,
            "service": self.service,
            "name": self.name,
            **self.assessment.as_dict(),
            "queries": {w: list(q) for w, q in self.queries.items()},
        }


@dataclass
class SLOImpact:
    """Every SLO of the services asked about; ``gaps`` says which could not be measured."""

    slos: list[SLOBurn] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    def findings(self, at: datetime) -> list[Finding]:
        """One ``slo_burn`` finding per burning SLO, pointing at its fastest pair's long
        window; score 1 at the workbook's fastest page (14.4x) or above."""
        out = []
        for burn in self.burning:
            fastest = max(burn.assessment.firing, key=lambda f: f.long_burn)
            good, total = burn.queries[fastest.pair.long]
            out.append(
                Finding(
                    kind="slo_burn",
                    service=burn.service,
                    score=min(1.0, fastest.long_burn / WORKBOOK_PAIRS[0].factor),
                    title=(
                        f"SLO {burn.name} of {burn.service} burns its error budget "
                        f"{fastest.long_burn:.1f}x over {fastest.pair.long} "
                        f"({fastest.pair.severity})"
                    ),
                    pointer=Pointer(
                        "prometheus",
                        f"1 - ({good}) / ({total})",
                        start=at - timedelta(seconds=fastest.pair.long_seconds),
                        end=at,
                    ),
                    details=burn.as_dict(),
                )
            )
        return out

    @property
    def burning(self) -> list[SLOBurn]:
        """The burning ones, fastest long-window burn first."""

        def speed(b: SLOBurn) -> float:
            return max((f.long_burn for f in b.assessment.firing), default=0.0)

        return sorted((b for b in self.slos if b.burning), key=speed, reverse=True)


def slo_impact(
    service_slugs: list[str], at: datetime, query: InstantQuery | None = None
) -> SLOImpact:
    """Which SLOs of ``service_slugs`` burn at ``at`` and how fast (asked live, so an
    analysis of a past incident sees that time, not the beat job's last run).

    ``query`` defaults to the configured Prometheus; without one the answer is empty with
    the gap said."""
    impact = SLOImpact()
    if query is None:
        try:
            query, close = instant_query()
        except NotConfigured as exc:
            impact.gaps.append(f"SLOs not measured: {exc}")
            return impact
        try:
            return slo_impact(service_slugs, at, query)
        finally:
            close()
    slos = SLO.objects.filter(service__slug__in=service_slugs).select_related("service")
    for slo in slos.order_by("service__slug", "name"):
        try:
            assessment, measurement = evaluate(spec_of(slo), at, query)
        except (DataSourceError, ValueError) as exc:
            impact.gaps.append(f"SLO {slo.service.slug}/{slo.name}: {exc}")
            continue
        impact.slos.append(
            SLOBurn(
                slo.pk,
                slo.service.slug,
                slo.name,
                float(slo.objective),
                assessment,
                measurement.queries,
            )
        )
    return impact
