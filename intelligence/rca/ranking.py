"""Rank root-cause hypotheses from findings and the dependency graph (pure functions).

Every service with findings is a suspect. Its score adds up, with the weights in
``Weights`` (documented in docs/rca.md):

- **own evidence** (its CPU, memory, restarts, throttling, packet drops, its deploy or flag
  change, the trace's deepest erroring span): only the service itself produces it;
- **inherited-capable evidence** (latency, errors, traffic, error logs), discounted when a
  dependency of the service was abnormal first: a caller's symptoms are explained by the
  failure below it, so an anomaly that starts earlier and further downstream outranks its
  symptoms upstream;
- **onset order**: the earliest abnormal service gets the most, decaying with the delay;
- **downstream position**: no abnormal dependency below it;
- **change shortly before the onset**: a deploy or config/flag change in the minutes
  before the service's own onset is strong; one long before or after is weak;
- **correlation's probable origin**: one evidence item among the others.

A service whose callers fail but which shows nothing abnormal itself gets no evidence and
ranks last. The kind of each hypothesis follows from the families of the evidence.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from incidents.correlation.topology import Topology
from intelligence.rca.evidence import FAMILIES, EvidenceItem, family, is_own
from intelligence.signals.types import Finding, Pointer, ServiceContext

KINDS = (
    "bad_deploy",
    "config_or_flag",
    "resource_exhaustion",
    "noisy_neighbour",
    "network_loss",
    "slow_dependency",
    "unavailable",
    "error_surge",
)


# families that do not make a service "abnormal" by themselves: a change is not a symptom,
# and less traffic or a user-visible consequence is what a failure elsewhere looks like too
_NOT_ABNORMAL = frozenset({"deploy", "config", "symptom", "other", "traffic"})


# resources that more requests use up: rising with traffic, they are load, not a fault
_LOAD_FAMILIES = frozenset({"cpu", "saturation", "pool", "disk", "errors"})


@dataclass(frozen=True)
class Weights:
    """The ranking's rules as numbers (docs/rca.md explains each)."""

    family: Mapping[str, float] = field(
        default_factory=lambda: {
            "deploy": 3.0,
            "config": 3.0,
            "cpu": 1.5,
            "memory": 1.5,
            "pool": 1.5,
            "disk": 1.2,
            "throttling": 1.5,
            "network": 1.5,
            "crash": 1.5,
            "k8s_warning": 0.5,
            "trace_origin": 2.0,
            "trace_self_time": 1.5,
            "latency": 1.0,
            "errors": 1.0,
            "traffic": 0.3,
            "saturation": 0.5,
            "logs": 0.8,
            "queue": 0.3,
            "symptom": 0.1,
            "other": 0.3,
        }
    )
    # a finding at least this strong makes its service "abnormal" (onset order, explaining)
    abnormal: float = 0.5
    # the service's onset is the earliest of its findings at least this share of its strongest
    onset_strength: float = 0.9
    # share of the other abnormal services that depend on this one (it would explain them)
    coverage_weight: float = 1.0
    # inherited-capable evidence is multiplied by this when a dependency was abnormal first
    explained_discount: float = 0.3
    # a dependency counts as "first" if its onset is at most this much after the service's
    onset_tolerance_s: float = 60.0
    onset_weight: float = 1.0
    onset_decay_s: float = 180.0
    downstream_weight: float = 0.5
    origin_weight: float = 0.5
    # a change counts as "shortly before the onset" within this window before it
    change_window_s: float = 1800.0
    change_after_tolerance_s: float = 120.0
    change_far_factor: float = 0.1
    # a service with nothing abnormal keeps this share of its evidence
    healthy_factor: float = 0.2
    # resource use that rose with the service's own traffic is load its callers pushed
    load_discount: float = 0.5
    # ... when it moved no further from normal (robust z) than this times the traffic did
    load_margin: float = 2.0


@dataclass
class Hypothesis:
    """``service`` failed with ``kind``: the evidence for and against, and its score.

    ``confidence`` is filled in by calibration; ``rank`` is the service's place among
    suspects (hypotheses of one service share it; the best kind comes first)."""

    service: str
    kind: str
    score: float
    rank: int = 0
    confidence: float = 0.0
    kind_share: float = 1.0
    onset: datetime | None = None
    supporting: list[EvidenceItem] = field(default_factory=list)
    contradicting: list[EvidenceItem] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)

    @property
    def pointers(self) -> list[dict]:
        return [e.finding.pointer.as_dict() for e in self.supporting]

    def as_dict(self) -> dict:
        return {
            "service": self.service,
            "kind": self.kind,
            "rank": self.rank,
            "score": round(self.score, 4),
            "confidence": round(self.confidence, 4),
            "onset": self.onset.isoformat() if self.onset else None,
            "supporting": [e.as_dict() for e in self.supporting],
            "contradicting": [e.as_dict() for e in self.contradicting],
        }


