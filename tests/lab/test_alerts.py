"""Alertmanager-format webhooks from the lab's own rule evaluation, and the shipped
Prometheus rule files."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from lab.alerts import RULES, RULES_DIR, fingerprint, rule_groups
from lab.server import wait_until
from lab.testing import running_lab
from lab.tsdb import Matcher


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", got
    httpd.shutdown()
    httpd.server_close()


def test_webhooks_are_alertmanager_v4(receiver) -> None:
    url, got = receiver
    with running_lab(
        seed=3, duration_s=1800, faults=["db_pool_exhaustion:payments@-12m"], webhook_url=url
    ):
        assert wait_until(lambda: len(got) >= 3, timeout=10)
    by_name = {(p["groupLabels"]["alertname"], p["groupLabels"]["service"]): p for p in got}
    assert ("DBPoolExhausted", "payments") in by_name
    assert ("HighErrorRate", "payments") in by_name
    assert ("DiskSpaceLow", "database") in by_name  # noise keeps firing
    for payload in got:
        assert set(payload) == {
            "receiver",
            "status",
            "alerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "version",
            "groupKey",
            "truncatedAlerts",
        }
        assert payload["version"] == "4" and payload["truncatedAlerts"] == 0
        assert payload["externalURL"].startswith("http://127.0.0.1:")
        for alert in payload["alerts"]:
            assert set(alert) == {
                "status",
                "labels",
                "annotations",
                "startsAt",
                "endsAt",
                "generatorURL",
                "fingerprint",
            }
            assert set(alert["labels"]) >= {"alertname", "service", "severity", "namespace"}
            assert alert["labels"]["namespace"] == "prod"
            assert alert["fingerprint"] == fingerprint(alert["labels"])
            assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
            assert alert["startsAt"].endswith("Z")
            assert "summary" in alert["annotations"]
    pool = by_name[("DBPoolExhausted", "payments")]
    assert pool["commonLabels"]["severity"] == "critical"
    assert pool["groupKey"] == '{}:{alertname="DBPoolExhausted", service="payments"}'


def test_fingerprint_is_stable_and_label_sensitive() -> None:
    a = fingerprint({"alertname": "X", "service": "payments"})
    assert a == fingerprint({"service": "payments", "alertname": "X"})
    assert a != fingerprint({"alertname": "X", "service": "checkout"})
    assert len(a) == 16 and int(a, 16) >= 0


def test_quiet_estate_fires_only_noise(history) -> None:
    lab = history(duration_s=3600)
    firing = {s.rule.name for s in lab.alerts.firing()}
    noise = {r.name for r in RULES if r.group == "noise"}
    assert firing and firing <= noise


def test_resolved_after_remediation(history) -> None:
    lab = history("bad_feature_flag:checkout@-20m~10m")
    statuses = [
        (h["status"], h["labels"]["alertname"])
        for h in lab.alerts.history
        if h["labels"]["service"] == "checkout"
    ]
    assert ("firing", "HighErrorRate") in statuses and ("resolved", "HighErrorRate") in statuses


def test_rule_files_match_the_rules() -> None:
    shipped = {p.stem: yaml.safe_load(p.read_text()) for p in RULES_DIR.glob("*.yml")}
    assert shipped == rule_groups()
    names = [r["alert"] for doc in shipped.values() for g in doc["groups"] for r in g["rules"]]
    assert sorted(names) == sorted(r.name for r in RULES)
    for doc in shipped.values():
        for rule in doc["groups"][0]["rules"]:
            assert rule["expr"] and rule["for"].endswith("s") and rule["labels"]["severity"]


def test_shipped_rule_expressions_agree_with_the_built_in_evaluator() -> None:
    """The rule files' PromQL, run by the lab's Prometheus API, fires for the same services
    as the evaluator that sends the demo's webhooks."""
    import httpx

    faults = [
        "db_pool_exhaustion:payments@-15m",
        "memory_leak:cart@-15m",
        "cpu_saturation:search@-15m",
    ]
    with running_lab(seed=5, duration_s=1800, faults=faults) as lab:
        firing: dict[str, set[str]] = {}
        for state in lab.lab.alerts.firing():
            firing.setdefault(state.rule.name, set()).add(state.service)
        # ask PromQL about the instant the evaluator last looked at (it stamps ALERTS then),
        # not the wall clock: live ticks may have moved on by the time the query runs
        alerts = lab.tsdb.select([Matcher("__name__", "=", "ALERTS")], 0, float("inf"))
        at = max(float(series.timestamps[-1]) for series in alerts)

        def promql(name: str) -> set[str]:
            rule = next(r for r in RULES if r.name == name)
            resp = httpx.get(
                f"{lab.prometheus_url}/api/v1/query",
                params={"query": rule.expr, "time": at},
                timeout=20,
            )
            assert resp.status_code == 200, resp.text
            return {r["metric"]["service"] for r in resp.json()["data"]["result"]}

        for name in ("CPUSaturation", "DBPoolExhausted", "DiskSpaceLow"):  # steady conditions
            assert promql(name) == firing.get(name, set()), name
        # these flap with the leak's sawtooth: the root causes must be in both
        assert "payments" in promql("HighErrorRate") & firing["HighErrorRate"]
        assert "cart" in promql("PodRestarting") & firing["PodRestarting"]
        assert firing["DBPoolExhausted"] == {"payments"} and firing["CPUSaturation"] == {"search"}
        metrics = httpx.get(f"{lab.prometheus_url}/metrics", timeout=20).text
        assert "http_requests_total{" in metrics and "ALERTS" not in metrics


