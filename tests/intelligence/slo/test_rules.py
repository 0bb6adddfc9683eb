"""Window rewriting of SLO queries, the generated rules, and ``promtool check rules``."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from incidents.models import SLO
from intelligence.slo.queries import error_ratio_expression, over_window
from intelligence.slo.rules import ALERT_NAME, SLOSpec, rules_yaml

PROMTOOL = shutil.which("promtool")


def spec(**over) -> SLOSpec:
    base = {
        "service": "payments",
        "name": "availability",
        "objective_percent": Decimal("99.9"),
        "window_days": 28,
        "good_query": 'sum(rate(http_requests_total{service="payments",code!~"5.."}[5m]))',
        "total_query": 'sum(rate(http_requests_total{service="payments"}[5m]))',
    }
    return SLOSpec(**{**base, **over})


def test_range_selectors_take_the_window_but_strings_and_subqueries_do_not():
    q = 'sum(rate(x{code=~"[5]..", path="/a[5m]"}[5m])) / sum(increase(y[1h30m]))'
    assert (
        over_window(q, 3600)
        == 'sum(rate(x{code=~"[5]..", path="/a[5m]"}[1h])) / sum(increase(y[1h]))'
    )
    assert over_window("max_over_time(rate(x[5m])[1h:1m])", 7200) == (
        "max_over_time(rate(x[2h])[1h:1m])"
    )
    assert over_window("rate(x[5m]) # per [5m]\n", 300) == "rate(x[5m])"


def test_a_query_without_range_selector_is_averaged_over_the_window():
    assert over_window('sum(job:requests:rate5m{code!~"5.."})', 1800) == (
        'avg_over_time((sum(job:requests:rate5m{code!~"5.."}))[30m:1m])'
    )


def test_error_ratio_expression_sums_both_sides():
    assert error_ratio_expression("rate(g[5m])", "rate(t[5m])", 3600) == (
        "1 - (sum(rate(g[1h]))) / (sum(rate(t[1h])))"
    )


def test_rules_record_every_window_and_alert_per_workbook_pair():
    doc = yaml.safe_load(rules_yaml([spec(), spec(name="latency", window_days=7)]))
    first, second = doc["groups"]
    records = [r["record"] for r in first["rules"] if "record" in r]
    assert records == [
        *(f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")),
        "slo:sli_error:ratio_rate28d",
        "slo:objective:ratio",
        "slo:error_budget_remaining:ratio",
    ]
    alerts = [r for r in first["rules"] if "alert" in r]
    assert [
        (a["labels"]["long_window"], a["labels"]["short_window"], a["labels"]["severity"])
        for a in alerts
    ] == [
        ("1h", "5m", "page"),
        ("6h", "30m", "page"),
        ("1d", "2h", "ticket"),
        ("3d", "6h", "ticket"),
    ]
    assert {a["alert"] for a in alerts} == {ALERT_NAME}
    assert "> (14.4 * 0.001) and" in alerts[0]["expr"]
    assert (
        alerts[0]["labels"]["service"] == "payments"
        and alerts[0]["labels"]["slo"] == "availability"
    )
    # a 7-day SLO records its own window and none twice
    second_records = [r["record"] for r in second["rules"] if "record" in r]
    assert "slo:sli_error:ratio_rate7d" in second_records
    assert len(second_records) == len(set(second_records))


def test_promtool_accepts_the_rules(tmp_path: Path):
    assert PROMTOOL, "promtool is not installed (scripts/bootstrap.sh installs prometheus)"
    odd = spec(
        service="search",
        name='p99 "latency" \\ fast',
        objective_percent=Decimal("99.99"),
        good_query='sum(job:requests:rate5m{service="search", code!~"5.."})',
        total_query='sum(job:requests:rate5m{service="search"})',
    )
    path = tmp_path / "slo.rules.yml"
    path.write_text(rules_yaml([spec(), odd]))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 28 rules found" in result.stdout


def test_promtool_refuses_a_broken_slo_query(tmp_path: Path):
    """The check is real: a bad good_query makes the rules file fail."""
    assert PROMTOOL, "promtool is not installed (scripts/bootstrap.sh installs prometheus)"
    path = tmp_path / "bad.rules.yml"
    path.write_text(rules_yaml([spec(good_query="sum(rate(x[5m])")]))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0


@pytest.mark.django_db
def test_slo_rules_command_writes_stdout_and_file(services, tmp_path: Path):
    SLO.objects.create(
        service=services["payments"],
        name="availability",
        objective="99.5",
        good_query='sum(rate(http_requests_total{service="payments",code!~"5.."}[5m]))',
        total_query='sum(rate(http_requests_total{service="payments"}[5m]))',
    )
    out = StringIO()
    call_command("slo_rules", stdout=out)
    doc = yaml.safe_load(out.getvalue())
    assert [g["name"] for g in doc["groups"]] == ["slo:payments:availability"]
    assert "(14.4 * 0.005)" in out.getvalue()
    target = tmp_path / "rules.yml"
    call_command("slo_rules", "--output", str(target), "--service", "payments", stderr=StringIO())
    assert yaml.safe_load(target.read_text()) == doc
    with pytest.raises(CommandError, match="search"):
        call_command("slo_rules", "--service", "search")
