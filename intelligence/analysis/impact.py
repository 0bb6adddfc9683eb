"""Impact / blast radius: who is hurt, through which doors, how badly, and which SLOs burn.

Plain data in, plain data out. The graph says who is affected (the alerting services and
every caller that reaches them) and which of those are entry points (nobody calls them:
users do). Rates come from each affected service's SLO queries (its curated good/total
PromQL), read through ``MetricReader``; without a Prometheus the report still names the
services, doors and SLOs, and records the gap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from intelligence.signals.types import Finding, Pointer, SignalResult
from reliability.http import DataSourceError


class MetricReader(Protocol):
    """What impact needs of Prometheus: one scalar now, and one summed series over a range."""

    def scalar(self, expr: str, at: datetime) -> float | None: ...

    def series(
        self, expr: str, start: datetime, end: datetime, step_s: float
    ) -> list[tuple[float, float]]: ...


@dataclass(frozen=True)
class SLOFacts:
    service: str
    name: str
    objective: float  # percent, e.g. 99.9
    good_query: str
    total_query: str

    @property
    def budget(self) -> float:
        return max(1 - self.objective / 100, 1e-9)


def callers_of(targets: Iterable[str], graph: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Every service that reaches one of ``targets`` through its calls, with the distance."""
    dependents: dict[str, set[str]] = {}
    for service, callees in graph.items():
        for callee in callees:
            dependents.setdefault(callee, set()).add(service)
    dist = {t: 0 for t in targets}
    queue = deque(dist)
    while queue:
        slug = queue.popleft()
        for caller in sorted(dependents.get(slug, ())):
            if caller not in dist:
                dist[caller] = dist[slug] + 1
                queue.append(caller)
    return dist


def entry_points(affected: Iterable[str], graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Affected services nobody in the graph calls: the doors users come through."""
    called = {callee for callees in graph.values() for callee in callees}
    return sorted(s for s in affected if s not in called)


def assess_impact(
    alerting: Sequence[str],
    graph: Mapping[str, Sequence[str]],
    tiers: Mapping[str, int],
    slos: Sequence[SLOFacts],
    window: tuple[datetime, datetime],
    reader: MetricReader | None,
    *,
    step_s: float = 60.0,
) -> tuple[dict, SignalResult]:
    """The impact report (for ``evidence["impact"]``) and its findings."""
    result = SignalResult()
    reach = callers_of(alerting, graph)
    affected = sorted(reach, key=lambda s: (reach[s], s))
    doors = entry_points(affected, graph)
    report: dict = {
        "alerting": sorted(alerting),
        "affected_services": [
            {"service": s, "distance": reach[s], "tier": tiers.get(s)} for s in affected
        ],
        "entry_points": [{"service": s, "tier": tiers.get(s)} for s in doors],
        "slos": [],
        "failed_requests": None,
    }
    start, end = window
    seconds = max((end - start).total_seconds(), 1.0)
    failed_total = 0.0
    measured = False
    for slo in (s for s in slos if s.service in reach):
        row: dict = {
            "service": slo.service,
            "name": slo.name,
            "objective": slo.objective,
            "good_query": slo.good_query,
            "total_query": slo.total_query,
        }
        report["slos"].append(row)
        if reader is None:
            continue
        bad_expr = f"({slo.total_query}) - ({slo.good_query})"
        try:
            total = reader.series(slo.total_query, start, end, step_s)
            bad = reader.series(bad_expr, start, end, step_s)
        except DataSourceError as exc:
            result.gaps.append(f"impact: {exc}")
            continue
        result.calls += 2
        measured = True
        total_now = total[-1][1] if total else None
        bad_now = bad[-1][1] if bad else None
        failed = sum(v for _t, v in bad if v > 0) * step_s
        served = sum(v for _t, v in total if v > 0) * step_s
        ratio = (failed / served) if served > 0 else 0.0
        burn = ratio / slo.budget
        row.update(
            request_rate=total_now,
            error_rate=bad_now,
            error_ratio=round(ratio, 6),
            failed_requests=round(failed),
            burn_rate=round(burn, 3),
            budget_spent=round(burn * seconds / 86400 / 28, 6),
        )
        failed_total += failed
        if burn > 1:
            result.findings.append(
                Finding(
                    kind="slo_burn",
                    service=slo.service,
                    # a symptom's measure, not a cause: ranked below the evidence of what broke
                    score=min(0.5, burn / 28.8),  # 14.4x (the workbook's fast burn): 0.5
                    title=(
                        f"{slo.service} SLO {slo.name} burns {burn:.1f}x its budget "
                        f"({ratio:.2%} errors, ~{round(failed)} failed requests)"
                    ),
                    pointer=Pointer("prometheus", bad_expr, start, end, step_s),
                    details={k: v for k, v in row.items() if k not in ("good_query",)},
                )
            )
    if measured:
        report["failed_requests"] = round(failed_total)
    elif reader is None and report["slos"]:
        result.gaps.append("impact: prometheus not configured, request and error rates unknown")
    return report, result
