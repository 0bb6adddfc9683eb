"""Benchmark: our log template miner against drain3 on the Loghub-2k systems.

Both tools get the same header extraction (the system's ``log_format``) and are scored by
our own GA/FGA/PA/FTA scorer. drain3 runs with its default ``TemplateMinerConfig`` twice:
once as shipped (no masking) and once with our generic masking plugged in as a masking
instruction, so the comparison isolates the mining algorithm. Throughput is lines/s of the
mining step only (CPU time, tools interleaved, best of ``--repeat`` runs, header extraction
excluded for all).

Run: ``.venv/bin/python -m benchmarks.bench_logs [--data DIR] [--out bench-results]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from intelligence.logpatterns.headers import compile_log_format
from intelligence.logpatterns.masking import Masker
from intelligence.logpatterns.miner import MinerConfig, TemplateMiner
from intelligence.logpatterns.scoring import Scores, read_truth, score

ROOT = Path(__file__).resolve().parent.parent


def _default_data() -> Path:
    """``$LOGHUB2K_DIR``, else ``shared/data/loghub2k`` beside the nearest ancestor that has
    one (the main checkout and every worktree below it find the same folder)."""
    env = os.environ.get("LOGHUB2K_DIR")
    if env:
        return Path(env)
    for base in ROOT.parents:
        candidate = base / "shared" / "data" / "loghub2k"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "data" / "loghub2k"


DEFAULT_DATA = _default_data()

Predictor = Callable[[list[str]], tuple[list[str], list[str]]]


def run_ours(contents: list[str], config: MinerConfig | None = None) -> tuple[list[str], list[str]]:
    """Our miner: stream every message, then resolve each line to its final template."""
    miner = TemplateMiner(config or MinerConfig())
    ids = miner.add_many(contents)
    final: dict[str, tuple[str, str]] = {}  # each distinct id is resolved once
    for tid in set(ids):
        tpl = miner.template_of(tid)
        final[tid] = (tpl.id, tpl.text) if tpl else (tid, "")
    return [final[t][0] for t in ids], [final[t][1] for t in ids]


def _drain(masking: bool, tuned: dict | None = None) -> Predictor:
    """drain3 with defaults; ``masking`` plugs in our masker; ``tuned`` = a settings.json
    entry whose published per-system regexes, ``st`` and ``depth`` are used instead."""
    from drain3 import TemplateMiner as DrainMiner
    from drain3.masking import AbstractMaskingInstruction, MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    class OurMasking(AbstractMaskingInstruction):
        """Our generic token masking, exposed to drain3 as one masking instruction."""

        def __init__(self) -> None:
            super().__init__("*")
            self.masker = Masker()

        def mask(self, content: str, mask_prefix: str, mask_suffix: str) -> str:
            return " ".join(self.masker.mask_key(content))

    def run(contents: list[str]) -> tuple[list[str], list[str]]:
        config = TemplateMinerConfig()  # defaults: sim_th 0.4, depth 4, max_children 100
        config.profiling_enabled = False
        if masking:
            config.masking_instructions = [OurMasking()]
        if tuned is not None:
            config.drain_sim_th = tuned["st"]
            config.drain_depth = tuned["depth"]
            config.masking_instructions = [MaskingInstruction(r, "*") for r in tuned["regex"]]
        miner = DrainMiner(config=config)
        ids = [miner.add_log_message(c)["cluster_id"] for c in contents]
        final = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
        return [str(i) for i in ids], [final[i] for i in ids]

    return run


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


@dataclass
class Row:
    system: str
    tool: str
    scores: Scores
    lines_per_s: float


def load_system(cfg: dict, data: Path) -> tuple[list[str], list[str]]:
    """A system's messages (header cut off by its ``log_format``) and true templates."""
    log_file = data / cfg["log_file"]
    header = compile_log_format(cfg["log_format"])
    with log_file.open(encoding="utf-8", errors="replace") as fh:
        contents = [header.content(line.rstrip("\r\n")) for line in fh]
    return contents, read_truth(log_file.with_name(log_file.name + "_structured.csv"))


