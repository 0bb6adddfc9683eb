"""Cause, symptom or other: what an alert says about the service it fires on.

An on-call engineer reads "KubePodCrashLooping on checkout" as something wrong *with*
checkout, "HighErrorRate on checkout" as something checkout *suffers* (possibly from a
dependency), and "CertificateExpiringSoon" as neither. Symptoms travel upstream along
dependencies; causes anchor an incident; other alerts never pull alerts together.
The defaults follow common kube-prometheus and RED/SLO alert names; teams override them
in ``correlation-rules.yml`` (``kinds:``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from incidents.correlation.rules import LabelMatcher, effective_labels
from incidents.correlation.types import AlertFacts


class Kind(StrEnum):
    CAUSE = "cause"
    SYMPTOM = "symptom"
    OTHER = "other"


DEFAULT_CAUSES = (
    LabelMatcher(
        "alertname",
        "=~",
        "(KubePod|KubeNode|KubeDeployment|KubeStatefulSet|KubeContainer|Container|Datastore|Postgres"
        "|Mysql|Redis|Kafka|Rabbitmq|Elasticsearch|Node|Kubelet|CPUThrottling|Memory|OOM)"
        ".*",
    ),
)
DEFAULT_SYMPTOMS = (
    LabelMatcher(
        "alertname",
        "=~",
        ".*(Error|Errors|5xx|Latency|Slow|Timeout|Timeouts|SLO|ErrorBudget|Burn|Unavailable"
        "|Availability|Down|Failing|Saturat).*",
    ),
)


@dataclass(frozen=True)
class AlertKinds:
    """Any one matcher of a list classifies an alert; a label ``correlation_kind`` on the
    alert itself wins over both lists."""

    causes: Sequence[LabelMatcher] = DEFAULT_CAUSES
    symptoms: Sequence[LabelMatcher] = DEFAULT_SYMPTOMS
    _cache: dict[str, Kind] = field(default_factory=dict, compare=False, repr=False)

    def of(self, alert: AlertFacts) -> Kind:
        explicit = alert.labels.get("correlation_kind")
        if explicit in Kind.__members__.values():
            return Kind(explicit)
        cached = self._cache.get(alert.name)
        if cached is not None:
            return cached
        labels = effective_labels(alert)
        if any(m.matches(labels) for m in self.causes):
            kind = Kind.CAUSE
        elif any(m.matches(labels) for m in self.symptoms):
            kind = Kind.SYMPTOM
        else:
            kind = Kind.OTHER
        if all(m.label == "alertname" for m in (*self.causes, *self.symptoms)):
            self._cache[alert.name] = kind  # only the name decides: safe to remember
        return kind

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AlertKinds:
        if not data:
            return cls()

        def matchers(items: Any, default: Sequence[LabelMatcher]) -> tuple[LabelMatcher, ...]:
            if items is None:
                return tuple(default)
            return tuple(LabelMatcher.parse(item) for item in items)

        return cls(
            causes=matchers(data.get("causes"), DEFAULT_CAUSES),
            symptoms=matchers(data.get("symptoms"), DEFAULT_SYMPTOMS),
        )
