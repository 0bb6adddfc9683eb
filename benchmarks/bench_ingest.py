"""Webhook ingestion benchmark (not a test): Alertmanager payloads posted over HTTP to a
real ASGI server on PostgreSQL, batches of 1, 10 and 100 alerts, 1 and 8 concurrent clients.

Run through ``make bench-ingest`` (which starts throwaway PostgreSQL and Redis). Prints
alerts/s and p50/p99 request latency, then waits until the Celery worker has correlated
every alert of the scenario and reports webhook-to-incident p50/p99 (from the request's
start to the poll that saw all its alerts decided) and the decided alerts/s. Writes
bench-results/ingest.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.processes import celery_worker, running

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["gateway", "auth", "catalog", "search", "cart", "checkout", "payments", "inventory"]
NAMES = ["HighErrorRate", "HighLatency", "PodRestarts", "CPUSaturation", "QueueBacklog"]


@dataclass
class Row:
    batch: int
    clients: int
    requests: int
    alerts: int
    seconds: float
    alerts_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    decided_per_s: float = 0.0
    to_incident_p50_ms: float = 0.0
    to_incident_p99_ms: float = 0.0
    drain_s: float = 0.0


def setup_integration() -> tuple[str, str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reliability.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from incidents.models import Integration, Service
    from reliability.models import Team

    call_command("migrate", verbosity=0)
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    for slug in SERVICES:
        Service.objects.get_or_create(slug=slug, defaults={"name": slug, "team": team})
    integration = Integration.objects.create(
        name=f"bench-{time.time()}", kind="alertmanager", team=team
    )
    return integration.token, integration.secret


def payload(batch: int, seq: int, run: str) -> bytes:
    alerts = []
    for i in range(batch):
        n = seq * batch + i
        service = SERVICES[n % len(SERVICES)]
        name = NAMES[(n // len(SERVICES)) % len(NAMES)]
        alerts.append(
            {
                "status": "firing",
                "labels": {
                    "alertname": name,
                    "service": service,
                    "severity": "warning",
                    "pod": f"{service}-{n % 7}",
                    "instance": f"10.0.{n % 250}.{n % 13}:9100",
                },
                "annotations": {"summary": f"{name} on {service}"},
                "startsAt": "2026-11-28T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus/graph",
                "fingerprint": f"{run}-{n:08x}",
            }
        )
    group = f'{{}}:{{alertname="{NAMES[seq % len(NAMES)]}", run="{run}-{seq % 40}"}}'
    body = {
        "version": "4",
        "groupKey": group,
        "status": "firing",
        "receiver": "bench",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }
    return json.dumps(body).encode()


POLL_S = 0.05


class Backlog(threading.Thread):
    """Polls the alerts of one run still waiting for correlation, and notes when each
    request's alerts were all decided (only the backlog is read: cheap while it is small)."""

    def __init__(self, run: str) -> None:
        super().__init__(daemon=True)
        self.run_prefix = run
        self.lock = threading.Lock()
        self.waiting: dict[int, tuple[float, set[str]]] = {}  # stored, not yet seen decided
        self.decided: dict[int, float] = {}
        self.done = threading.Event()

    def stored(self, index: int, started: float, fingerprints: set[str]) -> None:
        with self.lock:
            self.waiting[index] = (started, fingerprints)

    def run(self) -> None:
        from django.db import connection

        from incidents.models import Alert

        try:
            while True:
                pending = set(
                    Alert.objects.filter(
                        fingerprint__startswith=self.run_prefix, correlation_pending=True
                    ).values_list("fingerprint", flat=True)
                )
                now = time.perf_counter()
                with self.lock:
                    for index, (_started, fingerprints) in list(self.waiting.items()):
                        if not fingerprints & pending:
                            self.decided[index] = now
                            del self.waiting[index]
                    finished = self.done.is_set() and not self.waiting
                if finished:
                    return
                time.sleep(POLL_S)
        finally:
            connection.close()


def fingerprints_of(body: bytes) -> set[str]:
    return {a["fingerprint"] for a in json.loads(body)["alerts"]}