def bench_system(
    name: str, cfg: dict, data: Path, tools: dict[str, Predictor], repeat: int
) -> list[Row]:
    contents, truth = load_system(cfg, data)
    best = dict.fromkeys(tools, float("inf"))
    results: dict[str, tuple[list[str], list[str]]] = {}
    # Interleave the tools and count CPU time of this process, so load from other processes
    # on a shared machine skews every tool alike (best of ``repeat``).
    for _ in range(repeat):
        for tool, fn in tools.items():
            t0 = time.process_time()
            results[tool] = fn(contents)
            best[tool] = min(best[tool], time.process_time() - t0)
    rows = []
    for tool in tools:
        lines_per_s = len(contents) / max(best[tool], 1e-9)
        rows.append(Row(name, tool, score(truth, *results[tool]), lines_per_s))
    return rows


# The miner's evidence parameters and the values leave-one-out may choose among. The
# shipped default is one point of this grid; the grid is small on purpose.
GRID: dict[str, tuple[float, ...]] = {
    "min_distinct": (2, 3, 4),
    "min_distinct_code": (4, 8),
    "min_distinct_role": (2, 3),
    "min_constant_share": (0.25, 0.34, 0.5),
}


def grid_configs() -> list[dict[str, float]]:
    """Every combination of ``GRID``, the shipped default first (it wins ties)."""
    default = MinerConfig()
    combos: list[dict[str, float]] = [{}]
    for name, values in GRID.items():
        combos = [{**c, name: v} for c in combos for v in values]
    combos.sort(key=lambda c: c != {k: getattr(default, k) for k in GRID})
    return combos


@dataclass
class LooRow:
    held_out: str
    chosen: dict[str, float]
    train_ga: float
    scores: Scores


def leave_one_out(matrix: list[dict[str, Scores]], configs: list[dict[str, float]]) -> list[LooRow]:
    """For each system: choose the config with the best mean GA (then PA) on the others,
    and report what that config scores on the held-out system.

    ``matrix[i][system]`` is config ``i``'s score; earlier configs win ties. The held-out
    system's own scores never enter its choice.
    """
    systems = list(matrix[0])
    out = []
    for held in systems:
        train = [s for s in systems if s != held]

        def mean(i: int, train: list[str] = train) -> tuple[float, float]:
            ga = sum(matrix[i][s].ga for s in train) / len(train)
            pa = sum(matrix[i][s].pa for s in train) / len(train)
            return (round(ga, 9), round(pa, 9))

        best = max(range(len(configs)), key=lambda i: (mean(i), -i))
        out.append(LooRow(held, configs[best], mean(best)[0], matrix[best][held]))
    return out


def run_loo(corpora: dict[str, tuple[list[str], list[str]]]) -> list[LooRow]:
    """Score every grid config on every system, then leave one system out at a time."""
    configs = grid_configs()
    matrix = []
    for params in configs:
        config = MinerConfig(**params)  # type: ignore[arg-type]
        matrix.append(
            {
                name: score(truth, *run_ours(contents, config))
                for name, (contents, truth) in corpora.items()
            }
        )
    return leave_one_out(matrix, configs)


def render_loo(rows: list[LooRow]) -> str:
    default = MinerConfig()
    head = "| held-out system | parameters chosen on the other seven | train GA | GA | PA |"
    out = [head, "|---|---|---:|---:|---:|"]
    for r in rows:
        changed = {k: v for k, v in r.chosen.items() if getattr(default, k) != v}
        params = ", ".join(f"{k}={v}" for k, v in changed.items()) or "shipped default"
        out.append(
            f"| {r.held_out} | {params} | {r.train_ga:.3f} | {r.scores.ga:.3f} | "
            f"{r.scores.pa:.3f} |"
        )
    n = len(rows)
    out.append(
        f"| **mean** | | | **{sum(r.scores.ga for r in rows) / n:.3f}** | "
        f"**{sum(r.scores.pa for r in rows) / n:.3f}** |"
    )
    return "\n".join(out)


