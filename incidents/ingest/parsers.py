"""Webhook payloads → ``AlertIn``: plain parsing with field-level errors.

Three sources are understood: Prometheus Alertmanager (webhook version 4), Grafana unified
alerting, and a documented generic JSON (see docs/ingestion.md). Parsing never touches the
database; anything wrong is reported as ``PayloadError`` with a path for every bad field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

MAX_ALERTS_PER_REQUEST = 1000
_ZERO_TIME_PREFIX = "0001-01-01"  # Alertmanager's "no end time"


@dataclass
class AlertIn:
    fingerprint: str
    name: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str = ""
    group_key: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class PayloadError(Exception):
    """Invalid payload; ``errors`` maps a field path (``alerts[3].labels``) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise PayloadError(self.errors)


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """A stable id for a label set (sorted, so key order never matters)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _string_map(value: Any, path: str, errors: _Errors, *, required: bool) -> dict[str, str]:
    if value is None:
        if required:
            errors.add(path, "This field is required.")
        return {}
    if not isinstance(value, dict):
        errors.add(path, f"Expected an object of strings, got {type(value).__name__}.")
        return {}
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    for key in bad:
        errors.add(f"{path}.{key}", "Expected a string.")
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _time(value: Any, path: str, errors: _Errors, *, default: datetime | None) -> datetime | None:
    if value in (None, ""):
        return default
    if not isinstance(value, str):
        errors.add(path, "Expected an RFC 3339 timestamp string.")
        return default
    if value.startswith(_ZERO_TIME_PREFIX):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        errors.add(path, f"Not an RFC 3339 timestamp: {value[:40]!r}.")
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _status(value: Any, path: str, errors: _Errors, default: str | None = None) -> str:
    if value is None and default:
        return default
    if value not in ("firing", "resolved"):
        errors.add(path, "Must be 'firing' or 'resolved'.")
        return "firing"
    return value


def _alerts_list(payload: dict[str, Any], errors: _Errors) -> list[Any]:
    alerts = payload.get("alerts")
    if alerts is None:
        errors.add("alerts", "This field is required.")
        return []
    if not isinstance(alerts, list):
        errors.add("alerts", "Expected a list.")
        return []
    if len(alerts) > MAX_ALERTS_PER_REQUEST:
        errors.add("alerts", f"At most {MAX_ALERTS_PER_REQUEST} alerts per request.")
        return []
    return alerts


def _batch(
    payload: dict[str, Any], group_field: str, errors: _Errors
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The payload's group key and its alert objects, each with its path for errors."""
    group_key = payload.get(group_field, "")
    if not isinstance(group_key, str):
        errors.add(group_field, "Expected a string.")
        group_key = ""
    items = []
    for i, item in enumerate(_alerts_list(payload, errors)):
        path = f"alerts[{i}]"
        if isinstance(item, dict):
            items.append((path, item))
        else:
            errors.add(path, "Expected an object.")
    return group_key, items


def _build(
    item: dict[str, Any],
    path: str,
    errors: _Errors,
    now: datetime,
    *,
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    status: str,
    group_key: str,
    fields: tuple[str, str, str],
) -> AlertIn | None:
    """The parts every format shares: times, fingerprint, link. ``fields`` names the start,
    end and link fields in this format."""
    start_field, end_field, url_field = fields
    starts_at = _time(item.get(start_field), f"{path}.{start_field}", errors, default=now)
    ends_at = _time(item.get(end_field), f"{path}.{end_field}", errors, default=None)
    fingerprint = item.get("fingerprint") or fingerprint_of(labels)
    if not isinstance(fingerprint, str):
        errors.add(f"{path}.fingerprint", "Expected a string.")
        return None
    url = item.get(url_field) or ""
    if not isinstance(url, str):
        errors.add(f"{path}.{url_field}", "Expected a string.")
        url = ""
    return AlertIn(
        fingerprint=fingerprint[:128],
        name=name[:200],
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at or now,
        ends_at=ends_at if status == "resolved" else None,
        generator_url=url[:1000],
        group_key=group_key[:400],
        raw=item,
    )


