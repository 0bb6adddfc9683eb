"""RCA benchmark: our ranking against BARO-style, NSigma, correlation's probable origin and
random, on the same scenarios in the same run (not a test).

Two scenario families (``benchmarks.rca_scenarios``): the lab's fault kinds (several seeds,
overlapping faults, a harmless rollout as background noise) and an RCAEval-style cAdvisor
estate of our own. Every method reads the scenario's Prometheus over HTTP. Weights were
chosen on the lab family; calibration is fitted (``--fit``) on lab seeds that the report
never scores. Figures: AC@1, AC@3, Avg@5 per fault kind and overall, kind accuracy of our
top hypothesis, calibration (reliability table, ECE) and time per analysis.

Run: ``make bench-rca`` or ``.venv/bin/python -m benchmarks.bench_rca [--quick] [--fit]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from benchmarks import rca_evidence as evidence
from benchmarks.rca_scenarios import (
    Scenario,
    cadvisor_scenario,
    cadvisor_specs,
    lab_scenario,
    lab_specs,
)
from intelligence.rca.calibration import (
    FEATURES,
    Calibration,
    apply_confidence,
    reliability_table,
)
from intelligence.rca.ranking import rank_hypotheses, suspects
from intelligence.signals.types import ServiceContext
from lab.__main__ import kubeconfig

RESULTS = Path(__file__).resolve().parent.parent / "bench-results"
LEAD_S = 300.0  # the incident window opens this long before the first alert (as the run does)
BASELINE_S = 3600.0
AFTER_ALERT_S = 30.0  # the analysis runs right after the alert arrives
EVAL_LAB_SEEDS = [11, 12, 13, 14, 15, 16]
FIT_LAB_SEEDS = [101, 102, 103, 104]
EVAL_CADVISOR_SEEDS = [21, 22, 23, 24, 25, 26]
FIT_CADVISOR_SEEDS = [201, 202]
METHODS = ("ours", "baro", "nsigma", "origin", "random")


def _windows(sc: Scenario) -> tuple[float, float, float]:
    incident_start = sc.alert_at - LEAD_S
    baseline_start = max(sc.data_start, incident_start - BASELINE_S)
    return baseline_start, incident_start, sc.alert_at + AFTER_ALERT_S


def robust_baseline(
    series: dict[str, list[evidence.DerivedSeries]], incident_start: float, robust: bool
) -> list[str]:
    """BARO-style (median + IQR) or NSigma (mean + std): per metric, the largest upward z
    in the incident window against the baseline; a service scores its largest metric."""
    scores: dict[str, float] = {}
    for service, items in series.items():
        best = -np.inf
        for s in items:
            ok = np.isfinite(s.values)
            t, v = s.t[ok], s.values[ok]
            before, after = v[t < incident_start], v[t >= incident_start]
            if len(before) < 2 or len(after) == 0:
                continue
            if robust:
                q75, q25 = np.percentile(before, [75, 25])
                centre, scale = float(np.median(before)), float(q75 - q25)
            else:
                centre, scale = float(np.mean(before)), float(np.std(before))
            scale = scale if scale > 0 else 1.0  # as scikit-learn's scalers treat zero scale
            best = max(best, float(np.max((after - centre) / scale)))
        if np.isfinite(best):
            scores[service] = best
    return sorted(scores, key=lambda s: (-scores[s], s))


def ours(sc: Scenario, series: dict, incident_start: float, missing: int = 0):
    calls = 0
    if USE_PRODUCT_SIGNALS:
        with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False) as kc:
            kc.write(kubeconfig(sc.kubernetes_url or sc.prometheus_url))
        try:
            findings, _gaps, calls = evidence.product_findings(
                sc, sc.alert_at, sc.alert_at + AFTER_ALERT_S, kc.name
            )
        finally:
            os.unlink(kc.name)
    else:
        findings = evidence.metric_findings(series, incident_start)
    services = [
        ServiceContext(slug=s, labels=sc.labels.get(s, {}), depends_on=tuple(d))
        for s, d in sc.dependencies.items()
    ]
    hyps = rank_hypotheses(findings, services, probable_origin=sc.probable_origin)
    apply_confidence(hyps, missing_sources=missing, calibration=CALIBRATION)
    return suspects(hyps), findings, calls


CALIBRATION: Calibration | None = None
USE_PRODUCT_SIGNALS = evidence.product_signals_available()


def ac_at(ranked: list[str], truth: list[str], k: int) -> float:
    top = set(ranked[:k])
    return len(top & set(truth)) / min(k, len(truth))


def run_case(sc: Scenario, seed: int) -> dict:
    baseline_start, incident_start, end = _windows(sc)
    began = time.perf_counter()
    series, calls = evidence.fetch_service_series(sc.prometheus_url, sc.labels, baseline_start, end)
    fetched = time.perf_counter()
    top, findings, product_calls = ours(sc, series, incident_start)
    ranked_ours = [h.service for h in top]
    done = time.perf_counter()
    with_data = sorted(s for s, items in series.items() if items)
    rnd = random.Random(seed)
    shuffled = with_data[:]
    rnd.shuffle(shuffled)
    rankings = {
        "ours": ranked_ours,
        "baro": robust_baseline(series, incident_start, robust=True),
        "nsigma": robust_baseline(series, incident_start, robust=False),
        "origin": [sc.probable_origin] if sc.probable_origin else [],
        "random": shuffled,
    }
    return {
        "name": sc.name,
        "family": sc.family,
        "kind": sc.kind,
        "truth": sc.truth,
        "truth_kind": sc.truth_kind,
        "rankings": {m: r[:5] for m, r in rankings.items()},
        "ac": {m: [ac_at(r, sc.truth, k) for k in range(1, 6)] for m, r in rankings.items()},
        "top_kind": top[0].kind if top else None,
        "suspects": [
            {
                "service": h.service,
                "kind": h.kind,
                "confidence": h.confidence,
                "correct": h.service in sc.truth,
                "features": {f: h.features.get(f, 0.0) for f in FEATURES},
            }
            for h in top[:5]
        ],
        "fetch_s": fetched - began,
        "analysis_s": done - fetched,
        # our analysis: the product's signals + ranking, or the stand-in's reads + ranking
        "total_s": (done - fetched) if USE_PRODUCT_SIGNALS else (done - began),
        "calls": calls + product_calls,
        "findings": len(findings),
    }


def scenarios(family: str, seeds: list[int]) -> Iterator[tuple[AbstractContextManager, int]]:
    if family == "lab":
        for name, kind, faults, seed, noise in lab_specs(seeds):
            yield lab_scenario(name, kind, faults, seed, noise), seed
    else:
        for name, kind, target, seed in cadvisor_specs(seeds):
            yield cadvisor_scenario(name, kind, target, seed), seed


def run_family(family: str, seeds: list[int], log: Callable[[str], None]) -> list[dict]:
    cases = []
    for manager, seed in scenarios(family, seeds):
        with manager as sc:
            if sc is None:
                continue
            case = run_case(sc, seed)
            cases.append(case)
            mark = "ok " if case["ac"]["ours"][0] >= 1 else "MISS"
            log(
                f"{mark} {case['name']:<45} ours={case['rankings']['ours'][:3]} "
                f"baro={case['rankings']['baro'][:2]} truth={case['truth']} "
                f"{case['total_s']:.1f}s"
            )
    return cases


def summarise(cases: list[dict]) -> dict:
    out: dict = {"n": len(cases), "methods": {}, "per_kind": {}}
    for m in METHODS:
        acs = np.array([c["ac"][m] for c in cases]) if cases else np.zeros((0, 5))
        out["methods"][m] = {
            "AC@1": float(acs[:, 0].mean()) if len(acs) else 0.0,
            "AC@3": float(acs[:, 2].mean()) if len(acs) else 0.0,
            "Avg@5": float(acs.mean()) if len(acs) else 0.0,
        }
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for c in cases:
        by_kind["overlap" if "/overlap/" in c["name"] else c["kind"]].append(c)
    for kind, items in sorted(by_kind.items()):
        out["per_kind"][kind] = {
            m: {
                "n": len(items),
                "AC@1": float(np.mean([c["ac"][m][0] for c in items])),
                "AC@3": float(np.mean([c["ac"][m][2] for c in items])),
                "Avg@5": float(np.mean([np.mean(c["ac"][m]) for c in items])),
            }
            for m in METHODS
        }
    single = [c for c in cases if "/overlap/" not in c["name"]]
    out["kind_accuracy"] = (
        float(np.mean([c["top_kind"] == c["truth_kind"] for c in single if c["ac"]["ours"][0]]))
        if single
        else 0.0
    )
    top1 = [
        (c["suspects"][0]["confidence"], c["suspects"][0]["correct"])
        for c in cases
        if c["suspects"]
    ]
    rows, ece = reliability_table([x for x, _ in top1], [y for _, y in top1])
    every = [(s["confidence"], s["correct"]) for c in cases for s in c["suspects"]]
    rows_all, ece_all = reliability_table([x for x, _ in every], [y for _, y in every])
    out["calibration"] = {"top1": rows, "ece_top1": ece, "all": rows_all, "ece_all": ece_all}
    times = sorted(c["total_s"] for c in cases)
    out["time"] = {
        "mean_s": statistics.mean(times) if times else 0.0,
        "p50_s": times[len(times) // 2] if times else 0.0,
        "max_s": times[-1] if times else 0.0,
        "analysis_mean_s": statistics.mean(c["analysis_s"] for c in cases) if cases else 0.0,
    }
    return out


def fit_calibration(cases: list[dict]) -> Calibration:
    from sklearn.linear_model import LogisticRegression

    x = [[s["features"][f] for f in FEATURES] for c in cases for s in c["suspects"]]
    y = [int(s["correct"]) for c in cases for s in c["suspects"]]
    model = LogisticRegression(C=1.0, max_iter=1000).fit(np.array(x), np.array(y))
    coef = {f: float(v) for f, v in zip(FEATURES, model.coef_[0], strict=True)}
    meta = {
        "fitted": True,
        "cases": len(cases),
        "suspects": len(y),
        "lab_seeds": FIT_LAB_SEEDS,
        "cadvisor_seeds": FIT_CADVISOR_SEEDS,
        "method": "logistic regression (Platt scaling over several features), scikit-learn",
    }
    return Calibration(coef, float(model.intercept_[0]), meta)


def _table(summary: dict, title: str) -> list[str]:
    lines = [f"### {title} ({summary['n']} scenarios)", ""]
    lines.append("| method | AC@1 | AC@3 | Avg@5 | AC@1 ours / method |")
    lines.append("|---|---|---|---|---|")
    ours_ac1 = summary["methods"]["ours"]["AC@1"]
    for m in METHODS:
        r = summary["methods"][m]
        ratio = f"{ours_ac1 / r['AC@1']:.2f}x" if r["AC@1"] > 0 else "n/a"
        lines.append(f"| {m} | {r['AC@1']:.3f} | {r['AC@3']:.3f} | {r['Avg@5']:.3f} | {ratio} |")
    lines += ["", "Per fault kind (AC@1 / AC@3 / Avg@5):", ""]
    lines.append("| kind | n | " + " | ".join(METHODS) + " |")
    lines.append("|---|---|" + "---|" * len(METHODS))
    for kind, per in summary["per_kind"].items():
        cells = [
            f"{per[m]['AC@1']:.2f} / {per[m]['AC@3']:.2f} / {per[m]['Avg@5']:.2f}" for m in METHODS
        ]
        lines.append(f"| {kind} | {per['ours']['n']} | " + " | ".join(cells) + " |")
    cal = summary["calibration"]
    lines += [
        "",
        f"Kind of our top hypothesis right (when its service is): {summary['kind_accuracy']:.2f}",
        "",
        f"Calibration of our top suspect: ECE {cal['ece_top1']:.3f} "
        f"(all top-5 suspects: ECE {cal['ece_all']:.3f})",
        "",
        "| confidence bin | n | mean confidence | accuracy |",
        "|---|---|---|---|",
    ]
    for row in cal["top1"]:
        lines.append(
            f"| {row['bin']} | {row['n']} | {row['confidence']:.2f} | {row['accuracy']:.2f} |"
        )
    t = summary["time"]
    lines += [
        "",
        f"Time per analysis (data-source reads + findings + ranking): mean {t['mean_s']:.2f} s, "
        f"p50 {t['p50_s']:.2f} s, max {t['max_s']:.2f} s; ranking alone "
        f"{t['analysis_mean_s'] * 1000:.0f} ms mean (with the stand-in; with the product's "
        "signals this includes their reads)",
        "",
    ]
    return lines


def main() -> None:
    global CALIBRATION
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", action="store_true", help="fit calibration.json on fit seeds")
    parser.add_argument("--quick", action="store_true", help="two seeds per family")
    parser.add_argument(
        "--tune", action="store_true", help="score the fit seeds only (choosing weights); no files"
    )
    args = parser.parse_args()
    log = lambda text: print(text, flush=True)  # noqa: E731
    if args.fit:
        CALIBRATION = Calibration.load()
        cases = run_family("lab", FIT_LAB_SEEDS, log) + run_family(
            "cadvisor", FIT_CADVISOR_SEEDS, log
        )
        cal = fit_calibration(cases)
        cal.dump()
        print(json.dumps({"coef": cal.coef, "intercept": cal.intercept}, indent=2))
        return
    CALIBRATION = Calibration.load()
    if args.tune:
        lab_cases = run_family("lab", FIT_LAB_SEEDS, log)
        cad_cases = run_family("cadvisor", FIT_CADVISOR_SEEDS, log)
        for title, cases in (("lab (fit seeds)", lab_cases), ("cadvisor (fit seeds)", cad_cases)):
            print("\n".join(_table(summarise(cases), title)))
        return
    lab_seeds = EVAL_LAB_SEEDS[:1] if args.quick else EVAL_LAB_SEEDS
    cad_seeds = EVAL_CADVISOR_SEEDS[:2] if args.quick else EVAL_CADVISOR_SEEDS
    lab_cases = run_family("lab", lab_seeds, log)
    cad_cases = run_family("cadvisor", cad_seeds, log)
    summary = {
        "lab": summarise(lab_cases),
        "cadvisor": summarise(cad_cases),
        "all": summarise(lab_cases + cad_cases),
    }
    md = [
        "# RCA benchmark (`make bench-rca`)",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "Every method reads the same Prometheus over HTTP (one `query_range` per service by "
        "its identifying labels). Windows: incident from 5 min before the first alert's "
        "startsAt to 30 s after it, baseline up to 60 min before that (as much as exists). "
        f"Lab seeds {lab_seeds} (calibration fitted on {FIT_LAB_SEEDS}), cAdvisor seeds "
        f"{cad_seeds} (calibration on {FIT_CADVISOR_SEEDS}); ranking weights were chosen "
        "on the lab family. Baselines: BARO-style (median/IQR, max upward z), NSigma "
        "(mean/std), correlation's probable origin alone, random.",
        f"Our findings: {evidence.PRODUCT if USE_PRODUCT_SIGNALS else evidence.STAND_IN}.",
        "",
    ]
    md += _table(summary["all"], "All scenarios")
    md += _table(summary["lab"], "Lab family (every fault kind, overlaps, noise)")
    md += _table(summary["cadvisor"], "cAdvisor family (RCAEval-style, held out from tuning)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rca.md").write_text("\n".join(md))
    (RESULTS / "rca.json").write_text(
        json.dumps({"summary": summary, "cases": lab_cases + cad_cases}, indent=1, default=str)
    )
    print("\n".join(md))


if __name__ == "__main__":
    main()