def few_values_variant(
    contents: list[str], truth: list[str], keep: int = 2, seed: int = 1
) -> list[str]:
    """The same lines with every variable of every true template limited to the first
    ``keep`` values it took (later lines reuse one of them at random).

    This is how many variables look in a 2,000-line sample of an unseen system: two or
    three distinct values, which a miner must still recognise as one variable. Lines whose
    text does not fit their template are left as they are.
    """
    rng = random.Random(seed)
    patterns: dict[str, re.Pattern[str]] = {}
    pools: dict[tuple[str, int], list[str]] = {}
    out = []
    for line, template in zip(contents, truth, strict=True):
        rx = patterns.get(template)
        if rx is None:
            parts = [re.escape(p) for p in " ".join(template.split()).split("<*>")]
            body = "(.*?)".join(parts).replace(r"\ ", r"\s+")
            rx = patterns[template] = re.compile(r"\s*" + body + r"\s*$", re.S)
        m = rx.match(line)
        if m is None or not m.groups():
            out.append(line)
            continue
        pieces, last = [], 0
        for i, value in enumerate(m.groups()):
            pool = pools.setdefault((template, i), [])
            if value not in pool and len(pool) < keep:
                pool.append(value)
            pieces += [line[last : m.start(i + 1)], value if value in pool else rng.choice(pool)]
            last = m.end(i + 1)
        out.append("".join(pieces) + line[last:])
    return out


def run_synthetic(tools: dict[str, Predictor]) -> list[Row]:
    """Accuracy on the generated systems of ``synthetic_logs`` (no throughput)."""
    from benchmarks.synthetic_logs import SYSTEMS, generate

    rows = []
    for name in SYSTEMS:
        contents, truth = generate(name)
        for tool, fn in tools.items():
            rows.append(Row(name, tool, score(truth, *fn(contents)), 0.0))
    return rows


def render_accuracy(rows: list[Row], tools: list[str]) -> str:
    """GA/PA per system and tool, with the mean."""
    systems = list(dict.fromkeys(r.system for r in rows))
    cell = {(r.system, r.tool): r.scores for r in rows}
    out = [
        "| system | " + " | ".join(f"{t} GA | {t} PA" for t in tools) + " |",
        "|---|" + "---:|" * (2 * len(tools)),
    ]
    for s in systems:
        out.append(
            f"| {s} | "
            + " | ".join(f"{cell[(s, t)].ga:.3f} | {cell[(s, t)].pa:.3f}" for t in tools)
            + " |"
        )
    n = len(systems)
    out.append(
        "| **mean** | "
        + " | ".join(
            f"**{sum(cell[(s, t)].ga for s in systems) / n:.3f}** | "
            f"**{sum(cell[(s, t)].pa for s in systems) / n:.3f}**"
            for t in tools
        )
        + " |"
    )
    return "\n".join(out)


