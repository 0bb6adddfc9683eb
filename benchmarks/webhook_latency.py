"""Webhook-to-incident latency during an alert storm, against the real ingestion path.

Needs PostgreSQL (``DATABASE_URL``, e.g. from ``scripts/services.sh``): the storm's
notifications are posted as Alertmanager webhooks on their schedule (compressed so the
storm fits in a minute) by several senders at once, through the Django test client into
the same code the web process runs (parsing, advisory locks, correlation, incident rows,
timeline). Two modes:

- ``eager``: correlation runs right after each webhook's transaction, in the request (the
  embedded default, ``CELERY_TASK_ALWAYS_EAGER``);
- ``queue``: the deployed design. Webhooks only store their alerts and queue
  ``correlate_pending`` on the ``correlation`` queue; a real Celery worker (started here as
  a subprocess, solo pool, on the Redis broker of ``REDIS_URL``) decides them.

An alert's webhook-to-incident latency is from its scheduled send time until its row is
seen decided (``correlation_pending`` false: attached to an incident, held in a rule's
candidate group, or ignored). A poller reads the integration's still-undecided
fingerprints every ``POLL_S`` (one query on the backlog's partial index) and notes, for
each notification whose webhook had returned before the poll began, the first poll that
saw it decided. Only firing notifications are flagged for correlation, so only they count
towards webhook-to-incident; request latency (send time to webhook returned) counts all.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.processes import celery_worker
from lab.storms import Storm, StormAlert

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.05
DRAIN_LIMIT_S = 120.0
MODES = ("eager", "queue")


@dataclass
class LatencyReport:
    mode: str
    alerts: int
    webhooks: int
    seconds: float  # from the first scheduled send to the last webhook returned
    # webhook to incident (firing notifications, send time to seen decided)
    decided: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # send time to webhook returned (all notifications)
    request_p50_ms: float
    request_p95_ms: float
    request_p99_ms: float
    request_max_ms: float
    drain_s: float  # last webhook returned to nothing of the storm left undecided
    incidents: int
    undecided: int  # firing notifications still undecided after the drain limit
    errors: int


def available() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def queue_available() -> bool:
    return available() and os.environ.get("REDIS_URL", "").startswith("redis://")


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reliability.settings")
    os.environ.setdefault("THROTTLE_INTEGRATION_RATE", "1000000/min")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # not a line per eager task on stdout
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


@contextmanager
def _eager(on: bool):
    """Correlation in the request (``on``) or on the broker, for Django and Celery alike."""
    from django.conf import settings

    from reliability.celery import app

    before = (settings.CELERY_TASK_ALWAYS_EAGER, app.conf.task_always_eager)
    settings.CELERY_TASK_ALWAYS_EAGER = on
    app.conf.task_always_eager = on
    try:
        yield
    finally:
        settings.CELERY_TASK_ALWAYS_EAGER, app.conf.task_always_eager = before


class Poller(threading.Thread):
    """Notes when each stored firing notification is first seen decided."""

    def __init__(self, integration_id: int) -> None:
        super().__init__(daemon=True)
        self.integration_id = integration_id
        self.lock = threading.Lock()
        self.waiting: dict[int, tuple[str, float]] = {}  # notification -> (fingerprint, due)
        self.latencies: list[float] = []
        self.last_decided = 0.0
        self.stop = threading.Event()

    def stored(self, index: int, fingerprint: str, due: float) -> None:
        """Call once the notification's webhook has returned (its row is committed)."""
        with self.lock:
            self.waiting[index] = (fingerprint, due)

    def poll(self) -> None:
        from incidents.models import Alert

        with self.lock:  # only rows committed before the query can be judged by it
            known = dict(self.waiting)
        if not known:
            return
        pending = set(
            Alert.objects.filter(
                integration_id=self.integration_id, correlation_pending=True
            ).values_list("fingerprint", flat=True)
        )
        seen = time.perf_counter()
        with self.lock:
            for index, (fingerprint, due) in known.items():
                if fingerprint not in pending:
                    self.latencies.append((seen - due) * 1000)
                    self.last_decided = seen
                    del self.waiting[index]

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stop.is_set():
                self.poll()
                time.sleep(POLL_S)
        finally:
            connection.close()

    def left(self) -> int:
        with self.lock:
            return len(self.waiting)


