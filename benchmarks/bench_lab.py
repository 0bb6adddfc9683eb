"""How fast the lab generates history: a 2-hour window of the default 12-service estate
(with two overlapping faults), reported as samples/s, log lines/s and spans/s.

    make bench-lab            or    .venv/bin/python -m benchmarks.bench_lab [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from lab.sim import build_history

END = 1_795_000_050.0 // 15 * 15
FAULTS = ["bad_deploy:payments@-20m", "memory_leak:cart@-45m"]


def run_once(duration_s: float, seed: int) -> dict:
    started = time.perf_counter()
    lab = build_history(seed, duration_s, FAULTS, end=END)
    elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "series": len(lab.tsdb),
        "samples": lab.samples,
        "log_lines": lab.logs.count,
        "spans": lab.traces.span_count,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=7200.0)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    runs = [run_once(args.duration, args.seed) for _ in range(args.runs)]
    best = min(runs, key=lambda r: r["seconds"])
    median = statistics.median(r["seconds"] for r in runs)
    result = {
        "window_s": args.duration,
        "services": 12,
        "step_s": 15,
        "runs": args.runs,
        "median_seconds": round(median, 3),
        "best_seconds": round(best["seconds"], 3),
        "series": best["series"],
        "samples": best["samples"],
        "log_lines": best["log_lines"],
        "spans": best["spans"],
        "samples_per_s": round(best["samples"] / median),
        "log_lines_per_s": round(best["log_lines"] / median),
        "spans_per_s": round(best["spans"] / median),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
