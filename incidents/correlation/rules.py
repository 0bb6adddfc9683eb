"""Correlation rules: how a team says "these alerts belong together" in code or the admin.

A rule selects alerts with label matchers (``= != =~ !~``, regexes fully anchored as in
Prometheus), groups them by label values within a time window, may hold alerts back as
candidates until ``min_alerts`` distinct alerts arrived, and says whether a resolved
incident of the group may be reused. Rules are authoritative: a matching alert is placed
by its rule and never reaches topology or learned grouping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from incidents.correlation.strategies import humanize_delta
from incidents.correlation.types import Action, AlertFacts, Decision, IncidentFacts

OPERATORS = ("=", "!=", "=~", "!~")
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """``"90s"``, ``"5m"``, ``"1h"`` or plain seconds, as in Prometheus configuration."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    total = 0.0
    for part in re.findall(r"\d+(?:ms|s|m|h|d)", value.strip()):
        number, unit = _DURATION.match(part).groups()  # type: ignore[union-attr]
        total += int(number) * _UNITS[unit]
    if not total and value.strip() not in ("0", "0s"):
        raise ValueError(f"invalid duration {value!r}")
    return timedelta(seconds=total)


@dataclass(frozen=True)
class LabelMatcher:
    label: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown matcher operator {self.op!r}")
        if self.op in ("=~", "!~"):
            self._regex  # noqa: B018 - compile now so a bad regex fails at load time

    @classmethod
    def parse(cls, text: str) -> LabelMatcher:
        """``severity="info"`` or ``alertname=~"Node.*"``."""
        match = _MATCHER.match(text)
        if not match:
            raise ValueError(f"invalid matcher {text!r}")
        return cls(*match.groups())

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        try:
            return re.compile(f"(?:{self.value})\\Z")
        except re.error as exc:
            raise ValueError(f"invalid regex in matcher {self}: {exc}") from exc

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self._regex.match(value) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


def effective_labels(alert: AlertFacts) -> dict[str, str]:
    """Labels as a rule sees them: ``alertname`` and ``service`` are always present."""
    labels = dict(alert.labels)
    labels.setdefault("alertname", alert.name)
    if alert.service:
        labels.setdefault("service", alert.service)
    return labels


