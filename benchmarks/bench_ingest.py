"""Webhook ingestion benchmark (not a test): Alertmanager payloads posted over HTTP to a
real ASGI server on PostgreSQL, batches of 1, 10 and 100 alerts, 1 and 8 concurrent clients.

Run through ``make bench-ingest`` (which starts throwaway PostgreSQL and Redis). Prints
alerts/s and p50/p99 request latency and writes bench-results/ingest.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

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


def run_scenario(url: str, secret: str, batch: int, clients: int, requests: int) -> Row:
    run = f"b{batch}c{clients}t{int(time.time() * 1000) % 10**8}"
    bodies = [payload(batch, seq, run) for seq in range(requests)]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    next_index = iter(range(requests))

    def worker() -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        with httpx.Client(timeout=30, headers=headers) as client:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                start = time.perf_counter()
                response = client.post(url, content=bodies[index])
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        errors += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Row(
        batch,
        clients,
        requests,
        requests * batch,
        round(seconds, 3),
        round(requests * batch / seconds, 1),
        round(statistics.median(latencies) * 1000, 1),
        round(p99 * 1000, 1),
        errors,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--alerts", type=int, default=6000, help="alerts per scenario (bounded)")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "ingest"))
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        print(
            "DATABASE_URL must point at PostgreSQL (make bench-ingest starts one)", file=sys.stderr
        )
        return 2
    token, secret = setup_integration()
    port = int(os.environ.get("BENCH_PORT", "18765"))
    env = {
        **os.environ,
        "THROTTLE_INTEGRATION_RATE": "100000000/min",
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
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
        ],
        cwd=ROOT,
        env=env,
    )
    # live updates leave the request through Celery: a worker drains them as in production
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "reliability",
            "worker",
            "-Q",
            "default",
            "-P",
            "solo",
            "-l",
            "warning",
            "--without-heartbeat",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/api/v1/ingest/{token}/"
    try:
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
                row = run_scenario(url, secret, batch, clients, requests)
                rows.append(row)
                print(
                    f"batch {batch:>3} clients {clients}: {row.alerts_per_s:>8.1f} alerts/s  "
                    f"p50 {row.p50_ms:>6.1f} ms  p99 {row.p99_ms:>6.1f} ms  errors {row.errors}",
                    flush=True,
                )
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(timeout=15)
    lines = [
        "# Webhook ingestion on PostgreSQL",
        "",
        f"uvicorn with {args.workers} workers and one Celery worker (live updates) on "
        f"{os.cpu_count()} cores; the load generator runs on the same machine. Every alert "
        "is new (unique fingerprint), on 40 rolling groups.",
        "",
        "| batch | clients | requests | alerts | seconds | alerts/s | p50 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.batch} | {r.clients} | {r.requests} | {r.alerts} | {r.seconds} | {r.alerts_per_s} "
        f"| {r.p50_ms} | {r.p99_ms} | {r.errors} |"
        for r in rows
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    Path(f"{args.out}.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    print("\n".join(lines))
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