@dataclass
class _Profile:
    service: str
    best: dict[str, Finding] = field(default_factory=dict)  # family -> strongest finding
    onset: datetime | None = None
    abnormal: bool = False
    strongest: float = 0.0
    abnormal_findings: list[Finding] = field(default_factory=list)


def _profiles(findings: Iterable[Finding], weights: Weights) -> dict[str, _Profile]:
    out: dict[str, _Profile] = {}
    families: dict[str, list[tuple[str, Finding]]] = {}
    for f in findings:
        p = out.setdefault(f.service, _Profile(f.service))
        fam = family(f)
        families.setdefault(f.service, []).append((fam, f))
        current = p.best.get(fam)
        if current is None or f.score > current.score:
            p.best[fam] = f
    for slug, p in out.items():
        for fam, f in families[slug]:
            if fam in _NOT_ABNORMAL or f.score < weights.abnormal or _is_load(p, fam, f, weights):
                continue
            p.abnormal = True
            p.strongest = max(p.strongest, float(f.score))
            p.abnormal_findings.append(f)
        # the onset of what is most abnormal about the service, not of a marginal blip
        bar = max(weights.abnormal, weights.onset_strength * p.strongest)
        onsets = [f.onset for f in p.abnormal_findings if f.onset and f.score >= bar]
        p.onset = min(onsets) if onsets else None
    return out


def _is_load(p: _Profile, fam: str, f: Finding, weights: Weights) -> bool:
    """Resource use or errors that rose no more than the service's own traffic: more work
    pushed by its callers, not a fault of its own."""
    traffic = p.best.get("traffic")
    if fam not in _LOAD_FAMILIES or traffic is None or traffic.score < weights.abnormal:
        return False
    return strength(f) <= weights.load_margin * strength(traffic)


def strength(f: Finding) -> float:
    """How far from normal a finding is, as a robust z: the signal's own ``z`` when it gives
    one, else the score read back through score = z / (z + 3)."""
    z = f.details.get("z")
    if isinstance(z, int | float) and math.isfinite(z):
        return abs(float(z))
    s = min(max(float(f.score), 0.0), 0.999999)
    return 3.0 * s / (1.0 - s)


def _graph(
    services: Sequence[ServiceContext], dependencies: Mapping[str, Sequence[str]] | None
) -> Topology:
    deps: dict[str, list[str]] = {s.slug: list(s.depends_on) for s in services}
    for slug, targets in (dependencies or {}).items():
        deps.setdefault(slug, [])
        deps[slug].extend(t for t in targets if t not in deps[slug])
    return Topology(deps)


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (a - b).total_seconds()


