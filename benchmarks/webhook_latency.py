"""Webhook-to-incident latency during an alert storm, against the real ingestion path.

Needs PostgreSQL (``DATABASE_URL``, e.g. from ``scripts/services.sh``): the storm's
notifications are posted as Alertmanager webhooks on their schedule (compressed so the
storm fits in a minute) by several senders at once, through the Django test client into
the same code the web process runs (parsing, advisory locks, correlation, incident rows,
timeline). Correlation runs eagerly (``CELERY_TASK_ALWAYS_EAGER``, set by ``make
bench-correlation``): right after each webhook's transaction, in the same request. An
alert's latency is from its scheduled send time to the moment its webhook returned, i.e.
its incident is committed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from lab.storms import Storm, StormAlert


@dataclass
class LatencyReport:
    alerts: int
    webhooks: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    incidents: int
    errors: int


def available() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reliability.settings")
    os.environ.setdefault("THROTTLE_INTEGRATION_RATE", "1000000/min")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _payload(alerts: list[StormAlert], group: str, sent: datetime) -> dict:
    items = []
    for alert in alerts:
        items.append(
            {
                "status": alert.status,
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "startsAt": sent.isoformat(),
                "endsAt": (sent if alert.status == "resolved" else datetime(1, 1, 1, tzinfo=UTC))
                .isoformat()
                .replace("0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00Z"),
                "fingerprint": alert.fingerprint,
            }
        )
    return {
        "version": "4",
        "groupKey": group,
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "receiver": "reliability-studio",
        "alerts": items,
    }


def measure(storm: Storm, *, senders: int = 8, fit_in_s: float = 60.0) -> LatencyReport:
    """Post ``storm`` and time every alert from its send time to its committed incident."""
    _setup()  # Django models can only be imported once it is set up
    from django.db import connection
    from rest_framework.test import APIClient

    from incidents.models import Dependency, Incident, Integration, Service
    from reliability.models import Team

    suffix = f"{storm.seed}-{int(time.time())}"
    team = Team.objects.create(name=f"bench {suffix}", slug=f"bench-{suffix}")
    integration = Integration.objects.create(
        name=f"bench {suffix}", kind=Integration.Kind.ALERTMANAGER, team=team
    )
    made = {
        name: Service.objects.get_or_create(slug=name, defaults={"name": name, "team": team})[0]
        for name in storm.topology
    }
    for name, deps in storm.topology.items():
        for dep in deps:
            Dependency.objects.get_or_create(service=made[name], depends_on=made[dep])
    before = Incident.objects.count()

    compress = max(1.0, max(a.at for a in storm.alerts) / fit_in_s)
    # one webhook per (second, alert name): how Alertmanager batches a group's notification
    batches: dict[tuple[int, str], list[StormAlert]] = defaultdict(list)
    for alert in storm.alerts:
        batches[(int(alert.at / compress), alert.name)].append(alert)
    schedule = sorted(batches.items(), key=lambda kv: kv[0][0])
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    local = threading.local()
    start = time.perf_counter() + 0.5
    wall = datetime.now(UTC)

    def send(slot: int, name: str, alerts: list[StormAlert]) -> None:
        nonlocal errors
        due = start + slot
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client = getattr(local, "client", None) or APIClient()
        local.client = client
        sent = wall + timedelta(seconds=slot)
        response = client.post(
            f"/api/v1/ingest/{integration.token}/",
            data=json.dumps(_payload(alerts, f"{{}}:{{alertname={name!r}}}", sent)),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {integration.secret}",
        )
        done = time.perf_counter()
        with lock:
            if response.status_code != 200:
                errors += 1
            latencies.extend([(done - due) * 1000] * len(alerts))

    def run(item) -> None:
        try:
            send(item[0][0], item[0][1], item[1])
        finally:
            connection.close()

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=senders) as pool:
        list(pool.map(run, schedule))
    seconds = time.perf_counter() - began
    values = np.array(latencies)
    return LatencyReport(
        alerts=len(storm.alerts),
        webhooks=len(schedule),
        seconds=seconds,
        p50_ms=float(np.percentile(values, 50)),
        p95_ms=float(np.percentile(values, 95)),
        p99_ms=float(np.percentile(values, 99)),
        max_ms=float(values.max()),
        incidents=Incident.objects.count() - before,
        errors=errors,
    )