def _prometheus_style(payload: dict[str, Any], now: datetime) -> list[AlertIn]:
    """Alertmanager and Grafana share the alert shape: labels, annotations, startsAt..."""
    errors = _Errors()
    group_key, items = _batch(payload, "groupKey", errors)
    out = []
    for path, item in items:
        labels = _string_map(item.get("labels"), f"{path}.labels", errors, required=True)
        annotations = _string_map(
            item.get("annotations"), f"{path}.annotations", errors, required=False
        )
        status = _status(item.get("status"), f"{path}.status", errors)
        if "labels" in item and isinstance(item["labels"], dict) and not labels.get("alertname"):
            errors.add(f"{path}.labels.alertname", "This label is required.")
        alert = _build(
            item,
            path,
            errors,
            now,
            name=labels.get("alertname", ""),
            labels=labels,
            annotations=annotations,
            status=status,
            group_key=group_key,
            fields=("startsAt", "endsAt", "generatorURL"),
        )
        if alert is not None:
            out.append(alert)
    errors.raise_if_any()
    return out


def parse_alertmanager(payload: Any, now: datetime) -> list[AlertIn]:
    """Alertmanager webhook, version 4."""
    if not isinstance(payload, dict):
        raise PayloadError({"non_field_errors": ["Expected a JSON object."]})
    version = payload.get("version")
    if version is not None and str(version) != "4":
        raise PayloadError({"version": [f"Unsupported webhook version {version!r}; expected '4'."]})
    return _prometheus_style(payload, now)


def parse_grafana(payload: Any, now: datetime) -> list[AlertIn]:
    """Grafana unified alerting webhook (Alertmanager shape plus Grafana's extra fields)."""
    if not isinstance(payload, dict):
        raise PayloadError({"non_field_errors": ["Expected a JSON object."]})
    return _prometheus_style(payload, now)


def parse_generic(payload: Any, now: datetime) -> list[AlertIn]:
    """Generic JSON: ``{"alerts": [{"name", "status", "labels", ...}]}`` or one alert object."""
    if isinstance(payload, dict) and "alerts" not in payload:
        payload = {"alerts": [payload]}
    if not isinstance(payload, dict):
        raise PayloadError({"non_field_errors": ["Expected a JSON object."]})
    errors = _Errors()
    group_key, items = _batch(payload, "group_key", errors)
    out = []
    for path, item in items:
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.add(f"{path}.name", "A non-empty string is required.")
            name = ""
        labels = _string_map(item.get("labels"), f"{path}.labels", errors, required=False)
        labels.setdefault("alertname", name)
        annotations = _string_map(
            item.get("annotations"), f"{path}.annotations", errors, required=False
        )
        if isinstance(item.get("summary"), str):
            annotations.setdefault("summary", item["summary"])
        status = _status(item.get("status"), f"{path}.status", errors, default="firing")
        alert = _build(
            item,
            path,
            errors,
            now,
            name=name,
            labels=labels,
            annotations=annotations,
            status=status,
            group_key=group_key,
            fields=("starts_at", "ends_at", "url"),
        )
        if alert is not None:
            out.append(alert)
    errors.raise_if_any()
    return out


PARSERS: dict[str, Callable[[Any, datetime], list[AlertIn]]] = {
    "alertmanager": parse_alertmanager,
    "grafana": parse_grafana,
    "generic": parse_generic,
}


def group_key_for(alert: AlertIn, group_by: list[str]) -> str:
    """The configured label set wins; else the source's group key; else service/alertname."""
    if group_by:
        return ",".join(f"{name}={alert.labels.get(name, '')}" for name in group_by)
    if alert.group_key:
        return alert.group_key
    if alert.labels.get("service"):
        return f"service={alert.labels['service']}"
    return f"alertname={alert.name}"


def now_utc() -> datetime:
    return datetime.now(UTC)
