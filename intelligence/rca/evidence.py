"""What a finding says about its service as a possible cause: its evidence family.

Signals hand RCA findings of a few kinds (``metric_anomaly``, ``log_pattern``,
``trace_error``, ``trace_latency``, ``change``, ``k8s_event``, ``impact``, ``slo_burn``).
RCA needs one more distinction: is this evidence *own* (only the service itself can
produce it: its CPU, memory, restarts, its deploy) or *inheritable* (a dependency's
failure shows up here too: latency, errors, traffic, error logs)? Metric families are
recognised by the naming conventions Prometheus exporters share (cAdvisor ``container_*``,
kube-state-metrics ``kube_*``, ``*_seconds`` histograms, ``*_requests_total``), never by the
names of one estate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from intelligence.signals.types import Finding

# family -> (own evidence?, hypothesis kind it supports)
FAMILIES: dict[str, tuple[bool, str | None]] = {
    "deploy": (True, "bad_deploy"),
    "config": (True, "config_or_flag"),
    "cpu": (True, "resource_exhaustion"),
    "memory": (True, "resource_exhaustion"),
    "pool": (True, "resource_exhaustion"),
    "disk": (True, "resource_exhaustion"),
    "throttling": (True, "noisy_neighbour"),
    "network": (True, "network_loss"),
    "crash": (True, "unavailable"),
    "k8s_warning": (True, None),
    "trace_origin": (True, "error_surge"),
    "trace_self_time": (True, "slow_dependency"),
    "latency": (False, "slow_dependency"),
    "errors": (False, "error_surge"),
    "traffic": (False, None),
    "saturation": (False, "resource_exhaustion"),
    "logs": (False, "error_surge"),
    "queue": (False, None),
    "symptom": (False, None),  # impact, SLO burn: a user-visible consequence, never a cause
    "correlation": (False, None),  # correlation's probable origin (an item of its own)
    "other": (False, None),
}

_FUNCTIONS = {
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "sum",
    "avg",
    "max",
    "min",
    "count",
    "histogram_quantile",
    "quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "topk",
    "bottomk",
    "abs",
    "clamp_min",
    "clamp_max",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "sum_over_time",
    "quantile_over_time",
    "le",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
}
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_CODE_5XX = re.compile(r"""(?:code|status|status_code|response_code)\s*=~?\s*"5""")


def metric_name(finding: Finding) -> str:
    """The metric a finding is about: ``details['metric']`` if the signal says, else the
    first selector name in its PromQL."""
    for key in ("metric", "__name__", "name"):
        value = finding.details.get(key)
        if isinstance(value, str) and value:
            return value
    labels = finding.details.get("labels")
    if isinstance(labels, dict) and isinstance(labels.get("__name__"), str):
        return labels["__name__"]
    query = finding.pointer.query or ""
    query = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)  # label values are not names
    for match in _IDENT.finditer(query):
        name = match.group(0)
        rest = query[match.end() :].lstrip()
        if name in _FUNCTIONS or rest.startswith("(") or rest.startswith("="):
            continue
        return name
    return ""


def _metric_family(finding: Finding) -> str:
    name = metric_name(finding).lower()
    query = finding.pointer.query or ""
    text = f"{name} {query.lower()}"
    if "throttl" in name:
        return "throttling"
    if "flag" in name or "config" in name:
        return "config"
    if "build_info" in name or name.endswith("_version") or "version_info" in name:
        return "deploy"
    if "restart" in name or "oom" in name or "terminated" in name:
        return "crash"
    if ("network" in name or "packet" in name or "tcp" in name or "_net_" in name) and any(
        w in name for w in ("drop", "error", "retrans", "loss", "fail")
    ):
        return "network"
    if "cpu" in name:
        return "cpu"
    if "memory" in name or "_mem_" in name or "heap" in name or "rss" in name:
        return "memory"
    if "pool" in name or ("connection" in name and "active" in name):
        return "pool"
    if "fs_" in name or "disk" in name or "volume" in name or "_io_" in name:
        return "disk"
    if "saturation" in name or "utiliz" in name:
        return "saturation"
    if name.endswith("_count"):
        return "traffic"  # how many were observed, whatever the histogram measures
    if "queue" in name or "backlog" in name or re.search(r"(^|_)lag(_|$)", name):
        return "queue"
    if any(w in name for w in ("duration", "latency", "response_time", "_seconds")):
        return "latency"
    if _CODE_5XX.search(query) or any(w in name for w in ("error", "fail", "exception")):
        return "errors"
    if "network" in name or "_net_" in name:
        return "traffic"
    if "request" in name or "calls" in name or "total" in text:
        return "traffic"
    return "other"


_DEPLOY_WORDS = ("deploy", "rollout", "image", "version", "revision", "replicaset", "release")
_CONFIG_WORDS = ("flag", "config", "configmap", "feature", "setting", "secret")
_CRASH_REASONS = ("oom", "backoff", "crashloop", "killing", "evicted", "failed")


def family(finding: Finding) -> str:
    """The evidence family of one finding (see ``FAMILIES``)."""
    kind = finding.kind
    if kind == "metric_anomaly":
        fam = _metric_family(finding)
        if direction(finding) == "down" and fam not in ("config", "deploy"):
            return "other"  # less work done, less resource used: a consequence, not a cause
        return fam
    if kind == "change":
        what = " ".join(
            str(finding.details.get(k, "")) for k in ("change", "type", "what", "reason")
        )
        text = f"{what} {finding.title}".lower()
        if any(w in text for w in _CONFIG_WORDS):
            return "config"
        if any(w in what.lower() for w in ("scal", "restart")):
            return "other"  # capacity or a restart: rarely what broke it
        return "deploy"
    if kind == "k8s_event":
        reason = f"{finding.details.get('reason', '')} {finding.title}".lower()
        if "oom" in reason:
            return "memory"
        if "flag" in reason or "config" in reason:
            return "config"
        if any(w in reason for w in _CRASH_REASONS):
            return "crash"
        return "k8s_warning"
    if kind == "trace_error":
        origin = finding.details.get("error_origin") or finding.details.get("origin")
        return "trace_origin" if origin else "errors"
    if kind == "trace_latency":
        own = finding.details.get("self_time_increase") or finding.details.get("self_time")
        return "trace_self_time" if own else "latency"
    if kind == "log_pattern":
        return "logs"
    if kind in ("impact", "slo_burn"):
        return "symptom"
    return "other"


def is_own(family_name: str) -> bool:
    return FAMILIES.get(family_name, (False, None))[0]


def direction(finding: Finding) -> str:
    """``up``, ``down`` or ``""`` (unknown) for a metric finding."""
    value = finding.details.get("direction")
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class EvidenceItem:
    """One finding as RCA weighs it: supporting or contradicting a hypothesis, and why."""

    finding: Finding
    family: str
    weight: float
    supports: bool
    reason: str

    def as_dict(self) -> dict:
        return {
            "family": self.family,
            "weight": round(self.weight, 4),
            "supports": self.supports,
            "reason": self.reason,
            "finding": self.finding.as_dict(),
        }
