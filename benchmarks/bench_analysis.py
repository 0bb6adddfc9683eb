"""Incident analysis on lab scenarios: how fast, how many data-source calls, and whether the
evidence for the true root cause is in the top 3 findings.

Every fault kind (``python -m lab faults``) on several seeds, its target drawn per seed
from the services the kind applies to, plus scenarios where two faults overlap. For each,
a lab with the fault already under way serves Prometheus, Loki, Tempo and Kubernetes on
loopback; its firing alerts (``/lab/alerts``, Alertmanager webhooks) are posted to the
product, which correlates them into incidents and analyses each one (the product's own
path: webhook → correlation → ``incident_activity`` → analysis run, eager, on
PostgreSQL). Measured per incident: open → first insight (first finding stored), open →
analysis complete, data-source calls and their time. Ground truth: ``/lab/ground_truth``.

Baseline, side by side: "alerts only": without an analysis, the three services a
responder sees first (the incident's alerting services in alert order) as the top 3.
Targets (issue 9): first insight < 10 s and complete < 30 s at p99, top-3 ≥ 95 %.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-results"
SEEDS = (3, 11, 29)
FAULT_AGE = "-12m"  # the fault started this long before the alerts are posted
OVERLAPS = (
    ("bad_deploy:payments@-12m", "cpu_saturation:search@-10m"),
    ("slow_dependency:inventory@-12m", "cache_failure:cache@-9m"),
    ("memory_leak:cart@-14m", "noisy_neighbour:catalog@-11m"),
)
TARGETS = {"first_insight_s": 10.0, "complete_s": 30.0, "top3": 0.95}


@dataclass
class IncidentRun:
    scenario: str
    incident: str
    services: list[str]
    status: str
    first_insight_s: float | None
    complete_s: float | None
    calls: int
    call_seconds: float
    findings: int
    top3: list[str]
    gaps: list[str]


@dataclass
class Scenario:
    name: str
    seed: int
    faults: list[str]
    truth: list[str] = field(default_factory=list)
    incidents: list[IncidentRun] = field(default_factory=list)
    hit: bool = False
    baseline_hit: bool = False
    error: str | None = None


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reliability.settings")
    os.environ.setdefault("THROTTLE_INTEGRATION_RATE", "1000000/min")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ["ANALYSIS_IN_THREAD"] = "false"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from incidents.demo import load_demo

    load_demo()


def scenarios(seeds: Sequence[int], overlaps: bool = True) -> list[tuple[str, int, list[str]]]:
    """Each fault kind on each seed (a target valid for the kind, drawn by the seed)."""
    from lab.estate import load_estate
    from lab.faults import KINDS, FaultSpec

    out = []
    for seed in seeds:
        estate = load_estate(seed=seed)
        rng = random.Random(seed)
        for kind in KINDS:
            names = sorted(estate.services)
            rng.shuffle(names)
            for name in names:
                spec = f"{kind}:{name}@{FAULT_AGE}"
                try:
                    FaultSpec.parse(spec).validate(estate)
                except ValueError:
                    continue
                out.append((f"{kind}:{name}/s{seed}", seed, [spec]))
                break
    if overlaps:
        for i, pair in enumerate(OVERLAPS):
            seed = seeds[i % len(seeds)]
            out.append(("+".join(p.split("@")[0] for p in pair) + f"/s{seed}", seed, list(pair)))
    return out


def _clear_incidents() -> None:
    from incidents.models import Alert, Incident

    Alert.objects.all().delete()
    Incident.objects.all().delete()


def run_scenario(name: str, seed: int, faults: list[str]) -> Scenario:
    from django.test import Client, override_settings

    from incidents.models import Incident, Integration
    from intelligence.models import Insight
    from lab.testing import running_lab
    from reliability.http import reset_breakers

    result = Scenario(name, seed, faults)
    _clear_incidents()
    reset_breakers()
    with running_lab(seed=seed, duration_s=3600, faults=faults) as lab:
        url = lab.base_url
        truth = httpx.get(f"{url}/lab/ground_truth", timeout=10).json()
        truth = truth.get("faults", truth) if isinstance(truth, dict) else truth
        result.truth = sorted({t["root_cause"]["service"] for t in truth})
        payloads = httpx.get(f"{url}/lab/alerts", timeout=10).json()
        integration = Integration.objects.get(name="lab")
        client = Client()
        with override_settings(
            PROMETHEUS_URL=url, LOKI_URL=url, TEMPO_URL=url, KUBECONFIG=_kubeconfig(url)
        ):
            for payload in sorted(payloads, key=_first_start):
                response = client.post(
                    f"/api/v1/ingest/{integration.token}/",
                    data=json.dumps(payload),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {integration.secret}",
                )
                if response.status_code != 200:
                    result.error = f"webhook {response.status_code}: {response.content[:200]!r}"
    for incident in Incident.objects.prefetch_related("services", "alerts").order_by("pk"):
        runs = list(Insight.objects.filter(incident=incident).order_by("pk"))
        if not runs:
            continue
        first = runs[0]
        latest = next((r for r in reversed(runs) if r.status in ("complete", "partial")), first)
        alerting = [
            a.service.slug for a in incident.alerts.order_by("starts_at", "pk") if a.service
        ]
        result.incidents.append(
            IncidentRun(
                scenario=name,
                incident=incident.reference,
                services=list(dict.fromkeys(alerting)),
                status=first.status,
                first_insight_s=_since(incident.created_at, first.first_finding_at),
                complete_s=_since(incident.created_at, first.finished_at),
                calls=first.calls,
                call_seconds=first.call_seconds,
                findings=len(latest.findings),
                top3=[f["service"] for f in latest.findings[:3]],
                gaps=first.gaps,
            )
        )
    result.hit = bool(result.truth) and all(
        any(root in run.top3 for run in _holding(result.incidents, root)) for root in result.truth
    )
    result.baseline_hit = bool(result.truth) and all(
        any(root in run.services[:3] for run in _holding(result.incidents, root))
        for root in result.truth
    )
    return result


def _holding(runs: list[IncidentRun], root: str) -> list[IncidentRun]:
    """The incidents that hold the root cause's alerts, else the largest one."""
    holding = [r for r in runs if root in r.services]
    if holding:
        return holding
    return sorted(runs, key=lambda r: -len(r.services))[:1]


