"""A real Prometheus loads the rules ``slo_rules`` writes, over data we made, and agrees
with the Python evaluation and with the raw samples.

Four days and a bit of request counters (one sample every 30 s, an error burst in the last
45 minutes) are backfilled with ``promtool tsdb create-blocks-from openmetrics``; the real
``/usr/bin/prometheus`` starts on that TSDB with the generated rules evaluated every second.
At the time of a recorded sample we compare, per window:

* the recording rule's error ratio (Prometheus evaluating the rules file),
* the Python evaluation through the product's own Prometheus query path at that time,
* the ratio of the raw counter increases in the window (no Prometheus at all). All
  series share their sample times and start far from zero, so ``rate``'s extrapolation
  scales good and total alike and cancels out: the three agree to float rounding.

Then the alerts Prometheus fires are the pairs Python says burn, and the beat job run
against this Prometheus opens an incident through ingestion.
"""

from __future__ import annotations

import math
import random
import subprocess
import time
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from django.test import override_settings

from incidents.models import SLO, Alert, Incident
from intelligence import tasks
from intelligence.models import SLOStatus
from intelligence.slo.burn import burn_windows, duration, ratio_from_counters
from intelligence.slo.evaluate import evaluate
from intelligence.slo.rules import ALERT_NAME, SLOSpec, record_name, rules_yaml
from intelligence.slo.source import instant_query
from tests.integration.processes import free_port, running

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

STEP = 30  # the 5m window holds samples for ~4 min after the data ends: room for a slow start
WINDOW_DAYS = 4
BURST_SECONDS = 45 * 60
RELATIVE = 1e-9
GOOD = 'sum(rate(http_requests_total{service="payments",code!~"5.."}[5m]))'
TOTAL = 'sum(rate(http_requests_total{service="payments"}[5m]))'


def make_counters(end: float) -> tuple[list[float], list[float], list[float]]:
    """Sample times and the 200 / 500 counters: ~0.03 % errors, then 3 % in the burst."""
    rng = random.Random(7)
    start = end - WINDOW_DAYS * 86400 - 3600
    times, ok, bad = [], [], []
    ok_value, bad_value = 1e7, 1e6  # far from zero: no zero-point clamp in rate()
    t = start
    while t <= end:
        requests = rng.randint(250, 350)
        share = 0.03 if t > end - BURST_SECONDS else 0.0003
        errors = sum(rng.random() < share for _ in range(requests))
        ok_value += requests - errors
        bad_value += errors
        times.append(t)
        ok.append(ok_value)
        bad.append(bad_value)
        t += STEP
    return times, ok, bad


def openmetrics(times: list[float], ok: list[float], bad: list[float]) -> str:
    lines = ["# TYPE http_requests counter"]
    for code, values in (("200", ok), ("500", bad)):
        labels = f'{{service="payments",code="{code}"}}'
        lines += [
            f"http_requests_total{labels} {v:.1f} {t:.3f}"
            for t, v in zip(times, values, strict=True)
        ]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus over the backfilled counters, evaluating the generated rules."""
    work = tmp_path_factory.mktemp("slo-prometheus")
    end = math.floor(time.time() / STEP) * STEP - STEP
    times, ok, bad = make_counters(end)
    data = work / "data.om"
    data.write_text(openmetrics(times, ok, bad))
    tsdb = work / "tsdb"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(data), str(tsdb)],
        check=True,
        timeout=120,
    )
    spec = SLOSpec("payments", "availability", Decimal("99.9"), WINDOW_DAYS, GOOD, TOTAL)
    (work / "slo.rules.yml").write_text(rules_yaml([spec]))
    (work / "prometheus.yml").write_text(
        "global:\n  evaluation_interval: 1s\nrule_files: [slo.rules.yml]\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        "prometheus",
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={tsdb}",
        "--storage.tsdb.retention.time=30d",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running(args, f"{url}/-/ready", work / "prometheus.log"):
        yield {"url": url, "spec": spec, "times": times, "ok": ok, "bad": bad}


def latest_recorded(url: str, metric: str, timeout: float = 30) -> tuple[float, float]:
    """(time, value) of the newest sample of a recorded series (waits for the first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/api/v1/query", params={"query": f"{metric}[30s]"}).json()
        result = body["data"]["result"]
        if result:
            t, v = result[0]["values"][-1]
            return float(t), float(v)
        time.sleep(0.3)
    raise AssertionError(f"{metric} was never recorded")


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RELATIVE, abs_tol=1e-15)


