"""Calibrated confidence: turn ranking scores into probabilities that mean something.

A logistic (Platt-style) model over a few features of each suspect, fitted offline by
``make bench-rca --fit`` on one set of lab seeds and stored as ``calibration.json`` beside
this module; evaluated on other seeds. Features:

- ``share``: the suspect's score over the sum of all suspects' scores (logit of it);
- ``top``: 1 for the best suspect;
- ``margin``: how far the best suspect is ahead of the second (for the best), or behind
  the best (for the others), relative to the best score;
- ``missing``: how many data sources were not available (a partial analysis);
- ``conflicts``: contradicting evidence items on the suspect.

The missing-sources and conflict coefficients are clamped to be <= 0 when applied:
less evidence or conflicting evidence never raises confidence. When the fit saw no partial
analysis (its coefficient is 0), each missing source multiplies the probability by
``PARTIAL_FACTOR``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FEATURES = ("logit_share", "top", "margin", "missing", "conflicts")
PATH = Path(__file__).with_name("calibration.json")
_NEVER_RAISE = ("missing", "conflicts")
PARTIAL_FACTOR = 0.85
MIN_CONFIDENCE, MAX_CONFIDENCE = 0.01, 0.99


@dataclass(frozen=True)
class Calibration:
    coef: dict[str, float]
    intercept: float
    meta: dict

    @classmethod
    def load(cls, path: Path = PATH) -> Calibration:
        if not path.exists():
            return DEFAULT
        data = json.loads(path.read_text())
        return cls(dict(data["coef"]), float(data["intercept"]), dict(data.get("meta", {})))

    def dump(self, path: Path = PATH) -> None:
        payload = {"features": list(FEATURES), "coef": self.coef, "intercept": self.intercept}
        payload["meta"] = self.meta
        path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    def probability(self, features: dict[str, float]) -> float:
        z = self.intercept
        for name in FEATURES:
            c = self.coef.get(name, 0.0)
            if name in _NEVER_RAISE:
                c = min(c, 0.0)
            z += c * features.get(name, 0.0)
        p = 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))
        # The benchmark's scenarios have every source, so the fit cannot learn what a
        # missing one costs; until partial scenarios are fitted, each missing source keeps
        # PARTIAL_FACTOR of the confidence (a prior, written down, not a fitted value).
        if features.get("missing", 0.0) and self.coef.get("missing", 0.0) == 0.0:
            p *= PARTIAL_FACTOR ** features["missing"]
        # a few dozen benchmark cases cannot justify certainty either way
        return min(max(p, MIN_CONFIDENCE), MAX_CONFIDENCE)


# Used only until a fitted calibration.json exists: a plain mapping of the score share.
DEFAULT = Calibration(
    {"logit_share": 1.0, "top": 0.5, "margin": 1.0, "missing": -0.3, "conflicts": -0.2},
    0.0,
    {"fitted": False},
)


def suspect_features(
    scores: Sequence[float], conflicts: Sequence[int], missing_sources: int
) -> list[dict[str, float]]:
    """Features of each suspect, given every suspect's score in rank order."""
    total = sum(max(s, 0.0) for s in scores) or 1.0
    best = scores[0] if scores else 0.0
    second = scores[1] if len(scores) > 1 else 0.0
    out = []
    for i, (score, n_conflicts) in enumerate(zip(scores, conflicts, strict=True)):
        share = min(max(score / total, 1e-4), 1 - 1e-4)
        if i == 0:
            margin = (best - second) / best if best > 0 else 0.0
        else:
            margin = (score - best) / best if best > 0 else 0.0
        out.append(
            {
                "logit_share": math.log(share / (1 - share)),
                "top": 1.0 if i == 0 else 0.0,
                "margin": margin,
                "missing": float(missing_sources),
                "conflicts": float(min(n_conflicts, 5)),
            }
        )
    return out


def reliability_table(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> tuple[list[dict], float]:
    """Per confidence bin: count, mean confidence, accuracy; and the expected calibration
    error (the count-weighted mean gap between confidence and accuracy)."""
    rows = []
    n = len(confidences)
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if not idx:
            continue
        conf = sum(confidences[i] for i in idx) / len(idx)
        acc = sum(1 for i in idx if correct[i]) / len(idx)
        ece += len(idx) / n * abs(conf - acc)
        rows.append(
            {"bin": f"{lo:.1f}-{hi:.1f}", "n": len(idx), "confidence": conf, "accuracy": acc}
        )
    return rows, ece


def apply_confidence(
    hypotheses: list, missing_sources: int = 0, calibration: Calibration | None = None
) -> list:
    """Set ``confidence`` on ranked hypotheses: the suspect's calibrated probability of
    being the root-cause service, times the kind's share of that service's evidence."""
    cal = calibration or Calibration.load()
    best: dict[str, object] = {}
    for h in hypotheses:
        if h.service not in best:
            best[h.service] = h
    order = sorted(best.values(), key=lambda h: h.rank)
    feats = suspect_features(
        [h.score for h in order],
        [len(h.contradicting) for h in order],
        missing_sources,
    )
    probability = {h.service: cal.probability(f) for h, f in zip(order, feats, strict=True)}
    for h in hypotheses:
        h.features.update(feats[[o.service for o in order].index(h.service)])
        h.confidence = probability[h.service] * (h.kind_share if h is not best[h.service] else 1)
    return hypotheses
