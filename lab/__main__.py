"""``python -m lab``: list faults, serve the lab, inject/clear faults in a running lab,
export a scenario with its ground truth, write the Prometheus rule files."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

from lab.alerts import write_rule_files
from lab.faults import parse_duration
from lab.server import LabServer, describe_kinds
from lab.sim import build_history
from lab.traces import otlp_trace


def _seconds(text: str) -> float:
    return abs(parse_duration(text))


def cmd_faults(args: argparse.Namespace) -> int:
    if args.url:
        resp = httpx.get(f"{args.url}/lab/faults", timeout=10)
        print(json.dumps(resp.json()["faults"], indent=2))
        return 0
    for k in describe_kinds():
        print(
            f"{k['kind']:<20} {k['remediation']:<13} default {k['default_service']:<10} "
            f"{k['description']}"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.time()
    lab = build_history(
        args.seed, _seconds(args.history), args.fault_at, end=started, clock=time.time
    )
    lab.alerts.for_s_override = args.alert_for
    server = LabServer(lab, port=args.port, webhook_url=args.webhook_url, tick=args.tick).start()
    for spec in args.fault:
        server.inject_later(spec, args.inject_after)
    if args.kubeconfig:
        Path(args.kubeconfig).write_text(kubeconfig(server.base_url))
    print(
        f"lab serving on {server.base_url} (history {args.history}, generated in "
        f"{time.time() - started:.1f}s)",
        flush=True,
    )
    print(
        f"  Prometheus {server.base_url}/api/v1  Loki {server.base_url}/loki/api/v1  Tempo "
        f"{server.base_url}/api/search  Kubernetes {server.base_url}/apis/apps/v1",
        flush=True,
    )
    if args.fault:
        print(f"  injecting {', '.join(args.fault)} in {args.inject_after:g}s", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait(args.run_for if args.run_for else None)
    server.stop()
    return 0


def kubeconfig(url: str) -> str:
    """A kubeconfig for the lab, so ``KUBECONFIG`` users (and kubectl) reach it."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "lab", "cluster": {"server": url}}],
            "users": [{"name": "lab", "user": {"token": "lab"}}],
            "contexts": [
                {"name": "lab", "context": {"cluster": "lab", "user": "lab", "namespace": "prod"}}
            ],
            "current-context": "lab",
        },
        sort_keys=False,
    )


def cmd_inject(args: argparse.Namespace) -> int:
    resp = httpx.post(f"{args.url}/lab/faults", json={"fault": args.fault}, timeout=10)
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.status_code == 201 else 1


def cmd_clear(args: argparse.Namespace) -> int:
    resp = httpx.delete(f"{args.url}/lab/faults/{args.id}", timeout=10)
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.status_code == 200 else 1


def cmd_remediate(args: argparse.Namespace) -> int:
    resp = httpx.post(f"{args.url}/lab/remediate", json=json.loads(args.action), timeout=10)
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.status_code == 200 else 1