def test_recorded_ratios_equal_python_and_the_raw_samples(prometheus):
    url, spec = prometheus["url"], prometheus["spec"]
    times, ok, bad = prometheus["times"], prometheus["ok"], prometheus["bad"]
    total = [a + b for a, b in zip(ok, bad, strict=True)]
    query, close_http = instant_query(url)
    try:
        mismatches = []
        for seconds in [*burn_windows(), spec.window_seconds]:
            t, recorded = latest_recorded(url, record_name(seconds))
            at = datetime.fromtimestamp(t, UTC)
            assessment, _ = evaluate(spec, at, query)
            ours = assessment.windows[duration(seconds)]["error_ratio"]
            raw = ratio_from_counters(times, ok, total, t, seconds)
            if not (close(recorded, ours) and close(recorded, raw)):
                mismatches.append(f"{duration(seconds)}: rule {recorded} python {ours} raw {raw}")
        assert not mismatches, "\n".join(mismatches)
        # the burst is visible: 3 % of errors over the last 45 min of the hour
        t, one_hour = latest_recorded(url, record_name(3600))
        assert 0.015 < one_hour < 0.03
        t, left = latest_recorded(url, "slo:error_budget_remaining:ratio")
        assessment, _ = evaluate(spec, datetime.fromtimestamp(t, UTC), query)
        assert close(left, assessment.budget_remaining)
    finally:
        close_http()


def test_prometheus_fires_the_pairs_python_says_burn(prometheus):
    url, spec = prometheus["url"], prometheus["spec"]
    query, close_http = instant_query(url)
    try:
        deadline = time.monotonic() + 30
        firing: set[tuple[str, str]] = set()
        while time.monotonic() < deadline and not firing:
            body = httpx.get(
                f"{url}/api/v1/query",
                params={"query": f'ALERTS{{alertname="{ALERT_NAME}",alertstate="firing"}}'},
            ).json()
            firing = {
                (r["metric"]["long_window"], r["metric"]["short_window"])
                for r in body["data"]["result"]
            }
            time.sleep(0.3)
        assessment, _ = evaluate(spec, datetime.now(UTC), query)
        ours = {(f.pair.long, f.pair.short) for f in assessment.firing}
        assert firing == ours == {("1h", "5m")}
    finally:
        close_http()


def test_beat_job_against_prometheus_opens_an_incident(prometheus, services):
    slo = SLO.objects.create(
        service=services["payments"],
        name="availability",
        objective="99.9",
        window_days=WINDOW_DAYS,
        good_query=GOOD,
        total_query=TOTAL,
    )
    with override_settings(PROMETHEUS_URL=prometheus["url"]):
        report = tasks.evaluate_slos()
    assert report["firing"] == ["payments/availability 1h/5m"], report
    status = SLOStatus.objects.get(slo=slo)
    assert status.severity == "page" and 0.99 < status.sli < 1
    (alert,) = Alert.objects.filter(name=ALERT_NAME)
    assert alert.labels["long_window"] == "1h" and alert.incident is not None
    assert alert.generator_url.startswith(prometheus["url"] + "/graph?g0.expr=")
    assert Incident.objects.get().services.get().slug == "payments"


def test_rules_file_is_the_one_the_command_writes(prometheus, services, tmp_path: Path):
    """What Prometheus loaded above is exactly ``manage.py slo_rules`` for that SLO."""
    SLO.objects.create(
        service=services["payments"],
        name="availability",
        objective="99.9",
        window_days=WINDOW_DAYS,
        good_query=GOOD,
        total_query=TOTAL,
    )
    target = tmp_path / "rules.yml"
    call_command("slo_rules", "--output", str(target), stderr=StringIO())
    assert target.read_text() == rules_yaml([prometheus["spec"]])