def rank_hypotheses(
    findings: Sequence[Finding],
    services: Sequence[ServiceContext] = (),
    *,
    dependencies: Mapping[str, Sequence[str]] | None = None,
    probable_origin: str | None = None,
    weights: Weights | None = None,
) -> list[Hypothesis]:
    """Ranked hypotheses, best first: one per (service, kind) the evidence supports.

    ``services`` (with ``depends_on``) and/or ``dependencies`` give the graph;
    ``probable_origin`` is correlation's most downstream affected service.
    """
    w = weights or Weights()
    graph = _graph(services, dependencies)
    profiles = _profiles(findings, w)
    if probable_origin and probable_origin not in profiles:
        profiles[probable_origin] = _Profile(probable_origin)
    abnormal = {s: p for s, p in profiles.items() if p.abnormal}
    onsets = [p.onset for p in abnormal.values() if p.onset is not None]
    earliest = min(onsets) if onsets else None

    scored: list[Hypothesis] = []
    for slug, p in profiles.items():
        below = [
            d for d in abnormal if d != slug and slug in graph and graph.hops(slug, d) is not None
        ]
        first_below = [
            d
            for d in below
            if p.onset is None
            or abnormal[d].onset is None
            or (_seconds(abnormal[d].onset, p.onset) or 0.0) <= w.onset_tolerance_s
        ]
        supporting: list[EvidenceItem] = []
        contradicting: list[EvidenceItem] = []
        kind_scores: dict[str, float] = defaultdict(float)
        total = 0.0
        anchor = p.onset or earliest
        traffic = p.best.get("traffic")
        loaded = traffic is not None and traffic.score >= w.abnormal
        for fam, f in p.best.items():
            base = w.family.get(fam, 0.3) * float(f.score)
            reason = f"{fam} evidence"
            contributes = True
            if fam in ("deploy", "config"):
                before = _seconds(anchor, f.onset)
                if before is not None and -w.change_after_tolerance_s <= before <= (
                    w.change_window_s
                ):
                    reason = f"{fam} change {int(max(before, 0) // 60)} min before the onset"
                else:
                    base *= w.change_far_factor
                    contributes = False
                    why = "after the onset" if before is not None and before < 0 else "not near"
                    contradicting.append(
                        EvidenceItem(f, fam, base, False, f"{fam} change {why} the onset")
                    )
            elif not is_own(fam) and first_below:
                base *= w.explained_discount
                reason = f"{fam} may be inherited from {', '.join(sorted(first_below)[:3])}"
            elif loaded and _is_load(p, fam, f, w):
                base *= w.load_discount
                reason = f"{fam} rose with {slug}'s traffic: load from its callers"
                contradicting.append(EvidenceItem(traffic, "traffic", base, False, reason))
            if not p.abnormal and fam not in ("deploy", "config"):
                base *= w.healthy_factor
            total += base
            kind = FAMILIES.get(fam, (False, None))[1]
            if kind:
                kind_scores[kind] += base
            if contributes:
                supporting.append(EvidenceItem(f, fam, base, True, reason))
        for d in sorted(first_below):
            fd = max(abnormal[d].best.values(), key=lambda x: x.score)
            contradicting.append(
                EvidenceItem(
                    fd,
                    family(fd),
                    w.family.get(family(fd), 0.3) * fd.score,
                    False,
                    f"dependency {d} was abnormal first: {slug}'s symptoms may be its",
                )
            )
        if p.abnormal:
            lag = _seconds(p.onset, earliest)
            if lag is not None:
                total += w.onset_weight * math.exp(-max(lag, 0.0) / w.onset_decay_s)
            else:
                total += w.onset_weight * 0.5
            if not below:
                total += w.downstream_weight
            others = [a for a in abnormal if a != slug]
            if others and slug in graph:
                covered = sum(1 for a in others if a in graph and graph.hops(a, slug) is not None)
                total += w.coverage_weight * covered / len(others)
        if slug == probable_origin:
            total += w.origin_weight
            supporting.append(
                EvidenceItem(
                    origin_finding(slug),
                    "correlation",
                    w.origin_weight,
                    True,
                    "correlation's probable origin: the most downstream alerting service",
                )
            )
        if not supporting:
            continue
        if not kind_scores:
            kind_scores["error_surge" if p.best else "unavailable"] = 1.0
        _refine_kinds(kind_scores, p)
        kinds_total = sum(kind_scores.values()) or 1.0
        supporting.sort(key=lambda e: -e.weight)
        features = {
            "own": sum(e.weight for e in supporting if is_own(e.family)),
            "explained": 1.0 if first_below else 0.0,
            "conflicts": float(len(contradicting)),
            "abnormal": 1.0 if p.abnormal else 0.0,
        }
        for kind, ks in sorted(kind_scores.items(), key=lambda kv: -kv[1]):
            share = ks / kinds_total
            scored.append(
                Hypothesis(
                    service=slug,
                    kind=kind,
                    score=total,
                    kind_share=share,
                    onset=p.onset,
                    supporting=[e for e in supporting if _supports_kind(e.family, kind)]
                    or supporting,
                    contradicting=contradicting,
                    features=features,
                )
            )
    return _assign_ranks(scored)


def origin_finding(slug: str) -> Finding:
    """Correlation's probable origin as a finding, pointing at the incident's correlation."""
    return Finding(
        kind="correlation",
        service=slug,
        score=1.0,
        title=f"{slug} is the incident's probable origin (correlation)",
        pointer=Pointer("incidents", f"incident.origin_service = {slug}"),
    )


def _refine_kinds(kind_scores: dict[str, float], p: _Profile) -> None:
    """Throttling with CPU use up is saturation, not a neighbour; a change near the onset
    names the kind (the symptoms are its consequences)."""
    if "noisy_neighbour" in kind_scores and "cpu" in p.best:
        cpu, thr = p.best["cpu"], p.best.get("throttling")
        if thr is not None and cpu.score >= thr.score * 0.8:
            kind_scores["resource_exhaustion"] += kind_scores.pop("noisy_neighbour")
    for change_kind in ("bad_deploy", "config_or_flag"):
        if change_kind in kind_scores:
            others = [k for k in kind_scores if k != change_kind]
            if kind_scores[change_kind] >= 1.0:
                for k in others:
                    kind_scores[k] *= 0.3


def _supports_kind(fam: str, kind: str) -> bool:
    k = FAMILIES.get(fam, (False, None))[1]
    return k is None or k == kind or kind in ("bad_deploy", "config_or_flag")


def _assign_ranks(hypotheses: list[Hypothesis]) -> list[Hypothesis]:
    by_service: dict[str, float] = {}
    for h in hypotheses:
        by_service[h.service] = max(by_service.get(h.service, 0.0), h.score)
    order = sorted(by_service, key=lambda s: (-by_service[s], s))
    rank = {s: i + 1 for i, s in enumerate(order)}
    out = [replace(h, rank=rank[h.service]) for h in hypotheses]
    out.sort(key=lambda h: (h.rank, -h.kind_share, h.kind))
    return out


def suspects(hypotheses: Sequence[Hypothesis]) -> list[Hypothesis]:
    """The best hypothesis of each service, in rank order."""
    seen: set[str] = set()
    out = []
    for h in sorted(hypotheses, key=lambda h: (h.rank, -h.kind_share)):
        if h.service not in seen:
            seen.add(h.service)
            out.append(h)
    return out
