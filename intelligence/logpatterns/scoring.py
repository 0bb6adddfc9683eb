"""Accuracy of a template miner against labelled lines (GA, FGA, PA, FTA).

Ground-truth groups are keyed by template text (as Loghub-2.0 does), so two event ids that
share one corrected template are one group.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Scores:
    """Grouping accuracy, F1 grouping accuracy, parsing accuracy, F1 template accuracy."""

    ga: float
    fga: float
    pa: float
    fta: float
    lines: int
    true_groups: int
    pred_groups: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _norm(template: str) -> str:
    return " ".join(template.split())


def _f1(correct: int, predicted: int, truth: int) -> float:
    if correct == 0 or predicted == 0 or truth == 0:
        return 0.0
    p, r = correct / predicted, correct / truth
    return 2 * p * r / (p + r)


def score(
    truth_templates: Sequence[str],
    pred_clusters: Sequence[Hashable],
    pred_templates: Sequence[str] | None = None,
) -> Scores:
    """Score one prediction; all sequences are aligned per line.

    GA: a line counts iff its predicted cluster holds exactly the lines of its true group.
    FGA: F1 over groups (a predicted cluster is right iff it equals one true group).
    PA: a line counts iff its predicted template text equals the true one.
    FTA: F1 over groups that are both grouped right and have the right template text.
    """
    n = len(truth_templates)
    if len(pred_clusters) != n or (pred_templates is not None and len(pred_templates) != n):
        raise ValueError("truth and prediction must have one entry per line")
    truth_groups: dict[str, list[int]] = defaultdict(list)
    pred_groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, (t, c) in enumerate(zip(truth_templates, pred_clusters, strict=True)):
        truth_groups[_norm(t)].append(i)
        pred_groups[c].append(i)
    truth_of_line = [_norm(t) for t in truth_templates]
    correct_lines = 0
    correct_groups = 0
    correct_templates = 0
    for members in pred_groups.values():
        t = truth_of_line[members[0]]
        if len(truth_groups[t]) == len(members) and all(truth_of_line[i] == t for i in members):
            correct_lines += len(members)
            correct_groups += 1
            if pred_templates is not None and _norm(pred_templates[members[0]]) == t:
                correct_templates += 1
    pa = 0.0
    if pred_templates is not None and n:
        pa = sum(_norm(p) == t for p, t in zip(pred_templates, truth_of_line, strict=True)) / n
    return Scores(
        ga=correct_lines / n if n else 0.0,
        fga=_f1(correct_groups, len(pred_groups), len(truth_groups)),
        pa=pa,
        fta=_f1(correct_templates, len(pred_groups), len(truth_groups)),
        lines=n,
        true_groups=len(truth_groups),
        pred_groups=len(pred_groups),
    )


def read_truth(structured_csv: Path) -> list[str]:
    """Read ``EventTemplate`` per line from a Loghub ``*_structured.csv`` (LineId order)."""
    with structured_csv.open(newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["LineId"]))
    return [r["EventTemplate"] for r in rows]


def read_prediction(pred_csv: Path) -> tuple[list[str], list[str]]:
    """Read ``ClusterId`` and ``EventTemplate`` per line from a prediction CSV."""
    with pred_csv.open(newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["LineId"]))
    return [r["ClusterId"] for r in rows], [r.get("EventTemplate", "") for r in rows]
