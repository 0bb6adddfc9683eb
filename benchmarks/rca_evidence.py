"""What the benchmark reads from a scenario's Prometheus, over HTTP, as production would.

``fetch_service_series``: every series of every service, discovered by the service's
identifying labels (``{service="cart"}``), counters turned into per-second rates and
``*_sum``/``*_count`` pairs into means, summed over pods. The baselines (BARO, NSigma)
score these directly.

``metric_findings``: findings in the signals' contract (``intelligence.signals.types``)
for RCA. When the product's metric signal (``intelligence.signals.metrics``) is on main the
benchmark uses it; until then this stand-in scores each series the same general way the
issue describes (robust z against the baseline, direction, onset) so the ranking can be
measured. The benchmark's report says which one produced the findings.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from intelligence.signals.types import Finding, Pointer
from reliability.http import make_client

STEP_S = 15.0
STAND_IN = (
    "the benchmark's stand-in metric scorer (benchmarks/rca_evidence.py): the product's "
    "signals (intelligence.signals.available_signals) are not on main yet"
)
PRODUCT = (
    "the product's own signals (intelligence.signals.available_signals: metrics, logs, "
    "traces, changes, whichever the scenario serves), run on the analysis context the "
    "product builds (intelligence.analysis.context.build_context), findings ranked and cut "
    "as the run does"
)
_DROP_LABELS = {"pod", "instance", "id", "container_id", "image", "uid", "pod_ip", "le", "job"}
_COUNTER = re.compile(r"(_total|_count|_sum|_bucket)$")


@dataclass
class DerivedSeries:
    service: str
    name: str  # metric name (a rate for counters, "<base>_mean" for sum/count)
    labels: dict[str, str]
    query: str
    t: np.ndarray
    values: np.ndarray


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _rate(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dv = np.diff(v)
    dv = np.where(dv < 0, v[1:], dv)  # a counter reset
    dt = np.diff(t)
    return t[1:], dv / np.where(dt > 0, dt, 1.0)


def fetch_service_series(
    prometheus_url: str, labels: dict[str, dict[str, str]], start: float, end: float
) -> tuple[dict[str, list[DerivedSeries]], int]:
    """Per service its derived series over [start, end]; and the number of HTTP calls."""
    client = make_client("prometheus-bench", prometheus_url, timeout=30.0, retries=1)
    out: dict[str, list[DerivedSeries]] = {}
    calls = 0
    try:
        for service, ident in labels.items():
            # histogram buckets are left to the server (their sum/count pairs give means)
            matchers = [f'{k}="{v}"' for k, v in sorted(ident.items())]
            selector = "{" + ",".join([*matchers, '__name__!~".*_bucket"']) + "}"
            body = client.get_json(
                "/api/v1/query_range",
                {"query": selector, "start": start, "end": end, "step": STEP_S},
            )
            calls += 1
            groups: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
            for r in body.get("data", {}).get("result", []):
                metric = dict(r["metric"])
                name = metric.pop("__name__", "")
                if not name or name.endswith("_bucket") or name in ("up", "ALERTS"):
                    continue
                if metric.get("alertstate"):
                    continue
                key_labels = tuple(
                    sorted((k, v) for k, v in metric.items() if k not in _DROP_LABELS)
                )
                t = np.array([float(p[0]) for p in r["values"]])
                v = np.array([float(p[1]) for p in r["values"]])
                if _COUNTER.search(name):
                    t, v = _rate(t, v)
                groups[(name, key_labels)].append((t, v))
            series: dict[tuple, DerivedSeries] = {}
            for (name, key_labels), parts in groups.items():
                grid = np.unique(np.concatenate([p[0] for p in parts]))
                total = np.zeros(len(grid))
                for t, v in parts:
                    total[np.searchsorted(grid, t)] += v
                lbl = dict(key_labels)
                inner = ",".join(f'{k}="{v}"' for k, v in sorted({**ident, **lbl}.items()))
                query = (
                    f"sum(rate({name}{{{inner}}}[1m]))"
                    if _COUNTER.search(name)
                    else f"sum({name}{{{inner}}})"
                )
                series[(name, key_labels)] = DerivedSeries(service, name, lbl, query, grid, total)
            # means of sum/count pairs (latency of a *_seconds summary or histogram)
            for (name, key_labels), s in list(series.items()):
                if not name.endswith("_sum"):
                    continue
                base = name[: -len("_sum")]
                count = series.get((base + "_count", key_labels))
                if count is None or len(count.t) != len(s.t):
                    continue
                with np.errstate(divide="ignore", invalid="ignore"):
                    mean = np.where(count.values > 0, s.values / count.values, np.nan)
                series[(base + "_mean", key_labels)] = DerivedSeries(
                    service,
                    base + "_mean",
                    s.labels,
                    f"{s.query} / {count.query}",
                    s.t,
                    mean,
                )
            out[service] = list(series.values())
    finally:
        client.close()
    return out, calls


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(x - median) / robust scale of ``reference`` (max of MAD and IQR, floored at 1 % of
    the magnitude so a flat zero baseline cannot divide by zero)."""
    med = float(np.median(reference))
    mad = 1.4826 * float(np.median(np.abs(reference - med)))
    q75, q25 = np.percentile(reference, [75, 25])
    magnitude = float(np.percentile(np.abs(values), 90)) if len(values) else 0.0
    scale = max(mad, float(q75 - q25) / 1.349, 0.01 * abs(med), 0.01 * magnitude, 1e-12)
    return (values - med) / scale