@dataclass(frozen=True)
class CorrelationRule:
    name: str
    matchers: tuple[LabelMatcher, ...] = ()
    group_by: tuple[str, ...] = ()
    window: timedelta = timedelta(hours=1)
    min_alerts: int = 1
    reuse_resolved: bool = False

    def __post_init__(self) -> None:
        if self.min_alerts < 1:
            raise ValueError(f"rule {self.name}: min_alerts must be at least 1")
        if self.window <= timedelta(0):
            raise ValueError(f"rule {self.name}: window must be positive")

    def matches(self, alert: AlertFacts) -> bool:
        labels = effective_labels(alert)
        return all(m.matches(labels) for m in self.matchers)

    def group_values(self, alert: AlertFacts) -> str:
        labels = effective_labels(alert)
        return ",".join(f"{label}={labels.get(label, '')}" for label in self.group_by)

    def group_key(self, alert: AlertFacts) -> str:
        return f"rule:{self.name}:{self.group_values(alert)}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorrelationRule:
        unknown = set(data) - {
            "name", "matchers", "group_by", "window", "min_alerts", "reuse_resolved",
        }  # fmt: skip
        if unknown:
            raise ValueError(f"rule {data.get('name')!r}: unknown keys {sorted(unknown)}")
        matchers = []
        for item in data.get("matchers", ()):
            if isinstance(item, str):
                matchers.append(LabelMatcher.parse(item))
            else:
                matchers.append(LabelMatcher(item["label"], item["op"], str(item["value"])))
        return cls(
            name=str(data["name"]),
            matchers=tuple(matchers),
            group_by=tuple(data.get("group_by", ())),
            window=parse_duration(data.get("window", "1h")),
            min_alerts=int(data.get("min_alerts", 1)),
            reuse_resolved=bool(data.get("reuse_resolved", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "matchers": [str(m) for m in self.matchers],
            "group_by": list(self.group_by),
            "window": f"{int(self.window.total_seconds())}s",
            "min_alerts": self.min_alerts,
            "reuse_resolved": self.reuse_resolved,
        }


def parse_rules(data: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> list[CorrelationRule]:
    """Rules from parsed YAML: a list, or a mapping with a ``rules`` list."""
    items = data.get("rules", []) if isinstance(data, Mapping) else data
    rules = [CorrelationRule.from_dict(item) for item in items or ()]
    names = [rule.name for rule in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate rule names: {duplicates}")
    return rules


def load_rules(path: str | Path) -> list[CorrelationRule]:
    """Rules-as-code from a YAML file (see ``correlation-rules.yml``)."""
    return parse_rules(yaml.safe_load(Path(path).read_text()) or [])


@dataclass
class RuleStrategy:
    """The first matching rule places the alert: its group's incident, a candidate group,
    or a new incident keyed by the rule and the group-by values."""

    rules: Sequence[CorrelationRule] = field(default_factory=list)
    name: str = "rule"

    def match(self, alert: AlertFacts) -> CorrelationRule | None:
        return next((rule for rule in self.rules if rule.matches(alert)), None)

    def decide(
        self, alert: AlertFacts, incidents: Sequence[IncidentFacts], now: datetime
    ) -> Decision | None:
        if alert.status != "firing":
            return None
        rule = self.match(alert)
        if rule is None:
            return None
        key = rule.group_key(alert)
        values = rule.group_values(alert) or "all matching alerts"
        same_group = [i for i in incidents if key in i.group_keys]
        live = [
            i
            for i in same_group
            if i.is_open and alert.received_at - i.last_alert_at <= rule.window
        ]
        if live:
            target = max(live, key=lambda i: i.last_alert_at)
            return Decision(
                alert.id,
                Action.ATTACH,
                target.id,
                self.name,
                f"rule {rule.name}: same {values}, "
                f"{humanize_delta(alert.received_at - target.opened_at)} after the first alert",
                key,
                origin_service=target.origin_service,
            )
        if rule.reuse_resolved:
            recent = [
                i
                for i in same_group
                if i.resolved_at is not None
                and not i.is_open
                and not i.is_pending
                and alert.received_at - i.resolved_at <= rule.window
            ]
            if recent:
                target = max(recent, key=lambda i: i.resolved_at or i.last_alert_at)
                return Decision(
                    alert.id,
                    Action.REOPEN,
                    target.id,
                    self.name,
                    f"rule {rule.name} reuses resolved incidents: same {values}, resolved "
                    f"{humanize_delta(alert.received_at - (target.resolved_at or now))} ago",
                    key,
                    origin_service=target.origin_service,
                )
        if rule.min_alerts > 1:
            return self._candidate(alert, rule, key, values, same_group)
        return Decision(
            alert.id,
            Action.OPEN,
            None,
            self.name,
            f"rule {rule.name}: first alert with {values}",
            key,
            origin_service=alert.service,
            root_service=alert.service,
        )

    def _candidate(
        self,
        alert: AlertFacts,
        rule: CorrelationRule,
        key: str,
        values: str,
        same_group: Sequence[IncidentFacts],
    ) -> Decision:
        waiting = [
            i for i in same_group if i.is_pending and alert.received_at - i.opened_at <= rule.window
        ]
        group = max(waiting, key=lambda i: i.opened_at) if waiting else None
        seen = group.fingerprints if group else set()
        count = len(seen | {alert.fingerprint})
        if count < rule.min_alerts:
            return Decision(
                alert.id,
                Action.HOLD,
                group.id if group else None,
                self.name,
                f"rule {rule.name}: {count} of {rule.min_alerts} alerts with {values} "
                f"within {humanize_delta(rule.window)}; waiting as a candidate",
                key,
            )
        return Decision(
            alert.id,
            Action.OPEN,
            None,
            self.name,
            f"rule {rule.name}: {count} alerts with {values} "
            f"within {humanize_delta(rule.window)} (minimum {rule.min_alerts})",
            key,
            origin_service=alert.service,
            promoted=tuple(group.pending_alert_ids) if group else (),
        )
