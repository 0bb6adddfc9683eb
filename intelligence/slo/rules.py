"""Prometheus recording and alerting rules equivalent to the Python burn evaluation.

Sloth/Pyrra style: per SLO one rule group with an error-ratio recording rule per window
(``slo:sli_error:ratio_rate<window>``), the objective and the budget left over the SLO
window, and one multiwindow burn-rate alert per workbook pair. The expressions are built by
``intelligence.slo.queries`` exactly as the beat job queries them, and the thresholds are
``factor * budget`` as in ``intelligence.slo.burn``, so rules and Python agree.

A team may run these in its Prometheus (alerts then reach us through Alertmanager) or let
our beat job evaluate the same thing; running both gives each burn twice, from two
integrations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from intelligence.slo.burn import WORKBOOK_PAIRS, BurnWindowPair, duration, error_budget
from intelligence.slo.queries import error_ratio_expression

ALERT_NAME = "SLOErrorBudgetBurn"


@dataclass(frozen=True)
class SLOSpec:
    """An SLO as plain data: the service it belongs to and how it is measured."""

    service: str
    name: str
    objective_percent: Decimal
    window_days: int
    good_query: str
    total_query: str

    @property
    def budget(self) -> float:
        return error_budget(self.objective_percent)

    @property
    def budget_literal(self) -> str:
        """The budget as a PromQL number literal that parses to ``self.budget``."""
        return format((Decimal(100) - Decimal(str(self.objective_percent))) / 100, "f")

    @property
    def window_seconds(self) -> int:
        return int(self.window_days) * 86400

    def labels(self) -> dict[str, str]:
        return {"service": self.service, "slo": self.name}


def record_name(seconds: int) -> str:
    return f"slo:sli_error:ratio_rate{duration(seconds)}"


def _selector(metric: str, labels: dict[str, str]) -> str:
    # JSON string escapes are valid PromQL string escapes (\" \\ \uXXXX)
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    return f"{metric}{{{inner}}}"


def summary_for(spec: SLOSpec, pair: BurnWindowPair) -> str:
    return (
        f"{spec.service} SLO {spec.name} burns its error budget over {pair.factor:g}x "
        f"({pair.long} and {pair.short})"
    )


def rule_group(spec: SLOSpec, pairs: Iterable[BurnWindowPair] = WORKBOOK_PAIRS) -> dict[str, Any]:
    """One group: recordings for every window, then the objective, budget and alerts."""
    pairs = tuple(pairs)
    labels = spec.labels()
    windows = sorted(
        {spec.window_seconds} | {s for p in pairs for s in (p.long_seconds, p.short_seconds)}
    )
    rules: list[dict[str, Any]] = [
        {
            "record": record_name(seconds),
            "expr": error_ratio_expression(spec.good_query, spec.total_query, seconds),
            "labels": dict(labels),
        }
        for seconds in windows
    ]
    rules.append(
        {
            "record": "slo:objective:ratio",
            "expr": f"vector(1 - {spec.budget_literal})",
            "labels": dict(labels),
        }
    )
    rules.append(
        {
            "record": "slo:error_budget_remaining:ratio",
            "expr": f"1 - {_selector(record_name(spec.window_seconds), labels)}"
            f" / {spec.budget_literal}",
            "labels": dict(labels),
        }
    )
    for pair in pairs:
        threshold = f"({pair.factor:g} * {spec.budget_literal})"
        long_sel = _selector(record_name(pair.long_seconds), labels)
        short_sel = _selector(record_name(pair.short_seconds), labels)
        rules.append(
            {
                "alert": ALERT_NAME,
                "expr": f"{long_sel} > {threshold} and {short_sel} > {threshold}",
                "labels": {k: v for k, v in alert_labels(spec, pair).items() if k != "alertname"},
                "annotations": {
                    "summary": summary_for(spec, pair),
                    "description": (
                        f"Error ratio over {pair.long} is {{{{ $value | humanizePercentage }}}}"
                        f"; the budget is {spec.budget_literal} of {duration(spec.window_seconds)}."
                    ),
                },
            }
        )
    return {"name": f"slo:{spec.service}:{spec.name}", "rules": rules}


def alert_labels(spec: SLOSpec, pair: BurnWindowPair) -> dict[str, str]:
    """The labels of a burn alert: the same from Prometheus rules and from our beat job."""
    return {
        "alertname": ALERT_NAME,
        **spec.labels(),
        "severity": pair.severity,
        "long_window": pair.long,
        "short_window": pair.short,
    }


def rules_document(specs: Iterable[SLOSpec]) -> dict[str, Any]:
    return {"groups": [rule_group(spec) for spec in specs]}


def rules_yaml(specs: Iterable[SLOSpec]) -> str:
    """The rules file (YAML) for ``specs``, ready for ``rule_files`` / ``promtool``."""
    return yaml.safe_dump(rules_document(specs), sort_keys=False, width=1000)