def _kubeconfig(url: str) -> str:
    from lab.__main__ import kubeconfig

    path = ROOT / ".run" / "bench-analysis-kubeconfig"
    path.parent.mkdir(exist_ok=True)
    path.write_text(kubeconfig(url))
    return str(path)


def _first_start(payload: dict) -> str:
    return min(a["startsAt"] for a in payload["alerts"])


def _since(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else max((end - start).total_seconds(), 0.0)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(results: list[Scenario]) -> dict:
    runs = [r for s in results for r in s.incidents]
    first = [r.first_insight_s for r in runs if r.first_insight_s is not None]
    done = [r.complete_s for r in runs if r.complete_s is not None]
    scored = [s for s in results if s.truth and s.incidents]
    return {
        "scenarios": len(results),
        "incidents": len(runs),
        "first_insight_s": {
            "p50": _pct(first, 50),
            "p99": _pct(first, 99),
            "max": _pct(first, 100),
        },
        "complete_s": {"p50": _pct(done, 50), "p99": _pct(done, 99), "max": _pct(done, 100)},
        "no_insight": sum(r.first_insight_s is None for r in runs),
        "calls_per_run": statistics.mean(r.calls for r in runs) if runs else None,
        "call_seconds_per_run": statistics.mean(r.call_seconds for r in runs) if runs else None,
        "partial_runs": sum(r.status == "partial" for r in runs),
        "top3": sum(s.hit for s in scored) / len(scored) if scored else None,
        "baseline_top3": sum(s.baseline_hit for s in scored) / len(scored) if scored else None,
        "targets": TARGETS,
    }


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def markdown(results: list[Scenario], totals: dict, command: str) -> str:
    lines = [
        "# bench-analysis: incident analysis on lab scenarios",
        "",
        f"`{command}` — measured {datetime.now().astimezone().isoformat(timespec='seconds')}.",
        "",
        "Each scenario: a lab with the fault(s) under way for ~12 min, its firing alerts posted",
        "as Alertmanager webhooks; correlation and analysis run in the product (eager, on",
        "PostgreSQL; signals from the configured lab Prometheus/Loki/Tempo/Kubernetes).",
        'Baseline "alerts only": the incident\'s first three alerting services as the top 3.',
        "",
        "| measure | ours | baseline (alerts only) | target |",
        "|---|---|---|---|",
        f"| root cause in top 3 findings | {_fmt(totals['top3'])} | "
        f"{_fmt(totals['baseline_top3'])} | ≥ {TARGETS['top3']} |",
        f"| open → first insight p50 / p99 (s) | {_fmt(totals['first_insight_s']['p50'])} / "
        f"{_fmt(totals['first_insight_s']['p99'])} | no analysis | "
        f"< {TARGETS['first_insight_s']} |",
        f"| open → complete p50 / p99 (s) | {_fmt(totals['complete_s']['p50'])} / "
        f"{_fmt(totals['complete_s']['p99'])} | no analysis | < {TARGETS['complete_s']} |",
        f"| data-source calls per run (mean) | {_fmt(totals['calls_per_run'])} | 0 | |",
        f"| time in data-source calls per run (s, mean) | "
        f"{_fmt(totals['call_seconds_per_run'])} | 0 | |",
        f"| incidents / partial runs / without insight | {totals['incidents']} / "
        f"{totals['partial_runs']} / {totals['no_insight']} | | |",
        "",
        "## Scenarios",
        "",
        "| scenario | truth | incidents | top 3 (first incident holding it) | hit | baseline | "
        "first s | complete s | calls |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results:
        holding = [r for root in s.truth for r in _holding(s.incidents, root)][:1]
        main = holding[0] if holding else None
        lines.append(
            f"| {s.name} | {', '.join(s.truth)} | {len(s.incidents)} | "
            f"{', '.join(main.top3) if main else s.error or '-'} | {'yes' if s.hit else 'no'} | "
            f"{'yes' if s.baseline_hit else 'no'} | "
            f"{_fmt(main.first_insight_s) if main else '-'} | "
            f"{_fmt(main.complete_s) if main else '-'} | {main.calls if main else '-'} |"
        )
    gaps = sorted({g for s in results for r in s.incidents for g in r.gaps})
    if gaps:
        lines += ["", "## Gaps seen", ""] + [f"- {g}" for g in gaps[:20]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    parser.add_argument("--kinds", nargs="*", help="only these fault kinds")
    parser.add_argument("--no-overlaps", action="store_true")
    args = parser.parse_args(argv)
    _setup()
    cases = scenarios(args.seeds, overlaps=not args.no_overlaps)
    if args.kinds:
        cases = [c for c in cases if c[0].split(":")[0] in args.kinds]
    results = []
    for name, seed, faults in cases:
        began = time.monotonic()
        try:
            scenario = run_scenario(name, seed, faults)
        except Exception as exc:  # one broken scenario is reported, not fatal
            scenario = Scenario(name, seed, faults, error=f"{type(exc).__name__}: {exc}")
        results.append(scenario)
        main_runs = [r for root in scenario.truth for r in _holding(scenario.incidents, root)]
        print(
            f"{name:45s} truth={','.join(scenario.truth):20s} "
            f"top3={main_runs[0].top3 if main_runs else '-'} hit={scenario.hit} "
            f"({time.monotonic() - began:.0f} s){' ' + scenario.error if scenario.error else ''}",
            flush=True,
        )
    totals = summary(results)
    command = "make bench-analysis" + (f" BENCH_ARGS='{' '.join(argv)}'" if argv else "")
    OUT.mkdir(exist_ok=True)
    (OUT / "analysis.json").write_text(
        json.dumps(
            {"summary": totals, "scenarios": [asdict(s) for s in results]}, indent=2, default=str
        )
    )
    (OUT / "analysis.md").write_text(markdown(results, totals, command))
    print(json.dumps(totals, indent=2))


if __name__ == "__main__":
    main()
