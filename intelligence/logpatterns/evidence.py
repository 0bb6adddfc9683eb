"""Log evidence for an incident: which patterns are new, surging, vanishing or errors.

Input is plain data — ``(timestamp, line, labels)`` tuples for a baseline and an incident
window, plus optionally the service's persisted miner state — and output is a ranked list of
``Finding`` objects whose ``as_dict()`` is what ``intelligence_insights.evidence`` stores.

Statistics: comparing counts ``b`` (baseline, duration ``Tb``) and ``i`` (incident, ``Ti``)
of one template is a two-Poisson rate comparison. Conditioned on ``n = b + i`` the incident
count is Binomial(n, Ti / (Tb + Ti)) when rates are equal, so an exact binomial tail gives
the p-value (surging: upper tail, vanishing: lower tail). A pattern absent from the baseline
(and from the persisted normal state) is "new"; its p-value is the Poisson upper tail with
half an event of baseline prior, so one stray line is not reported as a surge.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from scipy import stats

from .masking import WILDCARD
from .miner import Template, TemplateMiner

LogRecord = tuple[Any, str, dict[str, str]]

_ERROR_LEVELS = {"error", "err", "fatal", "critical", "crit", "panic", "alert", "emerg", "severe"}
_LEVEL_KEYS = ("level", "severity", "detected_level", "lvl", "loglevel")
_ERROR_WORDS = re.compile(
    r"\b(?:ERROR|FATAL|CRITICAL|PANIC|SEVERE|Exception|Traceback|error|failed|failure|"
    r"timed? ?out|refused|unreachable)\b"
)
_LEVEL_IN_LINE = re.compile(r"\b(?:level|lvl|severity)=\"?(\w+)", re.I)


@dataclass
class EvidenceConfig:
    """Thresholds of the evidence report (one setting for every service)."""

    min_ratio: float = 2.0
    max_p_value: float = 0.01
    min_incident_count: int = 3
    min_baseline_count_vanishing: int = 5
    examples: int = 3
    top_values: int = 3
    dominant_share: float = 0.8
    max_findings: int = 50


@dataclass
class Finding:
    """One pattern's change between the windows, scored for ranking."""

    kind: str  # new | surging | vanishing | error
    template_id: str
    template: str
    baseline_count: int
    incident_count: int
    baseline_rate_per_min: float
    incident_rate_per_min: float
    rate_ratio: float | None
    p_value: float
    score: float
    error_level: bool
    examples: list[str] = field(default_factory=list)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (what the insight stores)."""
        d = asdict(self)
        if d["rate_ratio"] is not None and math.isinf(d["rate_ratio"]):
            d["rate_ratio"] = None
        return d


def to_seconds(ts: Any) -> float:
    """Accept epoch seconds, epoch nanoseconds (Loki), ISO strings or datetimes."""
    if isinstance(ts, datetime):
        return ts.timestamp()
    if isinstance(ts, str):
        try:
            ts = int(ts)
        except ValueError:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    value = float(ts)
    return value / 1e9 if value > 1e14 else value


def _span(records: Sequence[LogRecord], given: tuple[Any, Any] | None) -> float:
    if given is not None:
        return max(to_seconds(given[1]) - to_seconds(given[0]), 1.0)
    if not records:
        return 1.0
    times = [to_seconds(r[0]) for r in records]
    return max(max(times) - min(times), 1.0)


def is_error_line(line: str, labels: dict[str, str]) -> bool:
    """Error level from the stream labels, a ``level=`` field, or error words in the text."""
    for key in _LEVEL_KEYS:
        if key in labels:
            return labels[key].lower() in _ERROR_LEVELS
    m = _LEVEL_IN_LINE.search(line)
    if m:
        return m.group(1).lower() in _ERROR_LEVELS
    return _ERROR_WORDS.search(line) is not None


def _slot_extractors(tpl: Template) -> list[tuple[int, re.Pattern[str] | None]]:
    """Per template position holding a slot: a regex that pulls the value out of the token."""
    out: list[tuple[int, re.Pattern[str] | None]] = []
    for pos, (tok, gen) in enumerate(zip(tpl.tokens, tpl.general, strict=True)):
        if gen:
            shape = f"{tpl.prefix[pos]}{WILDCARD}{tpl.suffix[pos]}"
        elif WILDCARD in tok:
            shape = tok
        else:
            continue
        if shape == WILDCARD:
            out.append((pos, None))
        else:
            parts = [re.escape(p) for p in shape.split(WILDCARD)]
            out.append((pos, re.compile("^" + "(.*?)".join(parts) + "$", re.S)))
    return out


def _slot_name(tpl: Template, pos: int) -> str:
    """A readable name for a slot: its ``key=``/``key:`` prefix, else the word before it."""
    head = tpl.prefix[pos] if tpl.general[pos] else tpl.tokens[pos].split(WILDCARD, 1)[0]
    key = re.search(r"([A-Za-z_][\w.\-]*)[=:]$", head)
    if key:
        return key.group(1)
    for prev in range(pos - 1, -1, -1):
        word = tpl.tokens[prev].strip(":=,;()[]{}\"'")
        if word and WILDCARD not in tpl.tokens[prev] and not tpl.general[prev]:
            return word
    return f"slot{pos}"


def _parameters(
    tpl: Template, token_lists: list[list[str]], cfg: EvidenceConfig
) -> list[dict[str, Any]]:
    values: dict[int, Counter[str]] = defaultdict(Counter)
    extractors = _slot_extractors(tpl)
    for toks in token_lists:
        n = len(tpl.tokens)
        if tpl.variadic and len(toks) > n:
            toks = [*toks[: n - 1], " ".join(toks[n - 1 :])]  # the list is one value
        if len(toks) != n:
            continue
        for pos, rx in extractors:
            if rx is None:
                values[pos][toks[pos]] += 1
                continue
            m = rx.match(toks[pos])
            if m:
                values[pos]["|".join(m.groups())] += 1
    out = []
    for pos, _ in extractors:
        counter = values.get(pos)
        if not counter:
            continue
        total = sum(counter.values())
        top = [
            {"value": v, "count": c, "share": round(c / total, 3)}
            for v, c in counter.most_common(cfg.top_values)
        ]
        dominant = top[0] if top[0]["share"] >= cfg.dominant_share and total >= 3 else None
        out.append(
            {
                "position": pos,
                "name": _slot_name(tpl, pos),
                "distinct": len(counter),
                "total": total,
                "top": top,
                "dominant": dominant,
            }
        )
    return out


def _label_summary(labels: list[dict[str, str]], cfg: EvidenceConfig) -> dict[str, Any]:
    per_key: dict[str, Counter[str]] = defaultdict(Counter)
    for lab in labels:
        for k, v in lab.items():
            per_key[k][v] += 1
    out: dict[str, list[dict[str, Any]]] = {}
    for k, counter in per_key.items():
        if len(counter) > 1:
            total = sum(counter.values())
            out[k] = [
                {"value": v, "count": c, "share": round(c / total, 3)}
                for v, c in counter.most_common(cfg.top_values)
            ]
    return out


def _score(p_value: float, count: int, error_level: bool) -> float:
    """Rank by surprise (-log10 p, capped), a little by volume, and more for errors."""
    surprise = min(-math.log10(max(p_value, 1e-300)), 50.0) + (1.0 if error_level else 0.0)
    return round(surprise * (1.0 + math.log10(1 + count) / 4) * (1.5 if error_level else 1.0), 3)


def analyse_windows(
    baseline: Iterable[LogRecord],
    incident: Iterable[LogRecord],
    *,
    baseline_range: tuple[Any, Any] | None = None,
    incident_range: tuple[Any, Any] | None = None,
    state: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    config: EvidenceConfig | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Mine both windows and return ranked findings plus the service's new normal state.

    ``state`` is a service's persisted ``TemplateMiner.to_state()``: templates seen there
    are "known", so they are never reported as new. The returned state has learned the
    baseline window only. ``source`` is copied into each finding
    (e.g. ``{"loki_query": ..., "baseline": {...}, "incident": {...}}``).
    """
    cfg = config or EvidenceConfig()
    base = list(baseline)
    inc = list(incident)
    miner = TemplateMiner.from_state(state) if state else TemplateMiner()
    known = {t.id for t in miner.templates.values() if t.count > 0}
    tb = _span(base, baseline_range)
    ti = _span(inc, incident_range)

    base_ids = miner.add_many(line for _, line, _ in base)
    # What the service looks like when healthy: learned from the baseline only, so the
    # incident's own patterns are not persisted as "normal" for the next analysis.
    normal_state = miner.to_state()
    inc_matches = [miner.add(line) for _, line, _ in inc]
    known = {miner.resolve(t) for t in known}

    b_count: Counter[str] = Counter(miner.resolve(t) for t in base_ids)
    i_count: Counter[str] = Counter()
    i_tokens: dict[str, list[list[str]]] = defaultdict(list)
    i_lines: dict[str, list[str]] = defaultdict(list)
    i_labels: dict[str, list[dict[str, str]]] = defaultdict(list)
    errors: Counter[str] = Counter()
    for (_, line, labels), m in zip(inc, inc_matches, strict=True):
        tid = miner.resolve(m.template_id)
        i_count[tid] += 1
        i_tokens[tid].append(m.tokens)
        i_lines[tid].append(line)
        i_labels[tid].append(dict(labels or {}))
        if is_error_line(line, labels or {}):
            errors[tid] += 1
    b_lines: dict[str, list[str]] = defaultdict(list)
    for (_, line, _), t in zip(base, base_ids, strict=True):
        tid = miner.resolve(t)
        if len(b_lines[tid]) < cfg.examples:
            b_lines[tid].append(line)

    share = ti / (tb + ti)
    findings: list[Finding] = []
    for tid in set(b_count) | set(i_count):
        tpl = miner.templates.get(tid)
        if tpl is None:
            continue
        b, i = b_count[tid], i_count[tid]
        error_level = i > 0 and errors[tid] * 2 >= i
        ratio = (i / ti) / (b / tb) if b else math.inf
        kind = ""
        if b == 0 and tid not in known and i >= cfg.min_incident_count:
            kind = "new"
            p = float(stats.poisson.sf(i - 1, 0.5 * ti / tb))
        elif b > 0 and i > 0 and ratio >= cfg.min_ratio:
            kind = "surging"
            p = float(stats.binomtest(i, b + i, share, alternative="greater").pvalue)
        elif b >= cfg.min_baseline_count_vanishing and ratio <= 1 / cfg.min_ratio:
            kind = "vanishing"
            p = float(stats.binomtest(i, b + i, share, alternative="less").pvalue)
        else:
            p = 1.0
        if kind in ("surging", "vanishing") and p > cfg.max_p_value:
            kind = ""
        if not kind and error_level and i >= 1:
            kind = "error"
            p = float(stats.binomtest(i, b + i, share, alternative="greater").pvalue) if b else p
        if not kind:
            continue
        lines = i_lines[tid] if kind != "vanishing" else b_lines[tid]
        findings.append(
            Finding(
                kind=kind,
                template_id=tid,
                template=tpl.text,
                baseline_count=b,
                incident_count=i,
                baseline_rate_per_min=round(60 * b / tb, 4),
                incident_rate_per_min=round(60 * i / ti, 4),
                rate_ratio=round(ratio, 3) if b else None,
                p_value=p,
                score=_score(p, max(i, b), error_level),
                error_level=error_level,
                examples=lines[: cfg.examples],
                parameters=_parameters(tpl, i_tokens[tid], cfg) if i else [],
                labels=_label_summary(i_labels[tid], cfg) if i else {},
                source=dict(source or {}),
            )
        )
    findings.sort(key=lambda f: (-f.score, f.template_id))
    return findings[: cfg.max_findings], normal_state
