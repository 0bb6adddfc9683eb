from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

IncidentId = int | str


class Action(StrEnum):
    ATTACH = "attach"  # join an open incident
    OPEN = "open"  # start a new incident
    REOPEN = "reopen"  # bring a recently resolved incident back (flapping)
    KEEP = "keep"  # already attached where it belongs: nothing to do
    IGNORE = "ignore"  # a resolution for an alert that never opened anything


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


@dataclass
class IncidentFacts:
    """What correlation needs to know of an incident; updated in memory during a batch."""

    id: IncidentId
    status: str
    opened_at: datetime
    last_alert_at: datetime
    group_keys: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    alert_names: set[str] = field(default_factory=set)
    fingerprints: set[str] = field(default_factory=set)
    resolved_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"


@dataclass(frozen=True)
class Decision:
    alert_id: IncidentId
    action: Action
    incident_id: IncidentId | None
    strategy: str
    reason: str
    group_key: str = ""
