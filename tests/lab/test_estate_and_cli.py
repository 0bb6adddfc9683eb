"""The estate, reproducibility from a seed, and the ``python -m lab`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np

from lab.estate import load_estate
from lab.sim import build_history
from lab.tsdb import Matcher
from tests.lab.helpers import END

ROOT = Path(__file__).resolve().parents[2]


def test_default_estate_shape() -> None:
    estate = load_estate(seed=7)
    assert len(estate.names) == 12
    assert {
        "gateway",
        "auth",
        "catalog",
        "search",
        "cart",
        "checkout",
        "payments",
        "inventory",
        "notifications",
        "database",
        "cache",
        "queue",
    } == set(estate.names)
    assert estate["checkout"].depends_on == ["cart", "inventory", "payments", "queue"]
    assert estate.upstream_of("database") >= {"payments", "checkout", "gateway"}
    order = estate.topological()
    assert all(order.index(d) < order.index(s.name) for s in estate for d in s.depends_on)
    assert all(len(s.versions) >= 3 and s.flags is not None for s in estate)
    assert load_estate(seed=7).to_dict() == estate.to_dict()
    assert load_estate(seed=8).to_dict() != estate.to_dict()


def test_history_is_reproducible_from_the_seed() -> None:
    a = build_history(5, 900, ["slow_dependency:inventory@-5m"], end=END)
    b = build_history(5, 900, ["slow_dependency:inventory@-5m"], end=END)
    sel = [Matcher("__name__", "=", "http_requests_total"), Matcher("service", "=", "cart")]
    sa, sb = a.tsdb.select(sel, 0, END), b.tsdb.select(sel, 0, END)
    assert [s.labels for s in sa] == [s.labels for s in sb]
    assert all(np.array_equal(x.values, y.values) for x, y in zip(sa, sb, strict=True))
    assert a.logs.count == b.logs.count and len(a.traces.traces) == len(b.traces.traces)
    assert {k: s.lines for k, s in a.logs.streams.items()} == {
        k: s.lines for k, s in b.logs.streams.items()
    }
    assert sorted(a.traces.traces) == sorted(b.traces.traces)
    c = build_history(6, 900, ["slow_dependency:inventory@-5m"], end=END)
    assert sorted(c.traces.traces) != sorted(a.traces.traces)  # another seed, another world
    assert a.ground_truth()[0]["start"] == b.ground_truth()[0]["start"] == END - 300


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_lists_faults() -> None:
    out = _run("faults")
    assert out.returncode == 0
    assert (
        len(out.stdout.strip().splitlines()) >= 8
        and "bad_deploy" in out.stdout
        and "rollback" in out.stdout
    )


def test_cli_export_writes_scenario_with_ground_truth(tmp_path: Path) -> None:
    out = _run(
        "export",
        "--out",
        str(tmp_path),
        "--duration",
        "10m",
        "--end",
        str(END),
        "--fault",
        "bad_deploy:payments@-5m",
    )
    assert out.returncode == 0, out.stderr
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert truth["faults"][0]["root_cause"] == {"service": "payments", "kind": "bad_deploy"}
    assert truth["faults"][0]["remediation"] == {"action": "rollback", "deployment": "payments"}
    for name in (
        "metrics.jsonl",
        "logs.jsonl",
        "traces.jsonl",
        "kubernetes.json",
        "alerts.json",
        "estate.json",
    ):
        assert (tmp_path / name).stat().st_size > 0
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert set(first) == {"labels", "t", "v"}


def test_cli_serve_inject_and_clear(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab",
            "serve",
            "--history",
            "3m",
            "--tick",
            "1",
            "--kubeconfig",
            str(kubeconfig),
            "--run-for",
            "60",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        out = _run("inject", "--url", url, "cpu_saturation:search")
        assert out.returncode == 0, out.stdout
        fault = json.loads(out.stdout)
        assert fault["root_cause"] == {"service": "search", "kind": "cpu_saturation"}
        listed = httpx.get(f"{url}/lab/faults", timeout=5).json()["faults"]
        assert [f["id"] for f in listed] == [fault["id"]]
        bad = httpx.post(f"{url}/lab/faults", json={"fault": "nonsense:search"}, timeout=5)
        assert bad.status_code == 400
        out = _run("clear", "--url", url, str(fault["id"]))
        assert out.returncode == 0 and json.loads(out.stdout)["end"] is not None
        from kubernetes import client, config

        api = config.new_client_from_config(str(kubeconfig))
        names = [
            d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment("prod").items
        ]
        assert "search" in names
    finally:
        proc.terminate()
        proc.wait(timeout=10)