def _onset(t: np.ndarray, z: np.ndarray, sign: float, threshold: float = 3.0) -> int | None:
    """The first index from which the series stays beyond the threshold most of the time."""
    beyond = (sign * z) >= threshold
    if not beyond.any():
        return None
    # suffix share of points beyond: the earliest start where >= 80 % of the rest is beyond
    rest = np.cumsum(beyond[::-1])[::-1] / np.arange(len(beyond), 0, -1)
    ok = np.flatnonzero(beyond & (rest >= 0.8))
    return int(ok[0]) if len(ok) else None


def metric_findings(
    series: dict[str, list[DerivedSeries]], incident_start: float, min_score: float = 0.3
) -> list[Finding]:
    """Stand-in metric signal: one finding per abnormal series (see module docstring)."""
    findings = []
    for service, items in series.items():
        for s in items:
            ok = np.isfinite(s.values)
            t, v = s.t[ok], s.values[ok]
            before = t < incident_start
            if before.sum() < 4 or (~before).sum() < 2 or np.ptp(v) == 0:
                continue
            z = robust_z(v, v[before])
            level = float(np.median(z[~before][-max(3, (~before).sum() // 2) :]))
            sign = 1.0 if level >= 0 else -1.0
            start = _onset(t, z, sign)
            if start is not None and t[start] < incident_start and before[: start + 1].sum() >= 4:
                # the change began inside the baseline: compare with what came before it
                z = robust_z(v, v[:start])
                level = float(np.median(z[~before][-max(3, (~before).sum() // 2) :]))
                start = _onset(t, z, sign)
            if not math.isfinite(level):
                continue
            score = abs(level) / (abs(level) + 3.0)
            if score < min_score:
                continue
            onset = float(t[start]) if start is not None else None
            findings.append(
                Finding(
                    kind="metric_anomaly",
                    service=service,
                    score=score,
                    title=f"{s.name} {'up' if sign > 0 else 'down'} (z={level:.1f})",
                    pointer=Pointer(
                        "prometheus",
                        s.query,
                        _utc(float(t[0])),
                        _utc(float(t[-1])),
                        STEP_S,
                    ),
                    onset=_utc(onset) if onset is not None else None,
                    details={
                        "metric": s.name,
                        "labels": s.labels,
                        "direction": "up" if sign > 0 else "down",
                        "z": round(level, 3),
                    },
                )
            )
    return findings


def product_signals_available() -> bool:
    try:
        from intelligence.signals import available_signals  # noqa: F401
    except ImportError:
        return False
    return True


def product_findings(
    scenario, alert_at: float, now: float, kubeconfig_path: str | None
) -> tuple[list[Finding], list[str], int]:
    """The findings the product's analysis run would gather for this scenario's incident:
    its signals on the context it builds from the alert, ranked and cut like the run.
    Returns (findings, gaps and skipped sources, data-source calls)."""
    from intelligence.analysis.context import (
        AlertFacts,
        IncidentFacts,
        ServiceFacts,
        WindowPolicy,
        build_context,
    )
    from intelligence.analysis.run import rank
    from intelligence.signals import available_signals

    config = {"PROMETHEUS_URL": scenario.prometheus_url}
    if scenario.kubernetes_url:  # the lab serves Loki, Tempo and Kubernetes on one port
        config.update(LOKI_URL=scenario.kubernetes_url, TEMPO_URL=scenario.kubernetes_url)
        config["KUBECONFIG"] = kubeconfig_path or ""
    signals, skipped = available_signals(config)
    alerts = [
        AlertFacts(
            starts_at=_utc(alert_at),
            labels={"alertname": "Symptom", **scenario.labels.get(s, {"service": s})},
            service=s,
        )
        for s in scenario.alerting
    ]
    services = {
        s: ServiceFacts(slug=s, labels=scenario.labels.get(s, {"service": s}), depends_on=tuple(d))
        for s, d in scenario.dependencies.items()
    }
    facts = IncidentFacts(
        incident_id=1, alerts=alerts, services=scenario.alerting[:1], created_at=_utc(alert_at)
    )
    context = build_context(facts, services, _utc(now), WindowPolicy())
    findings: list[Finding] = []
    gaps = list(skipped)
    calls = 0
    for signal in signals:
        try:
            result = signal.collect(context)
        except Exception as exc:  # the run records a failed step as a gap; so do we
            gaps.append(f"{signal.name}: failed ({type(exc).__name__}: {exc})")
            continue
        findings += result.findings
        gaps += result.gaps
        calls += result.calls
    hops = {s.slug: s.hops for s in context.services}
    return rank(findings, hops), gaps, calls
