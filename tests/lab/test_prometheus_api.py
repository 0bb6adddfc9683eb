"""The HTTP API: exact response bytes, value/timestamp formatting, parameter parsing,
errors with Prometheus's errorType and status, and the standalone server."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from lab.prometheus_api import (
    PrometheusAPI,
    format_timestamp,
    format_value,
    parse_duration_param,
    parse_time,
    serve,
)
from lab.tsdb import TSDB


@pytest.fixture
def db() -> TSDB:
    db = TSDB()
    for t in range(0, 121, 15):
        db.add({"__name__": "up", "job": "api", "instance": "a:1"}, t, 1.0)
        db.add({"__name__": "up", "job": "db", "instance": "b:1"}, t, 0.0)
        db.add({"__name__": "reqs_total", "job": "api", "code": "200"}, t, t * 2.0)
    return db


@pytest.fixture
def api(db: TSDB) -> PrometheusAPI:
    return PrometheusAPI(db, now=lambda: 120.0)


def call(
    api: PrometheusAPI, path: str, method: str = "GET", body: bytes = b"", **params: str | list[str]
) -> tuple[int, dict]:
    query = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    status, headers, raw = api.handle(method, path, query, body)
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(raw)


def test_instant_vector_exact_bytes(api: PrometheusAPI) -> None:
    status, _headers, raw = api.handle(
        "GET", "/api/v1/query", {"query": ['up{job="api"}'], "time": ["120"]}, b""
    )
    assert status == 200
    assert raw == (
        b'{"status":"success","data":{"resultType":"vector","result":'
        b'[{"metric":{"__name__":"up","instance":"a:1","job":"api"},"value":[120,"1"]}]}}'
    )


def test_time_defaults_to_now_and_accepts_rfc3339(api: PrometheusAPI) -> None:
    _, default = call(api, "/api/v1/query", query="up")
    assert default["data"]["result"][0]["value"][0] == 120
    _, rfc = call(api, "/api/v1/query", query="up", time="1970-01-01T00:01:50.5Z")
    assert rfc["data"]["result"][0]["value"][0] == 110.5


def test_scalar_string_and_matrix_results(api: PrometheusAPI) -> None:
    _, scalar = call(api, "/api/v1/query", query="1.5 * 2", time="100.25")
    assert scalar["data"] == {"resultType": "scalar", "result": [100.25, "3"]}
    _status, _h, raw = api.handle("GET", "/api/v1/query", {"query": ["1"], "time": ["100.5"]}, b"")
    assert raw.endswith(b'"result":[100.5,"1"]}}')  # not 100.500: a plain JSON float
    _, string = call(api, "/api/v1/query", query='"hello"', time="100")
    assert string["data"] == {"resultType": "string", "result": [100, "hello"]}
    _, matrix = call(api, "/api/v1/query", query='up{job="db"}[30s]', time="120")
    assert matrix["data"]["resultType"] == "matrix"
    assert matrix["data"]["result"] == [
        {
            "metric": {"__name__": "up", "instance": "b:1", "job": "db"},
            "values": [[90, "0"], [105, "0"], [120, "0"]],
        }
    ]


def test_rate_via_api(api: PrometheusAPI) -> None:
    _, body = call(api, "/api/v1/query", query="rate(reqs_total[1m])", time="120")
    assert body["data"]["result"] == [
        {"metric": {"code": "200", "job": "api"}, "value": [120, "2"]}
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (1.0, "1"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (123456789.125, "123456789.125"),
    ],
)
def test_values_are_formatted_like_go(value: float, text: str) -> None:
    assert format_value(value) == text


def test_timestamps_keep_millisecond_digits() -> None:
    assert format_timestamp(1_500) == "1.500"
    assert format_timestamp(1_005) == "1.005"
    assert format_timestamp(1_050) == "1.050"
    assert format_timestamp(2_000) == "2"
    assert format_timestamp(-1_500) == "-1.500"


def test_special_values_in_responses(api: PrometheusAPI) -> None:
    _, body = call(api, "/api/v1/query", query='up{job="db"} / 0 or up{job="api"} / 0', time="120")
    values = sorted(r["value"][1] for r in body["data"]["result"])
    assert values == ["+Inf", "NaN"]


def test_time_and_duration_parsing() -> None:
    assert parse_time("1700000000.1234") == 1_700_000_000_123
    assert parse_time("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_time("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500
    with pytest.raises(ValueError, match='cannot parse "soon" to a valid timestamp'):
        parse_time("soon")
    assert parse_duration_param("15") == 15_000
    assert parse_duration_param("0.5") == 500
    assert parse_duration_param("1m30s") == 90_000
    with pytest.raises(ValueError, match=r'cannot parse "1\.5m" to a valid duration'):
        parse_duration_param("1.5m")


def test_post_form_body(api: PrometheusAPI) -> None:
    body = b"query=sum%20by%20(job)%20(up)&time=120"
    status, payload = call(api, "/api/v1/query", method="POST", body=body)
    assert status == 200
    assert {r["metric"]["job"]: r["value"][1] for r in payload["data"]["result"]} == {
        "api": "1",
        "db": "0",
    }


def test_query_range_shape(api: PrometheusAPI) -> None:
    status, body = call(
        api, "/api/v1/query_range", query='up{job="api"}', start="60", end="120", step="30s"
    )
    assert status == 200
    assert body == {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "up", "instance": "a:1", "job": "api"},
                    "values": [[60, "1"], [90, "1"], [120, "1"]],
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"query": "up", "start": "x", "end": "1", "step": "1"},
            'invalid parameter "start": cannot parse "x"',
        ),
        (
            {"query": "up", "start": "10", "end": "5", "step": "1"},
            "end timestamp must not be before start time",
        ),
        (
            {"query": "up", "start": "0", "end": "5", "step": "0"},
            "zero or negative query resolution step",
        ),
        ({"query": "up", "start": "0", "end": "5", "step": "fast"}, 'invalid parameter "step"'),
        (
            {"query": "up", "start": "0", "end": "11001", "step": "1"},
            "exceeded maximum resolution of 11,000 points",
        ),
        (
            {"query": "up[5m]", "start": "0", "end": "5", "step": "1"},
            'invalid expression type "range vector" for range query',
        ),
    ],
)
def test_query_range_errors(api: PrometheusAPI, params: dict[str, str], message: str) -> None:
    status, body = call(api, "/api/v1/query_range", **params)
    assert body["status"] == "error"
    assert message in body["error"]
    assert (status, body["errorType"]) == (400, "bad_data")


def test_range_query_parse_errors_have_no_parameter_prefix(api: PrometheusAPI) -> None:
    status, body = call(api, "/api/v1/query_range", query="rate(up)", start="0", end="5", step="1")
    assert (status, body["errorType"]) == (400, "bad_data")
    assert body["error"].startswith("1:6: parse error: expected type range vector")


def test_eleven_thousand_points_are_allowed(api: PrometheusAPI) -> None:
    status, _ = call(api, "/api/v1/query_range", query="1", start="0", end="11000", step="1")
    assert status == 200


def test_parse_errors_are_bad_data(api: PrometheusAPI) -> None:
    status, body = call(api, "/api/v1/query", query="rate(up)")
    assert status == 400
    assert body == {
        "status": "error",
        "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:6: parse error: expected type range vector in '
        'call to function "rate", got instant vector',
    }
    status, body = call(api, "/api/v1/query", query="holt_winters(up[5m], 0.1, 0.1)")
    assert (status, body["errorType"]) == (400, "bad_data")
    status, body = call(api, "/api/v1/query", query="up", time="tomorrow")
    assert (status, body["error"]) == (
        400,
        'invalid parameter "time": cannot parse "tomorrow" to a valid timestamp',
    )


def test_execution_errors_are_422(api: PrometheusAPI) -> None:
    status, body = call(api, "/api/v1/query", query="up / on() up", time="120")
    assert (status, body["errorType"]) == (422, "execution")
    assert "many-to-many matching not allowed" in body["error"]


def test_series_requires_match_and_unions_selectors(api: PrometheusAPI) -> None:
    status, body = call(api, "/api/v1/series")
    assert (status, body["error"]) == (400, "no match[] parameter provided")
    status, body = call(api, "/api/v1/series", **{"match[]": ['up{job="db"}', "reqs_total"]})
    assert status == 200
    assert body["data"] == [
        {"__name__": "reqs_total", "code": "200", "job": "api"},
        {"__name__": "up", "instance": "b:1", "job": "db"},
    ]
    status, body = call(api, "/api/v1/series", **{"match[]": "up{", "start": "0"})
    assert (status, body["errorType"]) == (400, "bad_data")
    assert body["error"].startswith('invalid parameter "match[]"')
    _, body = call(api, "/api/v1/series", **{"match[]": "up", "start": "500", "end": "600"})
    assert body["data"] == []


def test_series_and_labels_accept_post_forms(api: PrometheusAPI) -> None:
    body = b"match%5B%5D=up%7Bjob%3D%22api%22%7D&start=0&end=200"
    status, payload = call(api, "/api/v1/series", method="POST", body=body)
    assert status == 200
    assert payload["data"] == [{"__name__": "up", "instance": "a:1", "job": "api"}]
    status, payload = call(api, "/api/v1/labels", method="POST", body=b"match%5B%5D=reqs_total")
    assert payload["data"] == ["__name__", "code", "job"]


def test_labels_and_label_values(api: PrometheusAPI) -> None:
    _, body = call(api, "/api/v1/labels")
    assert body["data"] == ["__name__", "code", "instance", "job"]
    _, body = call(api, "/api/v1/labels", **{"match[]": "up"})
    assert body["data"] == ["__name__", "instance", "job"]
    _, body = call(api, "/api/v1/label/job/values")
    assert body == {"status": "success", "data": ["api", "db"]}
    _, body = call(api, "/api/v1/label/__name__/values")
    assert body["data"] == ["reqs_total", "up"]
    _, body = call(api, "/api/v1/label/job/values", **{"match[]": "reqs_total"})
    assert body["data"] == ["api"]
    status, body = call(api, "/api/v1/label/not-a-label/values")
    assert (status, body["error"]) == (400, 'invalid label name: "not-a-label"')


def test_buildinfo(api: PrometheusAPI) -> None:
    status, body = call(api, "/api/v1/status/buildinfo")
    assert status == 200 and body["data"]["version"].startswith("2.")


def test_metadata_infers_types_from_names(api: PrometheusAPI, db: TSDB) -> None:
    db.add({"__name__": "lat_bucket", "le": "+Inf"}, 120, 1)
    db.add({"__name__": "lat_count"}, 120, 1)
    _, body = call(api, "/api/v1/metadata")
    assert body["data"] == {
        "lat": [{"type": "histogram", "help": "", "unit": ""}],
        "reqs_total": [{"type": "counter", "help": "", "unit": ""}],
        "up": [{"type": "gauge", "help": "", "unit": ""}],
    }
    _, body = call(api, "/api/v1/metadata", metric="up")
    assert list(body["data"]) == ["up"]
    _, body = call(api, "/api/v1/metadata", limit="1")
    assert len(body["data"]) == 1


def test_unexpected_failures_are_answered_not_raised(api: PrometheusAPI) -> None:
    status, body = call(api, "/api/v1/query", query="(" * 5000 + "1" + ")" * 5000)
    assert (status, body["errorType"]) == (400, "bad_data")

    def broken(*_args: object) -> None:
        raise OSError("disk gone")

    api.engine.instant_query = broken  # type: ignore[method-assign]
    status, body = call(api, "/api/v1/query", query="up")
    assert (status, body) == (
        500,
        {"status": "error", "errorType": "internal", "error": "OSError: disk gone"},
    )


def test_unknown_paths_and_methods(api: PrometheusAPI) -> None:
    assert api.handle("GET", "/api/v1/nope", {}, b"")[0] == 404
    assert api.handle("DELETE", "/api/v1/query", {}, b"")[0] == 405


def test_query_string_in_path_is_understood(api: PrometheusAPI) -> None:
    status, _, raw = api.handle("GET", "/api/v1/query?query=up&time=120", {}, b"")
    assert status == 200 and len(json.loads(raw)["data"]["result"]) == 2


def test_standalone_server_serves_api_and_metrics(db: TSDB) -> None:
    db.add({"__name__": "up", "job": "api", "instance": "a:1", "pod": "p1"}, 120, 1.0)
    server, url = serve(db)
    try:
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/api/v1/query", params={"query": "up", "time": "120"})
        assert response.status_code == 200 and response.json()["status"] == "success"
        response = httpx.post(f"{url}/api/v1/query", data={"query": "count(up)", "time": "120"})
        assert response.json()["data"]["result"][0]["value"] == [120, "3"]
        error = httpx.get(f"{url}/api/v1/query", params={"query": "up{"})
        assert error.status_code == 400 and error.json()["errorType"] == "bad_data"
        metrics = httpx.get(f"{url}/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "# TYPE reqs_total counter" in metrics.text
        one = httpx.get(f"{url}/metrics", params={"target": "p1"}).text
        assert one == '# TYPE up gauge\nup{instance="a:1",job="api",pod="p1"} 1\n'
    finally:
        server.shutdown()
        server.server_close()