def export(out: Path, seed: int, duration_s: float, faults: list[str], end: float) -> dict:
    """Write a scenario as plain files: metrics, logs, traces, Kubernetes objects, alerts and
    the ground truth, for benchmarks that must not depend on a running lab."""
    from lab.kube_api import KubernetesAPI

    lab = build_history(seed, duration_s, faults, end=end)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "metrics.jsonl").open("w") as fh:
        for series in lab.tsdb.select([], float("-inf"), float("inf")):
            fh.write(
                json.dumps(
                    {
                        "labels": series.labels,
                        "t": series.timestamps.tolist(),
                        "v": series.values.tolist(),
                    }
                )
                + "\n"
            )
    with (out / "logs.jsonl").open("w") as fh:
        for stream in lab.logs.streams.values():
            fh.write(
                json.dumps(
                    {
                        "stream": stream.labels,
                        "values": [
                            [str(t), line]
                            for t, line in zip(stream.times, stream.lines, strict=True)
                        ],
                    }
                )
                + "\n"
            )
    with (out / "traces.jsonl").open("w") as fh:
        for trace in lab.traces.traces.values():
            fh.write(json.dumps({"traceID": trace.trace_id.hex(), **otlp_trace(trace)}) + "\n")
    kube = KubernetesAPI(lab.cluster)
    objects = {}
    for name, path in (
        ("deployments", "/apis/apps/v1/namespaces/prod/deployments"),
        ("replicasets", "/apis/apps/v1/namespaces/prod/replicasets"),
        ("pods", "/api/v1/namespaces/prod/pods"),
        ("events", "/api/v1/namespaces/prod/events"),
    ):
        objects[name] = json.loads(kube.handle("GET", path, {}, b"")[2])
    (out / "kubernetes.json").write_text(json.dumps(objects, indent=1))
    (out / "alerts.json").write_text(
        json.dumps(
            {"transitions": lab.alerts.history, "firing": lab.alerts.payloads(lab.alerts.firing())},
            indent=1,
        )
    )
    (out / "estate.json").write_text(json.dumps(lab.estate.to_dict(), indent=1))
    truth = {"seed": seed, "start": lab.start, "end": end, "faults": lab.ground_truth()}
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return {
        "dir": str(out),
        "series": len(lab.tsdb),
        "samples": lab.samples,
        "log_lines": lab.logs.count,
        "traces": len(lab.traces.traces),
    }


def cmd_export(args: argparse.Namespace) -> int:
    end = args.end if args.end is not None else time.time()
    print(
        json.dumps(
            export(Path(args.out), args.seed, _seconds(args.duration), args.fault, end), indent=2
        )
    )
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    for path in write_rule_files(Path(args.dir) if args.dir else Path(__file__).with_name("rules")):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("faults", help="list fault kinds (or a running lab's faults with --url)")
    f.add_argument("--url")
    f.set_defaults(func=cmd_faults)
    s = sub.add_parser("serve", help="serve every API on 127.0.0.1 in real time")
    s.add_argument("--port", type=int, default=0, help="0 picks a free port")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--history", default="2h", help="history generated before serving")
    s.add_argument("--tick", type=float, default=5.0, help="live generation step, seconds")
    s.add_argument("--webhook-url", help="post Alertmanager webhooks here")
    s.add_argument(
        "--fault", action="append", default=[], help="kind:service injected after --inject-after"
    )
    s.add_argument("--inject-after", type=float, default=30.0)
    s.add_argument(
        "--alert-for",
        type=float,
        default=None,
        help="seconds every alert rule must hold before firing (demo speed; default: each "
        "rule's own `for`)",
    )
    s.add_argument(
        "--fault-at", action="append", default=[], help="kind:service@-20m placed in the history"
    )
    s.add_argument("--kubeconfig", help="write a kubeconfig for the lab to this path")
    s.add_argument(
        "--run-for", type=float, default=0.0, help="stop after N seconds (0: until interrupted)"
    )
    s.set_defaults(func=cmd_serve)
    i = sub.add_parser("inject", help="inject a fault into a running lab")
    i.add_argument("--url", required=True)
    i.add_argument("fault", help="kind:service[/peer]")
    i.set_defaults(func=cmd_inject)
    c = sub.add_parser("clear", help="clear a fault in a running lab")
    c.add_argument("--url", required=True)
    c.add_argument("id", type=int)
    c.set_defaults(func=cmd_clear)
    r = sub.add_parser("remediate", help='apply e.g. {"action":"rollback","deployment":"payments"}')
    r.add_argument("--url", required=True)
    r.add_argument("action")
    r.set_defaults(func=cmd_remediate)
    e = sub.add_parser("export", help="write a scenario and its ground truth as files")
    e.add_argument("--out", required=True)
    e.add_argument("--seed", type=int, default=7)
    e.add_argument("--duration", default="2h")
    e.add_argument("--end", type=float, help="epoch seconds (default now)")
    e.add_argument("--fault", action="append", default=[], help="kind:service@-20m")
    e.set_defaults(func=cmd_export)
    w = sub.add_parser("rules", help="write lab/rules/*.yml from the built-in alert rules")
    w.add_argument("--dir")
    w.set_defaults(func=cmd_rules)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