def render(rows: list[Row], tools: list[str]) -> str:
    systems = list(dict.fromkeys(r.system for r in rows))
    cell = {(r.system, r.tool): r for r in rows}
    head = (
        "| system | " + " | ".join(f"{t} GA | {t} FGA | {t} PA | {t} lines/s" for t in tools) + " |"
    )
    sep = "|---|" + "---:|" * (4 * len(tools))
    out = [head, sep]
    avgs: dict[str, list[float]] = {t: [0.0, 0.0, 0.0, 0.0] for t in tools}
    for s in systems:
        parts = []
        for t in tools:
            r = cell[(s, t)]
            parts.append(
                f"{r.scores.ga:.3f} | {r.scores.fga:.3f} | {r.scores.pa:.3f} | {r.lines_per_s:,.0f}"
            )
            for i, v in enumerate((r.scores.ga, r.scores.fga, r.scores.pa, r.lines_per_s)):
                avgs[t][i] += v / len(systems)
        out.append(f"| {s} | " + " | ".join(parts) + " |")
    out.append(
        "| **average** | "
        + " | ".join(
            f"**{a[0]:.3f}** | **{a[1]:.3f}** | **{a[2]:.3f}** | **{a[3]:,.0f}**"
            for a in avgs.values()
        )
        + " |"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Loghub-2k folder")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results")
    ap.add_argument("--repeat", type=int, default=5, help="best-of runs for lines/s")
    ap.add_argument("--systems", nargs="*", help="subset of systems (default: all in --data)")
    args = ap.parse_args(argv)

    settings = json.loads((args.data / "settings.json").read_text())["systems"]
    tools: dict[str, Predictor] = {
        "ours": run_ours,
        "drain3+mask": _drain(masking=True),
        "drain3": _drain(masking=False),
    }
    rows: list[Row] = []
    for name, cfg in settings.items():
        if args.systems and name not in args.systems:
            continue
        if not (args.data / cfg["log_file"]).is_file():
            continue
        per_system = {**tools, "drain3-tuned": _drain(masking=False, tuned=cfg)}
        rows.extend(bench_system(name, cfg, args.data, per_system, args.repeat))
        print(f"  {name}: done", file=sys.stderr)
    if not rows:
        print(f"no Loghub systems found under {args.data}", file=sys.stderr)
        return 1
    table = render(rows, [*tools, "drain3-tuned"])
    corpora = {
        name: load_system(cfg, args.data)
        for name, cfg in settings.items()
        if name in {r.system for r in rows}
    }
    loo = run_loo(corpora) if len(corpora) > 1 else []
    synthetic = run_synthetic(tools)
    few = [
        Row(name, tool, score(truth, *fn(few_values_variant(contents, truth))), 0.0)
        for name, (contents, truth) in corpora.items()
        for tool, fn in tools.items()
    ]
    speed = {t: sum(r.lines_per_s for r in rows if r.tool == t) / len(corpora) for t in tools}
    ratios = ", ".join(
        f"{speed['ours'] / speed[t]:.2f}x {t} ({speed[t]:,.0f} lines/s)"
        for t in tools
        if t != "ours"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc = "\n".join(
        [
            "# Log template mining: ours vs drain3 (Loghub-2k, corrected ground truth)",
            "",
            f"Run {stamp} on {platform.python_implementation()} {platform.python_version()}, "
            f"{platform.machine()}; data `{args.data}`.",
            "",
            "- `ours`: `intelligence.logpatterns` TemplateMiner, one default configuration.",
            f"- `drain3+mask`: drain3 {_version('drain3')} `TemplateMinerConfig()` defaults "
            "(sim_th 0.4, "
            "depth 4, max_children 100) with our generic token masking as its only masking "
            "instruction (no per-system regexes).",
            "- `drain3`: drain3 defaults as shipped (no masking instructions).",
            "- `drain3-tuned` (reference only, breaks the one-configuration rule): drain3 with "
            "the published per-system regexes, `st` and `depth` from `settings.json`.",
            "- GA/FGA/PA by `intelligence/logpatterns/scoring.py` (groups keyed by "
            "EventTemplate); lines/s = mining step only (process CPU "
            f"time, tools interleaved, best of {args.repeat}, a fresh miner per run so caches "
            "start cold), same header extraction for all.",
            "",
            table,
            "",
            f"Throughput, mean over systems: ours {speed['ours']:,.0f} lines/s = {ratios}.",
            "",
            "## Leave-one-out: parameters chosen without the system they are scored on",
            "",
            "Every combination of "
            + ", ".join(f"`{k}` in {{{', '.join(str(v) for v in vs)}}}" for k, vs in GRID.items())
            + f" ({len(grid_configs())} configurations) is scored on all systems. For each "
            "system, the configuration with the best mean GA on the *other* systems (then PA; "
            "the shipped default wins ties) is chosen and scored on the held-out one.",
            "",
            render_loo(loo) if loo else "(needs at least two systems)",
            "",
            "## Few-values stress: the same systems with each variable limited to 2 values",
            "",
            "Every variable of every true template keeps only the first two values it took "
            "(later lines reuse one of them), so most variables show two distinct values, as "
            "in a 2,000-line sample of an unseen system. Real text, real templates; it tests "
            "under-merging, the failure seen on unseen systems.",
            "",
            render_accuracy(few, list(tools)),
            "",
            "## Generated systems (`benchmarks/synthetic_logs.py`), reported apart",
            "",
            "Four made-up systems in styles unlike Loghub's (logfmt sidecar, batch scheduler, "
            "storage driver, package servicing), 2,000 seeded lines each, truth = the "
            "generating format with `<*>` per variable. They include hard cases on purpose "
            "(capitalised client names and two plain-word variables that change together, "
            "UPPER_SNAKE error names as values). They were written alongside the rules, so "
            "they check the rules on unseen text; they do not prove generalisation.",
            "",
            render_accuracy(synthetic, list(tools)),
            "",
            "## What `ours` does differently from Drain",
            "",
            "- Masks variables token-wise with one generic rule set (numbers with units, hex, "
            "UUIDs, IPs with ports, paths, URLs, host names, `word_<digits>` ids, versions, "
            "multi-token timestamps, human-readable sizes, HTTP request targets). Every rule "
            "looks at digit classes, not digit values, so results are cached per digit shape "
            "of each token and of the whole line: a steady stream costs one `translate` and "
            "one dictionary look-up per line.",
            "- Groups by the exact masked token sequence instead of a similarity threshold over "
            "a fixed-depth prefix tree: two messages that differ in one constant word (an enum "
            "state, a verb) stay two templates.",
            "- Turns a word position into a parameter slot only on evidence: templates of the "
            "same length that agree everywhere else are indexed together, and the position "
            "becomes `<*>` once it has taken 3 distinct values (8 when the values look like "
            "code: Capitalised, UPPER_CASE, camelCase) and enough constant words remain. "
            "Merges cascade; an empty value next to a masked one (`()` vs `(<*>)`) is a slot.",
            "- Sibling templates with one constant skeleton that differ only in positions that "
            "look like values merge once those positions show 2 distinct values "
            "(`min_distinct_role`), even when several positions differ at once. A position "
            "looks like a value by its syntactic role (after a `key=` token, after a `key:` "
            "token when the value is delimited, a name after a naming noun such as `user` or "
            "`host` followed by a preposition or punctuation, a glued `key=value`, quoted or "
            "`[bracketed]` as a whole, `null`, an error name spelling out the masked code "
            "before it) or by its shape (a digit anywhere, parts joined by `.`, `~`, `$`, "
            "`@`, `/`, snake_case, CamelCase of three or more parts). Other UPPER_SNAKE "
            "constants keep needing the code-word evidence, glued keys must agree "
            "(`mapRequest:<*>` and `reduceRequest:<*>` stay apart), and a label followed by "
            "a sentence (`ciod: failed to ...`) is not a key.",
            '- A quoted phrase of plain words is one token, so `"Cache Warmer"` and '
            '`"Reaper"` fill one slot. A value followed by a unit and an optional '
            "parenthesised conversion (`1190 bytes (1.16 KB)`, `<1 sec`) is one variable of "
            "varying length once templates with and without it are seen.",
            "- Templates that differ only in the length of a trailing run of variables (a list "
            "of block ids) merge into one template ending in a single `<*>`.",
            "- Template ids are content hashes of the (generalised) template, so they are "
            "stable across runs; state is plain JSON and memory is bounded (LRU eviction).",
            "",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "logs.md").write_text(doc)
    (args.out / "logs.json").write_text(
        json.dumps(
            {
                "systems": [
                    {
                        "system": r.system,
                        "tool": r.tool,
                        **r.scores.as_dict(),
                        "lines_per_s": r.lines_per_s,
                    }
                    for r in rows
                ],
                "leave_one_out": [
                    {
                        "held_out": r.held_out,
                        "chosen": r.chosen,
                        "train_ga": r.train_ga,
                        **r.scores.as_dict(),
                    }
                    for r in loo
                ],
                "throughput_lines_per_s": speed,
                "few_values": [
                    {"system": r.system, "tool": r.tool, **r.scores.as_dict()} for r in few
                ],
                "synthetic": [
                    {"system": r.system, "tool": r.tool, **r.scores.as_dict()} for r in synthetic
                ],
            },
            indent=2,
        )
    )
    print(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