def run_scenario(
    url: str, secret: str, batch: int, clients: int, requests: int, limit_s: float = 20.0
) -> Row:
    run = f"b{batch}c{clients}t{int(time.time() * 1000) % 10**8}"
    bodies = [payload(batch, seq, run) for seq in range(requests)]
    latencies: list[float] = []
    starts: dict[int, float] = {}
    errors = 0
    backlog = Backlog(run)
    backlog.start()
    lock = threading.Lock()
    next_index = iter(range(requests))

    stop_at = time.perf_counter() + limit_s

    def worker() -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        with httpx.Client(timeout=30, headers=headers) as client:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None or time.perf_counter() > stop_at:
                    return
                start = time.perf_counter()
                response = client.post(url, content=bodies[index])
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    starts[index] = start
                    if response.status_code != 200:
                        errors += 1
                    else:
                        backlog.stored(index, start, fingerprints_of(bodies[index]))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    responded = time.perf_counter()
    backlog.done.set()
    backlog.join(timeout=300)
    drained = time.perf_counter()
    to_incident = sorted(backlog.decided[i] - starts[i] for i in backlog.decided)
    latencies.sort()
    done = len(latencies)  # fewer than asked when the time limit stopped the clients
    p99 = latencies[min(done - 1, int(done * 0.99))]
    return Row(
        batch,
        clients,
        done,
        done * batch,
        round(seconds, 3),
        round(done * batch / seconds, 1),
        round(statistics.median(latencies) * 1000, 1),
        round(p99 * 1000, 1),
        errors + len(backlog.waiting),  # alerts never decided count as errors
        round(done * batch / (drained - started), 1),
        round(statistics.median(to_incident) * 1000, 1) if to_incident else 0.0,
        round(percentile(to_incident, 0.99) * 1000, 1) if to_incident else 0.0,
        round(drained - responded, 2),
    )


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--alerts", type=int, default=6000, help="alerts per scenario (at most)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time per scenario (at most)")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "ingest"))
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        print(
            "DATABASE_URL must point at PostgreSQL (make bench-ingest starts one)", file=sys.stderr
        )
        return 2
    token, secret = setup_integration()
    port = int(os.environ.get("BENCH_PORT", "18765"))
    env = {  # on top of this process's environment
        "THROTTLE_INTEGRATION_RATE": "100000000/min",
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    server = [
        sys.executable,
        "-m",
        "uvicorn",
        "reliability.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    url = f"http://127.0.0.1:{port}/api/v1/ingest/{token}/"
    # live updates and correlation leave the request through Celery: a worker drains them
    with running(server, env), celery_worker(env):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        run_scenario(url, secret, 10, 2, 20)  # warm up workers and connections
        rows = []
        for batch in (1, 10, 100):
            for clients in (1, 8):
                requests = max(clients * 4, min(args.alerts // batch, 3000))
                row = run_scenario(url, secret, batch, clients, requests, args.seconds)
                rows.append(row)
                print(
                    f"batch {batch:>3} clients {clients}: {row.alerts_per_s:>8.1f} alerts/s  "
                    f"p50 {row.p50_ms:>6.1f} ms  p99 {row.p99_ms:>6.1f} ms  "
                    f"decided {row.decided_per_s:>8.1f} alerts/s  to incident p50 "
                    f"{row.to_incident_p50_ms:>7.1f} ms  p99 {row.to_incident_p99_ms:>7.1f} ms  "
                    f"errors {row.errors}",
                    flush=True,
                )
    lines = [
        "# Webhook ingestion on PostgreSQL",
        "",
        f"uvicorn with {args.workers} workers and one Celery worker (queues default and "
        f"correlation: live updates and correlation) on {os.cpu_count()} cores; the load "
        "generator runs on the same machine. Every alert is new (unique fingerprint), on 40 "
        "rolling groups. alerts/s and p50/p99 are the webhook requests; decided/s counts the "
        "alerts until the correlation backlog is drained; to incident is from a request's "
        f"start until all its alerts are decided (polled every {POLL_S * 1000:.0f} ms); drain "
        "is the time from the last response to an empty backlog.",
        "",
        "| batch | clients | requests | alerts | seconds | alerts/s | p50 ms | p99 ms "
        "| decided/s | to incident p50 ms | to incident p99 ms | drain s | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.batch} | {r.clients} | {r.requests} | {r.alerts} | {r.seconds} | {r.alerts_per_s} "
        f"| {r.p50_ms} | {r.p99_ms} | {r.decided_per_s} | {r.to_incident_p50_ms} "
        f"| {r.to_incident_p99_ms} | {r.drain_s} | {r.errors} |"
        for r in rows
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    Path(f"{args.out}.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    print("\n".join(lines))
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