def test_live_inject_fire_remediate_resolve(receiver) -> None:
    """The demo path on a controllable clock: a fault injected over the control endpoint
    fires a webhook; the right remediation over the Kubernetes API resolves it."""
    import httpx

    from lab.server import LabServer
    from lab.sim import build_history
    from tests.lab.helpers import END

    url, got = receiver
    now = [END]
    lab = build_history(7, 900, [], end=END, clock=lambda: now[0])
    server = LabServer(lab, webhook_url=url).start()  # no ticker: the test moves time
    try:
        resp = httpx.post(
            f"{server.base_url}/lab/faults", json={"fault": "bad_deploy:payments"}, timeout=10
        )
        assert resp.status_code == 201
        assert resp.json()["remediation"] == {"action": "rollback", "deployment": "payments"}

        def advance(seconds: float) -> None:
            for _ in range(int(seconds // 10)):
                now[0] += 10
                lab.generate_until(now[0], step=10)

        advance(90)
        assert wait_until(
            lambda: any(p["groupLabels"]["alertname"] == "HighErrorRate" for p in got), 10
        )
        fired = next(
            p
            for p in got
            if p["groupLabels"] == {"alertname": "HighErrorRate", "service": "payments"}
        )
        assert fired["status"] == "firing"
        resp = httpx.post(
            f"{server.base_url}/lab/remediate",
            json={"action": "restart", "deployment": "payments"},
            timeout=10,
        )
        assert resp.status_code == 200 and resp.json()["active_faults"]  # the wrong fix
        resp = httpx.post(
            f"{server.base_url}/lab/remediate",
            json={"action": "rollback", "deployment": "payments"},
            timeout=10,
        )
        assert resp.status_code == 200 and resp.json()["active_faults"] == []
        advance(120)
        assert wait_until(
            lambda: any(
                p["status"] == "resolved" and p["groupLabels"]["service"] == "payments" for p in got
            ),
            10,
        )
        resolved = next(p for p in got if p["status"] == "resolved")
        assert resolved["alerts"][0]["endsAt"] > resolved["alerts"][0]["startsAt"]
    finally:
        server.stop()


def test_rule_files_pass_promtool() -> None:
    """Real Prometheus accepts the shipped rules (promtool comes with the prometheus
    package that scripts/bootstrap.sh installs)."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run scripts/bootstrap.sh"
    files = sorted(str(p) for p in RULES_DIR.glob("*.yml"))
    out = subprocess.run(
        [promtool, "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(files)


def test_demo_alert_hold_override_fires_sooner_than_the_rule_says() -> None:
    from lab.alerts import RULES, AlertEngine, AlertState

    rule = next(r for r in RULES if r.name == "HighErrorRate")
    assert rule.for_s == 60
    for override, fires_at in ((None, 60.0), (15.0, 15.0)):
        engine = AlertEngine(lab=None, for_s_override=override)
        state = AlertState(rule, "payments")
        changed: list = []
        for t in range(0, 100, 5):
            engine._step(state, True, float(t), 0.2, changed)
        assert state.fired_at == fires_at
