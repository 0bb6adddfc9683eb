"""Fetch a service's logs for the baseline and incident windows and build log evidence."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from intelligence.clients.loki import LokiClient, to_ns
from intelligence.logpatterns.evidence import EvidenceConfig, analyse_windows
from intelligence.logpatterns.masking import WILDCARD
from reliability.http import DataSourceError

Window = tuple[datetime | float | int, datetime | float | int]


def collect_log_evidence(
    loki: LokiClient,
    query: str,
    baseline: Window,
    incident: Window,
    *,
    state: dict[str, Any] | None = None,
    config: EvidenceConfig | None = None,
    limit: int = 5000,
    max_lines: int = 100_000,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Findings (plain dicts, ranked) and the service's new normal state (baseline-learned).

    Every finding points back to the Loki query and both windows (ns epoch), so the UI can
    open exactly the lines it was computed from.
    """
    base = loki.query_range(query, *baseline, limit=limit, max_lines=max_lines)
    inc = loki.query_range(query, *incident, limit=limit, max_lines=max_lines)
    source = {
        "datasource": "loki",
        "loki_query": query,
        "start": to_ns(incident[0]),  # the incident window, as a Loki query_range would take
        "end": to_ns(incident[1]),
        "baseline": _window(baseline, base, max_lines),
        "incident": _window(incident, inc, max_lines),
    }
    findings, new_state = analyse_windows(
        [e.as_record() for e in base],
        [e.as_record() for e in inc],
        baseline_range=(to_ns(baseline[0]), to_ns(baseline[1])),
        incident_range=(to_ns(incident[0]), to_ns(incident[1])),
        state=state,
        source=source,
        config=config,
    )
    out = []
    for f in findings:
        d = f.as_dict()
        d["source"]["drilldown_query"] = drilldown_query(query, f.template)
        out.append(d)
    return out, new_state


def _window(window: Window, lines: list, max_lines: int) -> dict[str, Any]:
    out: dict[str, Any] = {"start": to_ns(window[0]), "end": to_ns(window[1]), "lines": len(lines)}
    if len(lines) >= max_lines:
        out["truncated"] = True  # counts are a lower bound: Loki had more lines than we read
    return out


def drilldown_query(query: str, template: str) -> str:
    """The stream query narrowed to one pattern by its longest constant token.

    A single token is used because the miner splits on any whitespace run, so a phrase
    of several tokens might not occur verbatim in the raw line.
    """
    constants = [t for t in template.split() if WILDCARD not in t]
    if not constants:
        return query
    return f"{query} |= {json.dumps(max(constants, key=len))}"


def log_evidence_entry(
    loki: LokiClient,
    query: str,
    baseline: Window,
    incident: Window,
    *,
    state: dict[str, Any] | None = None,
    config: EvidenceConfig | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The ``"logs"`` entry of ``Insight.evidence`` and the new miner state (None on failure).

    An unreachable Loki is not an analysis failure: the entry records the gap (so the
    insight can be marked partial) and the persisted state is left as it was.
    """
    try:
        findings, new_state = collect_log_evidence(
            loki, query, baseline, incident, state=state, config=config
        )
    except DataSourceError as exc:
        return {
            "status": "unavailable",
            "datasource": exc.name,
            "reason": exc.reason,
            "loki_query": query,
            "findings": [],
        }, None
    return {"status": "ok", "loki_query": query, "findings": findings}, new_state
