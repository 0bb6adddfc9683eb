"""Incident log evidence on a lab scenario with a known fault, read over the Loki API.

The lab (``lab.testing.running_lab``) simulates the shop with a slow ``inventory`` service
for the last 20 minutes. Its ground truth names the root cause; the evidence for a caller
and for the root-cause service must put that fault's log patterns first.
"""

import time
from collections.abc import Iterator

import pytest

from intelligence.clients.loki import LokiClient
from intelligence.services.log_evidence import log_evidence_entry
from lab.testing import RunningLab, running_lab
from reliability.http import reset_breakers


@pytest.fixture(scope="module")
def slow_inventory() -> Iterator[RunningLab]:
    reset_breakers()
    with running_lab(seed=7, duration_s=3600, faults=["slow_dependency:inventory@-20m"]) as lab:
        yield lab
    reset_breakers()


def _windows(lab: RunningLab) -> tuple[tuple[float, float], tuple[float, float]]:
    start = lab.ground_truth[0]["start"]
    return (start - 2400, start - 60), (start + 60, time.time())


def test_caller_evidence_ranks_timeouts_to_the_root_cause_first(slow_inventory: RunningLab) -> None:
    truth = slow_inventory.ground_truth[0]
    root = truth["root_cause"]["service"]
    baseline, incident = _windows(slow_inventory)
    loki = LokiClient(slow_inventory.loki_url, timeout=30, retries=1)
    entry, state = log_evidence_entry(loki, '{service="cart"}', baseline, incident)
    assert entry["status"] == "ok"
    top = entry["findings"][0]
    assert top["kind"] == "new"
    assert top["error_level"]
    assert 'msg="upstream request timed out"' in top["template"]
    assert f"upstream={root}" in top["template"]
    assert top["baseline_count"] == 0 and top["incident_count"] > 50
    assert top["source"]["loki_query"] == '{service="cart"}'
    assert top["source"]["incident"]["lines"] > 0
    # the steady traffic of the caller is not evidence
    assert not any('msg="request completed"' in f["template"] for f in entry["findings"])
    assert state is not None


def test_root_cause_service_shows_its_own_symptoms(slow_inventory: RunningLab) -> None:
    baseline, incident = _windows(slow_inventory)
    loki = LokiClient(slow_inventory.loki_url, timeout=30, retries=1)
    entry, _ = log_evidence_entry(loki, '{service="inventory"}', baseline, incident)
    new = [f["template"] for f in entry["findings"] if f["kind"] == "new"]
    assert any('msg="slow request"' in t for t in new)
    assert any('msg="request deadline exceeded"' in t for t in new)
    assert all(f["kind"] != "surging" or f["p_value"] < 0.01 for f in entry["findings"])
