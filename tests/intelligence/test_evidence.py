"""Incident log evidence: ranking on a known fault, significance, persistence of normals."""

import pytest

from intelligence.clients.loki import LokiClient
from intelligence.logpatterns.evidence import analyse_windows, is_error_line
from intelligence.services.log_evidence import collect_log_evidence, log_evidence_entry
from reliability.http import make_client, reset_breakers

from .loki_stub import StubLoki, serve
from .scenario import BASE_END, BASE_START, FAULT_HOST, INC_END, INC_START, S, checkout_logs


def _by_kind(findings: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in findings:
        out.setdefault(f.kind, []).append(f)
    return out


def test_known_fault_is_ranked_first_with_its_upstream_host() -> None:
    base, inc = checkout_logs()
    findings, _ = analyse_windows(
        base, inc, baseline_range=(BASE_START, BASE_END), incident_range=(INC_START, INC_END)
    )
    top = findings[0]
    assert top.kind == "new"
    assert top.template == "upstream request to <*> timed out after <*>"
    assert top.error_level
    assert top.baseline_count == 0
    assert top.incident_count == sum("timed out" in line for _, line, _ in inc)
    host = next(p for p in top.parameters if p["name"] == "to")
    assert host["dominant"]["value"] == FAULT_HOST
    assert host["dominant"]["share"] >= 0.8
    assert len(top.examples) == 3
    assert all("timed out" in e for e in top.examples)
    kinds = _by_kind(findings)
    surging = kinds["surging"][0]
    assert surging.template == "retrying request to inventory attempt=<*>"
    assert surging.rate_ratio > 2
    assert surging.p_value < 1e-6
    vanishing = kinds["vanishing"][0]
    assert vanishing.template == "payment heartbeat ok from payments-<*> in <*>"
    assert vanishing.incident_count == 0
    # the steady normal mix is not evidence
    assert not any(f.template.startswith("GET") for f in findings)
    assert not any(f.template.startswith("cache hit") for f in findings)


def test_surge_needs_significance_not_just_a_ratio() -> None:
    base = [(t, "slow query on table orders", {}) for t in range(0, 3600, 1200)]  # 3 in 1h
    inc = [(3600 + t, "slow query on table orders", {}) for t in (1, 2)]  # 2 in 15 min
    findings, _ = analyse_windows(base, inc, baseline_range=(0, 3600), incident_range=(3600, 4500))
    # rate ratio is 2.7 but 2 events are not significant
    assert findings == []


def test_patterns_in_the_persisted_normal_state_are_not_new() -> None:
    base, inc = checkout_logs()
    # an earlier analysis whose baseline (healthy window) already had these timeouts
    _, state = analyse_windows(
        [r for r in inc if "timed out" in r[1]],
        [],
        baseline_range=(0, 60),
        incident_range=(60, 120),
    )
    findings, _ = analyse_windows(
        base,
        inc,
        baseline_range=(BASE_START, BASE_END),
        incident_range=(INC_START, INC_END),
        state=state,
    )
    timeouts = next(f for f in findings if "timed out" in f.template)
    assert timeouts.kind == "error"  # known pattern, error level, still reported


def test_error_level_from_labels_then_text() -> None:
    assert is_error_line("all good", {"level": "ERROR"})
    assert not is_error_line("error budget ok", {"level": "info"})
    assert is_error_line('msg="x" level=error', {})
    assert is_error_line("connection refused", {})
    assert not is_error_line("request served", {})


def test_findings_are_plain_data_with_a_pointer_to_the_loki_query() -> None:
    reset_breakers()
    base, inc = checkout_logs()
    with serve(StubLoki(entries=base + inc)) as stub:
        http = make_client("loki", stub.url, timeout=5, retries=1, backoff=0.01)
        evidence, state = collect_log_evidence(
            LokiClient(stub.url, http=http),
            '{app="checkout"}',
            (BASE_START, BASE_END),
            (INC_START, INC_END),
            limit=1000,
        )
    reset_breakers()
    assert evidence[0]["kind"] == "new"
    assert evidence[0]["template"] == "upstream request to <*> timed out after <*>"
    src = evidence[0]["source"]
    assert src["loki_query"] == '{app="checkout"}'
    assert (src["start"], src["end"]) == (INC_START * S, INC_END * S)
    assert src["incident"] == {"start": INC_START * S, "end": INC_END * S, "lines": len(inc)}
    assert src["baseline"]["lines"] == len(base)
    assert src["drilldown_query"] == '{app="checkout"} |= "upstream"'

    assert evidence[0]["labels"] == {}  # all on one pod: a single label value is no news
    assert state["templates"]
    assert {"kind", "template_id", "p_value", "score", "parameters", "examples"} <= set(evidence[0])
    assert evidence == sorted(evidence, key=lambda d: -d["score"])


@pytest.mark.parametrize("ts", [1_700_000_000, 1_700_000_000 * S, "2023-11-14T22:13:20Z"])
def test_timestamps_in_any_common_unit(ts: object) -> None:
    from intelligence.logpatterns.evidence import to_seconds

    assert to_seconds(ts) == pytest.approx(1_700_000_000)


def test_unreachable_loki_gives_a_partial_entry_not_a_crash() -> None:
    reset_breakers()
    with serve(StubLoki(fail_status=503)) as stub:
        http = make_client("loki", stub.url, timeout=1, retries=1, backoff=0.01)
        entry, state = log_evidence_entry(
            LokiClient(stub.url, http=http), '{app="checkout"}', (0, 60), (60, 120)
        )
    reset_breakers()
    assert entry["status"] == "unavailable"
    assert entry["datasource"] == "loki"
    assert "503" in entry["reason"]
    assert entry["findings"] == []
    assert state is None


def test_evidence_entry_wraps_ranked_findings() -> None:
    reset_breakers()
    base, inc = checkout_logs()
    with serve(StubLoki(entries=base + inc)) as stub:
        http = make_client("loki", stub.url, timeout=5, retries=1, backoff=0.01)
        entry, state = log_evidence_entry(
            LokiClient(stub.url, http=http),
            '{app="checkout"}',
            (BASE_START, BASE_END),
            (INC_START, INC_END),
        )
    reset_breakers()
    assert entry["status"] == "ok"
    assert entry["findings"][0]["kind"] == "new"
    assert state is not None and state["templates"]


def test_parameters_of_a_trailing_list_are_the_whole_list() -> None:
    base = [(t, f"heartbeat from node {t % 7}", {}) for t in range(0, 3600, 10)]
    inc = [
        (3600 + t, "evicting keys " + " ".join(f"k{t}_{j}" for j in range(1 + t % 3)), {})
        for t in range(0, 900, 10)
    ]
    findings, _ = analyse_windows(base, inc, baseline_range=(0, 3600), incident_range=(3600, 4500))
    top = findings[0]
    assert top.template == "evicting keys <*>"
    assert top.parameters[0]["total"] == top.incident_count
    assert any(" " in v["value"] for v in top.parameters[0]["top"])


def test_returned_state_learns_the_baseline_not_the_incident() -> None:
    base, inc = checkout_logs()
    _, state = analyse_windows(
        base, inc, baseline_range=(BASE_START, BASE_END), incident_range=(INC_START, INC_END)
    )
    texts = {" ".join(t["tokens"]) for t in state["templates"]}
    assert not any("timed out" in t for t in texts)
    assert any(t.startswith("cache hit") for t in texts)
