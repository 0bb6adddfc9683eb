"""Tempo's HTTP API over plain HTTP: search (tags and TraceQL) and traces as OTLP JSON."""

from __future__ import annotations

import base64
import time

import httpx
import pytest


def search(served, **params) -> httpx.Response:
    return httpx.get(f"{served.tempo_url}/api/search", params=params, timeout=10)


def test_traceql_search_format(served) -> None:
    resp = search(served, q='{ resource.service.name = "payments" && status = error }', limit=5)
    assert resp.status_code == 200
    body = resp.json()
    assert 0 < len(body["traces"]) <= 5
    assert "inspectedTraces" in body["metrics"]
    for t in body["traces"]:
        assert set(t) >= {
            "traceID",
            "rootServiceName",
            "rootTraceName",
            "startTimeUnixNano",
            "durationMs",
            "spanSet",
            "spanSets",
        }
        assert t["rootServiceName"] == "gateway"
        assert int(t["startTimeUnixNano"]) <= time.time_ns()
        assert t["spanSet"]["matched"] >= 1
        for span in t["spanSet"]["spans"]:
            attrs = {a["key"]: a["value"]["stringValue"] for a in span["attributes"]}
            assert attrs["service.name"] == "payments" and attrs["status"] == "error"


def test_tags_search_and_duration(served) -> None:
    body = search(served, tags="service.name=checkout", minDuration="1ms", limit=50).json()
    assert body["traces"]
    assert all(t["rootTraceName"] == "POST /api/checkout" for t in body["traces"])
    slow = search(served, q="{ duration > 10s }").json()
    assert slow["traces"] == []


def test_trace_by_id_is_otlp_json_following_the_call_graph(served) -> None:
    tid = search(served, q='{ .http.route = "/api/checkout" }', limit=1).json()["traces"][0][
        "traceID"
    ]
    resp = httpx.get(f"{served.tempo_url}/api/traces/{tid}", timeout=10)
    assert resp.status_code == 200
    spans, service_of = [], {}
    for batch in resp.json()["batches"]:
        attrs = {a["key"]: a["value"] for a in batch["resource"]["attributes"]}
        service = attrs["service.name"]["stringValue"]
        for scope in batch["scopeSpans"]:
            assert "name" in scope["scope"]
            for span in scope["spans"]:
                assert base64.b64decode(span["traceId"]).hex().lstrip("0") == tid
                assert len(base64.b64decode(span["spanId"])) == 8
                assert span["kind"].startswith("SPAN_KIND_")
                assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
                service_of[span["spanId"]] = service
                spans.append((service, span))
    roots = [s for _, s in spans if "parentSpanId" not in s]
    assert len(roots) == 1 and roots[0]["name"] == "POST /api/checkout"
    estate = served.estate
    for service, span in spans:
        if "parentSpanId" not in span:
            continue
        parent = service_of[span["parentSpanId"]]
        if (
            span["kind"] == "SPAN_KIND_SERVER"
        ):  # a callee's server span under its caller's client span
            assert service in estate[parent].depends_on
        else:
            assert parent == service
    called = {s for s, _ in spans}
    assert {"gateway", "auth", "checkout", "payments", "inventory", "cart"} <= called


def test_unknown_trace_404_and_bad_traceql_400(served) -> None:
    assert httpx.get(f"{served.tempo_url}/api/traces/{'ab' * 16}", timeout=10).status_code == 404
    assert search(served, q="{ .http.route = }").status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "{ span.http.status_code >= 500 }",
        '{ kind = client && .peer.service = "payments" }',
        '{ name =~ "POST.*" } && { status = error }',
    ],
)
def test_traceql_variants(served, query: str) -> None:
    body = search(served, q=query, limit=3).json()
    assert body["traces"], query


def test_search_tags(served) -> None:
    names = httpx.get(f"{served.tempo_url}/api/search/tags", timeout=10).json()["tagNames"]
    assert "service.name" in names and "http.route" in names
    values = httpx.get(f"{served.tempo_url}/api/search/tag/service.name/values", timeout=10).json()
    assert "payments" in values["tagValues"]
