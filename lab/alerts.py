"""Alert rules evaluated on the lab's own signals, and Alertmanager-format webhooks.

The same rules ship as Prometheus rule files (``lab/rules/*.yml``, written from ``RULES``
by ``write_rule_files``) so a real Prometheus + Alertmanager pointed at the lab fires the
same alerts; the built-in evaluator exists so the demo works with neither.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import numpy as np
import yaml

if TYPE_CHECKING:
    from lab.sim import Lab

log = logging.getLogger(__name__)
RULES_DIR = Path(__file__).with_name("rules")
REPEAT_S = 300.0  # Alertmanager's repeat of still-firing groups, shortened for the demo


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    signal: str
    op: str
    threshold: float
    for_s: float
    expr: str
    summary: str
    group: str = "slo"
    services: tuple[str, ...] = ()


RULES: list[Rule] = [
    Rule(
        "HighErrorRate",
        "critical",
        "error_ratio",
        ">",
        0.05,
        60,
        'sum by (namespace, service) (rate(http_requests_total{code=~"5.."}[2m]))'
        " / sum by (namespace, service) (rate(http_requests_total[2m])) > 0.05",
        "{service}: more than 5% of requests fail",
    ),
    Rule(
        "HighLatencyP99",
        "warning",
        "latency_p99_s",
        ">",
        1.0,
        120,
        "histogram_quantile(0.99, sum by (namespace, service, le) "
        "(rate(http_request_duration_seconds_bucket[2m]))) > 1",
        "{service}: p99 latency above 1s",
    ),
    Rule(
        "CPUSaturation",
        "warning",
        "cpu_util",
        ">",
        0.9,
        120,
        "sum by (namespace, service) (rate(container_cpu_usage_seconds_total[2m]))"
        ' / sum by (namespace, service) (kube_pod_container_resource_limits{resource="cpu"})'
        " > 0.9",
        "{service}: CPU above 90% of its limit",
        "resources",
    ),
    Rule(
        "CPUThrottlingHigh",
        "warning",
        "throttled_ratio",
        ">",
        0.25,
        120,
        "sum by (namespace, service) (rate(container_cpu_cfs_throttled_periods_total[2m]))"
        " / sum by (namespace, service) (rate(container_cpu_cfs_periods_total[2m])) > 0.25",
        "{service}: more than 25% of CPU periods throttled",
        "resources",
    ),
    Rule(
        "MemoryNearLimit",
        "warning",
        "memory_ratio",
        ">",
        0.85,
        30,
        "max by (namespace, service) (max by (namespace, service, pod)"
        " (container_memory_working_set_bytes) / max by (namespace, service, pod)"
        ' (kube_pod_container_resource_limits{resource="memory"})) > 0.85',
        "{service}: a pod's memory is above 85% of its limit",
        "resources",
    ),
    Rule(
        "PodRestarting",
        "critical",
        "restarts_10m",
        ">",
        0.0,
        0,
        "sum by (namespace, service) (increase(kube_pod_container_status_restarts_total[10m])) > 0",
        "{service}: containers restarted in the last 10 minutes",
        "resources",
    ),
    Rule(
        "DBPoolExhausted",
        "critical",
        "pool_ratio",
        ">",
        0.95,
        60,
        "max by (namespace, service) (db_pool_connections_active / db_pool_connections_max) > 0.95",
        "{service}: database connection pool exhausted",
        "resources",
    ),
    Rule(
        "QueueBacklog",
        "warning",
        "queue_depth",
        ">",
        500,
        120,
        'max by (namespace, service) (queue_messages_ready{queue="orders"}) > 500',
        "{service}: more than 500 orders waiting in the queue",
        "resources",
    ),
    Rule(
        "CacheHitRateLow",
        "warning",
        "cache_hit_ratio",
        "<",
        0.5,
        60,
        "sum by (namespace, service) (rate(cache_hits_total[2m])) / (sum by (namespace, service)"
        " (rate(cache_hits_total[2m])) + sum by (namespace, service) "
        "(rate(cache_misses_total[2m])))"
        " < 0.5",
        "{service}: cache hit rate below 50%",
        "resources",
    ),
    Rule(
        "CertificateExpiringSoon",
        "info",
        "cert_days",
        "<",
        30,
        0,
        "min by (namespace, service) (ssl_certificate_expiry_seconds) < 30 * 86400",
        "{service}: TLS certificate expires within 30 days",
        "noise",
        ("gateway",),
    ),
    Rule(
        "DiskSpaceLow",
        "warning",
        "disk_used",
        ">",
        0.85,
        300,
        "max by (namespace, service) (volume_used_ratio) > 0.85",
        "{service}: data volume more than 85% full",
        "noise",
        ("database",),
    ),
    Rule(
        "BatchJobLate",
        "warning",
        "batch_age_s",
        ">",
        2400,
        0,
        "max by (namespace, service) (batch_job_last_success_age_seconds) > 2400",
        "{service}: nightly-export has not succeeded for 40 minutes",
        "noise",
        ("notifications",),
    ),
]


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's label-set fingerprint: FNV-1a 64 over sorted names and values."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for chunk in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in chunk:
                h ^= byte
                h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class AlertState:
    rule: Rule
    service: str
    pending_since: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    last_sent: float = 0.0
    value: float = 0.0

    @property
    def labels(self) -> dict[str, str]:
        return {
            "alertname": self.rule.name,
            "service": self.service,
            "severity": self.rule.severity,
            "namespace": "prod",
        }


@dataclass
class AlertEngine:
    lab: Lab
    states: dict[tuple[str, str], AlertState] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # every firing/resolved transition
    notify: Callable[[list[AlertState], float], None] | None = None
    _restarts: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    external_url: str = "http://127.0.0.1"
    # a demo may shorten every rule's `for` so a fault shows within a minute; the shipped
    # rule files keep the real durations
    for_s_override: float | None = None

    def _extra_signals(self, t: np.ndarray, signals: dict[str, dict[str, np.ndarray]]) -> None:
        for name, sig in signals.items():
            if "restarts" in sig:  # increase over 10 minutes, as increase(...[10m]) sees it
                old_t, old_v = self._restarts.get(name, (np.empty(0), np.empty(0)))
                times = np.concatenate([old_t, t])
                values = np.concatenate([old_v, sig["restarts"]])
                lo = np.searchsorted(times, times - 600.0, side="left")
                new = range(len(old_t), len(values))
                window_min = np.array([values[lo[i] : i + 1].min() for i in new])
                sig["restarts_10m"] = values[len(old_t) :] - window_min
                keep = times >= t[-1] - 600.0
                self._restarts[name] = (times[keep], values[keep])
        if "gateway" in signals:
            signals["gateway"]["cert_days"] = np.full(len(t), 9.0)
        if "database" in signals:
            signals["database"]["disk_used"] = 0.86 + 0.0000004 * (t - self.lab.start)
        if "notifications" in signals:
            signals["notifications"]["batch_age_s"] = t % 2820.0

    def observe(self, t: np.ndarray, signals: dict[str, dict[str, np.ndarray]]) -> None:
        self._extra_signals(t, signals)
        changed: list[AlertState] = []
        for rule in RULES:
            for service, sig in signals.items():
                if rule.signal not in sig or (rule.services and service not in rule.services):
                    continue
                values = sig[rule.signal]
                cond = values > rule.threshold if rule.op == ">" else values < rule.threshold
                state = self.states.setdefault((rule.name, service), AlertState(rule, service))
                for i in range(len(t)):
                    self._step(state, bool(cond[i]), float(t[i]), float(values[i]), changed)
                if state.pending_since is not None:
                    labels = {**state.labels, "__name__": "ALERTS"}
                    firing = state.fired_at is not None
                    labels["alertstate"] = "firing" if firing else "pending"
                    self.lab.tsdb.add(labels, float(t[-1]), 1.0)
        if self.notify is not None:
            now = float(t[-1])
            due = [
                s
                for s in self.states.values()
                if s.fired_at is not None and now - s.last_sent >= REPEAT_S and s not in changed
            ]
            if changed or due:
                self.notify(changed + due, now)

    def _step(self, s: AlertState, cond: bool, t: float, value: float, changed: list) -> None:
        if cond:
            s.value = value
            if s.pending_since is None:
                s.pending_since, s.resolved_at = t, None
            hold = s.rule.for_s if self.for_s_override is None else self.for_s_override
            if s.fired_at is None and t - s.pending_since >= hold:
                s.fired_at = t
                self.history.append({"status": "firing", "at": t, "labels": s.labels})
                changed.append(s)
        elif s.pending_since is not None:
            if s.fired_at is not None:
                s.resolved_at = t
                self.history.append({"status": "resolved", "at": t, "labels": s.labels})
                changed.append(s)
            s.pending_since = None

    def firing(self) -> list[AlertState]:
        return [
            s
            for s in self.states.values()
            if s.fired_at is not None and s.pending_since is not None
        ]

    def alert_json(self, s: AlertState) -> dict:
        firing = s.pending_since is not None and s.fired_at is not None
        expr = s.rule.expr
        return {
            "status": "firing" if firing else "resolved",
            "labels": s.labels,
            "annotations": {
                "summary": s.rule.summary.format(service=s.service),
                "description": f"{s.rule.summary.format(service=s.service)} (value {s.value:.4g})",
                "runbook_url": f"https://runbooks.shop.internal/{s.rule.name}",
            },
            "startsAt": rfc3339(s.fired_at or s.pending_since or 0.0),
            "endsAt": "0001-01-01T00:00:00Z" if firing else rfc3339(s.resolved_at or 0.0),
            "generatorURL": f"{self.external_url}/graph?g0.expr={quote(expr)}&g0.tab=1",
            "fingerprint": fingerprint(s.labels),
        }

    def payloads(
        self, states: list[AlertState], receiver: str = "reliability-studio"
    ) -> list[dict]:
        """One Alertmanager webhook (version 4) per group (alertname, service)."""
        groups: dict[tuple[str, str], list[AlertState]] = {}
        for s in states:
            groups.setdefault((s.rule.name, s.service), []).append(s)
        out = []
        for (alertname, service), members in groups.items():
            alerts = [self.alert_json(s) for s in members]
            common = dict(members[0].labels)
            for s in members[1:]:
                common = {k: v for k, v in common.items() if s.labels.get(k) == v}
            annotations = alerts[0]["annotations"] if len(alerts) == 1 else {}
            out.append(
                {
                    "receiver": receiver,
                    "status": "firing"
                    if any(a["status"] == "firing" for a in alerts)
                    else "resolved",
                    "alerts": alerts,
                    "groupLabels": {"alertname": alertname, "service": service},
                    "commonLabels": common,
                    "commonAnnotations": annotations,
                    "externalURL": self.external_url,
                    "version": "4",
                    "groupKey": f'{{}}:{{alertname="{alertname}", service="{service}"}}',
                    "truncatedAlerts": 0,
                }
            )
        return out


class WebhookSender:
    """Posts payloads from a background thread; failures are logged and retried briefly."""

    def __init__(self, url: str, engine: AlertEngine) -> None:
        # a ``?secret=`` in the URL travels as a bearer header: URLs end up in access logs
        parsed = httpx.URL(url)
        secret = parsed.params.get("secret")
        self.url = str(parsed.copy_remove_param("secret")) if secret else url
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.engine = engine
        self.queue: queue.Queue[dict | None] = queue.Queue()
        self.sent: list[tuple[int, dict]] = []
        self._thread = threading.Thread(target=self._run, name="lab-webhooks", daemon=True)
        self._thread.start()

    def __call__(self, states: list[AlertState], now: float) -> None:
        for s in states:
            s.last_sent = now
        for payload in self.engine.payloads(states):
            self.queue.put(payload)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while (payload := self.queue.get()) is not None:
                for attempt in range(3):
                    try:
                        resp = client.post(self.url, json=payload, headers=self.headers)
                        self.sent.append((resp.status_code, payload))
                        break
                    except httpx.HTTPError as exc:
                        log.warning(
                            "webhook to %s failed (%s), attempt %d", self.url, exc, attempt + 1
                        )
                        time.sleep(0.5 * (attempt + 1))
                self.queue.task_done()
            self.queue.task_done()

    def flush(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=5)


def rule_groups() -> dict[str, dict]:
    """RULES as Prometheus rule files, one per group."""
    files: dict[str, dict] = {}
    for rule in RULES:
        doc = files.setdefault(rule.group, {"groups": [{"name": f"lab-{rule.group}", "rules": []}]})
        doc["groups"][0]["rules"].append(
            {
                "alert": rule.name,
                "expr": rule.expr,
                "for": f"{int(rule.for_s)}s",
                "labels": {"severity": rule.severity},
                "annotations": {
                    "summary": rule.summary.replace("{service}", "{{ $labels.service }}"),
                    "runbook_url": f"https://runbooks.shop.internal/{rule.name}",
                },
            }
        )
    return files


def write_rule_files(directory: Path = RULES_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for group, doc in rule_groups().items():
        path = directory / f"{group}.yml"
        path.write_text(
            "# Generated from lab.alerts.RULES by `python -m lab rules`; edit the rules there.\n"
            + yaml.safe_dump(doc, sort_keys=False, width=120)
        )
        paths.append(path)
    return paths