def _percentiles(values: list[float]) -> tuple[float, float, float, float]:
    if not values:
        return (0.0, 0.0, 0.0, 0.0)
    array = np.array(values)
    return (
        float(np.percentile(array, 50)),
        float(np.percentile(array, 95)),
        float(np.percentile(array, 99)),
        float(array.max()),
    )


def measure(
    storm: Storm, *, mode: str = "eager", senders: int = 8, fit_in_s: float = 60.0
) -> LatencyReport:
    """Post ``storm`` and time every alert from its send time to its committed decision."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    _setup()  # Django models can only be imported once it is set up
    from django.db import connection
    from rest_framework.test import APIClient

    from incidents.models import Dependency, Incident, Integration, Service
    from reliability.models import Team

    suffix = f"{mode}-{storm.seed}-{int(time.time())}"
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

    compress = max(1.0, max(a.at for a in storm.alerts) / fit_in_s)
    # one webhook per (second, alert name): how Alertmanager batches a group's notification
    batches: dict[tuple[int, str], list[tuple[int, StormAlert]]] = defaultdict(list)
    for index, alert in enumerate(storm.alerts):
        batches[(int(alert.at / compress), alert.name)].append((index, alert))
    schedule = sorted(batches.items(), key=lambda kv: kv[0][0])
    requests: list[float] = []
    errors = 0
    lock = threading.Lock()
    local = threading.local()
    poller = Poller(integration.pk)

    def send(slot: int, name: str, items: list[tuple[int, StormAlert]], start, wall) -> None:
        nonlocal errors
        due = start + slot
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client = getattr(local, "client", None) or APIClient()
        local.client = client
        sent = wall + timedelta(seconds=slot)
        alerts = [alert for _index, alert in items]
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
            requests.extend([(done - due) * 1000] * len(items))
        if response.status_code == 200:
            for index, alert in items:
                if alert.status == "firing":
                    poller.stored(index, alert.fingerprint, due)

    def run(item, start, wall) -> None:
        try:
            send(item[0][0], item[0][1], item[1], start, wall)
        finally:
            connection.close()

    with _eager(mode == "eager"), celery_worker() if mode == "queue" else _nothing():
        poller.start()
        start = time.perf_counter() + 0.5
        wall = datetime.now(UTC)
        with ThreadPoolExecutor(max_workers=senders) as pool:
            list(pool.map(lambda item: run(item, start, wall), schedule))
        responded = time.perf_counter()
        deadline = responded + DRAIN_LIMIT_S
        while poller.left() and time.perf_counter() < deadline:
            time.sleep(POLL_S)
        poller.stop.set()
        poller.join()
    drain = max(0.0, poller.last_decided - responded) if not poller.left() else DRAIN_LIMIT_S
    to_incident = _percentiles(poller.latencies)
    request = _percentiles(requests)
    return LatencyReport(
        mode=mode,
        alerts=len(storm.alerts),
        webhooks=len(schedule),
        seconds=responded - start,
        decided=len(poller.latencies),
        p50_ms=to_incident[0],
        p95_ms=to_incident[1],
        p99_ms=to_incident[2],
        max_ms=to_incident[3],
        request_p50_ms=request[0],
        request_p95_ms=request[1],
        request_p99_ms=request[2],
        request_max_ms=request[3],
        drain_s=drain,
        incidents=Incident.objects.filter(team=team).count(),
        undecided=poller.left(),
        errors=errors,
    )


@contextmanager
def _nothing():
    yield None
