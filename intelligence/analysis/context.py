"""Who and when an analysis looks at, built from plain facts about the incident.

Windows are anchored at the first alert's ``startsAt`` (never at "now" alone): the symptom
started a little before its alert fired (rules hold for a while), so the incident window
opens ``lead`` before the anchor, and the baseline is the stretch just before that. The
baseline is as long as is available: up to ``baseline`` but never reaching back into the
previous incident of the same services, and never shorter than ``min_baseline``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from intelligence.signals.types import AnalysisContext, ServiceContext


@dataclass(frozen=True)
class AlertFacts:
    starts_at: datetime
    labels: dict[str, str]
    generator_url: str = ""
    service: str | None = None  # the slug of the service it is about, if known


@dataclass(frozen=True)
class ServiceFacts:
    slug: str
    labels: dict[str, str]
    depends_on: tuple[str, ...] = ()
    tier: int = 3
    namespace: str | None = None


@dataclass(frozen=True)
class WindowPolicy:
    lead: timedelta = timedelta(minutes=5)
    baseline: timedelta = timedelta(minutes=60)
    min_baseline: timedelta = timedelta(minutes=5)
    max_incident: timedelta = timedelta(hours=2)
    hops: int = 2
    max_services: int = 20


@dataclass(frozen=True)
class IncidentFacts:
    incident_id: int
    alerts: Sequence[AlertFacts]
    services: Sequence[str]  # the incident's own services (slugs)
    created_at: datetime
    previous_end: datetime | None = None  # end of the last earlier incident on these services


def expression_from_generator_url(url: str) -> str | None:
    """The PromQL of a Prometheus graph URL (``/graph?g0.expr=...``), else None.

    Grafana's and other sources' generator URLs point at their own UIs and carry no
    expression: the alert's own labels stand in for it then.
    """
    if not url:
        return None
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return None
    for key in sorted(query):
        if key.startswith("g") and key.endswith(".expr") and query[key][0].strip():
            return query[key][0].strip()
    return None


def neighbourhood(
    start: Iterable[str], graph: Mapping[str, Sequence[str]], hops: int
) -> dict[str, int]:
    """Each service within ``hops`` calls of ``start`` (callers and callees) and its distance."""
    undirected: dict[str, set[str]] = {s: set() for s in graph}
    for service, callees in graph.items():
        for callee in callees:
            undirected.setdefault(service, set()).add(callee)
            undirected.setdefault(callee, set()).add(service)
    dist: dict[str, int] = {}
    queue: deque[str] = deque()
    for slug in start:
        if slug not in dist:
            dist[slug] = 0
            queue.append(slug)
    while queue:
        slug = queue.popleft()
        if dist[slug] >= hops:
            continue
        for nxt in sorted(undirected.get(slug, ())):
            if nxt not in dist:
                dist[nxt] = dist[slug] + 1
                queue.append(nxt)
    return dist


def build_context(
    incident: IncidentFacts,
    services: Mapping[str, ServiceFacts],
    now: datetime,
    policy: WindowPolicy | None = None,
) -> AnalysisContext:
    """The analysis context of ``incident`` at ``now`` (plain data in, plain data out)."""
    policy = policy or WindowPolicy()
    anchor = min((a.starts_at for a in incident.alerts), default=incident.created_at)
    incident_start = anchor - policy.lead
    incident_end = max(min(now, incident_start + policy.max_incident), anchor)
    baseline_end = incident_start
    baseline_start = baseline_end - policy.baseline
    if incident.previous_end is not None and incident.previous_end > baseline_start:
        baseline_start = min(incident.previous_end, baseline_end - policy.min_baseline)

    alerting = [s for s in incident.services if s in services]
    alerting += sorted(
        {a.service for a in incident.alerts if a.service in services} - set(alerting)
    )
    graph = {slug: facts.depends_on for slug, facts in services.items()}
    dist = neighbourhood(alerting, graph, policy.hops)
    chosen = sorted(dist, key=lambda s: (dist[s], -len(graph.get(s, ())), s))
    chosen = chosen[: max(policy.max_services, len(alerting))]
    in_scope = [
        ServiceContext(
            slug=slug,
            labels=dict(services[slug].labels),
            hops=dist[slug],
            namespace=services[slug].namespace,
            depends_on=tuple(services[slug].depends_on),
        )
        for slug in chosen
        if slug in services
    ]
    expressions: list[str] = []
    labels: list[dict[str, str]] = []
    for alert in sorted(incident.alerts, key=lambda a: a.starts_at):
        expr = expression_from_generator_url(alert.generator_url)
        if expr and expr not in expressions:
            expressions.append(expr)
        if alert.labels not in labels:
            labels.append(dict(alert.labels))
    return AnalysisContext(
        incident_id=incident.incident_id,
        services=tuple(in_scope),
        incident_start=incident_start,
        incident_end=incident_end,
        baseline_start=baseline_start,
        baseline_end=baseline_end,
        trigger_expressions=tuple(expressions[:10]),
        trigger_labels=tuple(labels[:20]),
    )


def context_as_dict(context: AnalysisContext) -> dict:
    """The JSON kept on the insight: what was analysed."""
    return {
        "services": [
            {"slug": s.slug, "labels": s.labels, "hops": s.hops, "depends_on": list(s.depends_on)}
            for s in context.services
        ],
        "incident_window": [context.incident_start.isoformat(), context.incident_end.isoformat()],
        "baseline_window": [context.baseline_start.isoformat(), context.baseline_end.isoformat()],
        "trigger_expressions": list(context.trigger_expressions),
        "trigger_labels": list(context.trigger_labels),
    }
