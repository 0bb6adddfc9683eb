from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

IncidentId = int | str

PENDING = "pending"  # status of a candidate group waiting for a rule's minimum alert count


class Action(StrEnum):
    ATTACH = "attach"  # join an open incident
    OPEN = "open"  # start a new incident
    REOPEN = "reopen"  # bring a recently resolved incident back (flapping)
    KEEP = "keep"  # already attached where it belongs: nothing to do
    IGNORE = "ignore"  # a resolution for an alert that never opened anything
    HOLD = "hold"  # wait as a candidate: the matching rule needs more alerts first


@dataclass(frozen=True)
class AlertFacts:
    """One alert as correlation sees it."""

    id: IncidentId
    fingerprint: str
    name: str
    status: str  # "firing" | "resolved"
    starts_at: datetime
    received_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    service: str | None = None
    source: str = ""
    group_key: str = ""
    incident_id: IncidentId | None = None
    kind: str = ""  # "cause" | "symptom" | "other" (see kinds.py); "" when not classified

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", "") or self.annotations.get("description", "")


@dataclass
class IncidentFacts:
    """What correlation needs to know of an incident; updated in memory during a batch.

    A rule's candidate group (alerts waiting for ``min_alerts``) is represented the same
    way with ``status == "pending"``; it is not open, so only the rule strategy sees it.
    """

    id: IncidentId
    status: str
    opened_at: datetime
    last_alert_at: datetime
    group_keys: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    alert_names: set[str] = field(default_factory=set)
    fingerprints: set[str] = field(default_factory=set)
    resolved_at: datetime | None = None
    origin_service: str | None = None
    root_services: set[str] = field(default_factory=set)
    # evidence per service: its distinct alerts, a service-wide one counting double
    service_alerts: dict[str, int] = field(default_factory=dict)
    cause_services: set[str] = field(default_factory=set)  # services with a cause alert
    checks: set[str] = field(default_factory=set)  # its alerts' checks (see check_key)
    # when each service's latest distinct alert first fired here: symptoms of one failure
    # reach a caller together, so a caller's next symptom most likely has the same cause
    service_seen: dict[str, datetime] = field(default_factory=dict)
    # when this incident's failure reached each service: its first cause or symptom there
    service_first: dict[str, datetime] = field(default_factory=dict)
    alert_count: int = 0
    summaries: set[str] = field(default_factory=set)
    pending_alert_ids: list[IncidentId] = field(default_factory=list)
    rule: str = ""

    @property
    def is_open(self) -> bool:
        return self.status not in ("resolved", PENDING)

    @property
    def is_pending(self) -> bool:
        return self.status == PENDING

    def roots(self) -> set[str]:
        """Services this incident is about (its origin and services that joined as a
        cause), as opposed to services only showing symptoms."""
        return {*self.root_services, *filter(None, [self.origin_service])}

    def evidence(self, service: str) -> int:
        """Distinct cause or symptom alerts on ``service``, a service-wide one counting
        double (see ``evidence_weight``); a cause alert counts as plenty.

        Counts are unknown only when nothing at all is known of the incident's alerts; an
        incident holding only housekeeping alerts ('other' kind) has no evidence anywhere,
        so no symptom follows an edge to it."""
        if service in self.cause_services:
            return 1_000
        if not self.service_alerts and not self.checks:
            return 1_000
        return self.service_alerts.get(service, 0)

    @property
    def rule_owned(self) -> bool:
        """Opened by a correlation rule: only that rule adds alerts to it."""
        return bool(self.rule)


@dataclass(frozen=True)
class Decision:
    """Where an alert goes and why. ``reason`` is written to the incident timeline.

    ``promoted`` lists candidate alerts that were waiting for a rule's minimum count and
    join the incident this decision opens; ``origin_service`` is the incident's probable
    origin after this alert; ``root_service`` a service that joins the incident's roots
    (a cause, not a symptom); ``alternatives`` are equally good incidents a tie-breaker
    chose between; ``merges`` are open incidents this alert explains, folded into
    ``incident_id`` (their alerts move there).
    """

    alert_id: IncidentId
    action: Action
    incident_id: IncidentId | None
    strategy: str
    reason: str
    group_key: str = ""
    origin_service: str | None = None
    root_service: str | None = None
    promoted: tuple[IncidentId, ...] = ()
    alternatives: tuple[IncidentId, ...] = ()
    score: float | None = None
    merges: tuple[IncidentId, ...] = ()
