"""Loki client against a loopback server: paging, decoding, retries and the breaker."""

from collections.abc import Iterator

import pytest

from intelligence.clients.loki import LokiClient
from reliability.http import DataSourceError, DataSourceUnavailable, make_client, reset_breakers

from .loki_stub import StubLoki, serve

S = 1_000_000_000


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    reset_breakers()
    yield
    reset_breakers()


def _client(url: str, **kw: float) -> LokiClient:
    http = make_client(
        "loki",
        url,
        timeout=kw.get("timeout", 2.0),
        retries=int(kw.get("retries", 2)),
        backoff=0.01,
        fail_max=int(kw.get("fail_max", 3)),
        reset_timeout=60,
    )
    return LokiClient(url, http=http)


def test_query_range_pages_through_all_lines_in_order() -> None:
    entries = [
        (1000 * S + n * S, f"line {n}", {"app": "checkout", "pod": f"p{n % 2}"}) for n in range(25)
    ]
    with serve(StubLoki(entries=entries)) as stub:
        client = _client(stub.url)
        got = client.query_range('{app="checkout"}', 1000, 1100, limit=10)
    assert [e.line for e in got] == [f"line {n}" for n in range(25)]
    assert got[3].labels == {"app": "checkout", "pod": "p1"}
    assert got[0].ts_ns == 1000 * S
    assert len(stub.requests) == 3
    assert stub.requests[0]["query"] == '{app="checkout"}'
    assert stub.requests[0]["start"] == str(1000 * S)
    assert stub.requests[0]["direction"] == "forward"
    assert stub.requests[1]["start"] == str(1009 * S + 1)


def test_server_errors_are_retried_then_reported_as_unavailable() -> None:
    with serve(StubLoki(fail_status=503)) as stub:
        client = _client(stub.url, retries=2, fail_max=10)
        with pytest.raises(DataSourceUnavailable) as err:
            client.query_range("{}", 0, 10)
    assert err.value.name == "loki"
    assert "503" in err.value.reason
    assert len(stub.requests) == 3  # one try + two retries


def test_breaker_opens_after_repeated_failures_and_fails_fast() -> None:
    with serve(StubLoki(fail_status=500)) as stub:
        client = _client(stub.url, retries=0, fail_max=2)
        for _ in range(2):
            with pytest.raises(DataSourceUnavailable):
                client.query_range("{}", 0, 10)
        calls = len(stub.requests)
        with pytest.raises(DataSourceUnavailable, match="circuit breaker open"):
            client.query_range("{}", 0, 10)
        assert len(stub.requests) == calls  # no request sent while open
        # the breaker is per outside system: a new client for "loki" is refused too
        with pytest.raises(DataSourceUnavailable, match="circuit breaker open"):
            _client(stub.url).query_range("{}", 0, 10)


def test_timeouts_are_retried_then_unavailable() -> None:
    with serve(StubLoki(delay_s=0.5)) as stub:
        client = _client(stub.url, timeout=0.1, retries=1, fail_max=10)
        with pytest.raises(DataSourceUnavailable, match="Timeout"):
            client.query_range("{}", 0, 10)
    assert len(stub.requests) == 2


def test_client_errors_are_not_retried_and_do_not_trip_the_breaker() -> None:
    with serve(StubLoki()) as stub:
        http = make_client("loki", stub.url, timeout=1, retries=3, backoff=0.01, fail_max=1)
        for _ in range(3):
            with pytest.raises(DataSourceError) as err:
                http.get_json("/nope")
            assert not isinstance(err.value, DataSourceUnavailable)
        assert len(stub.requests) == 3
        assert LokiClient(stub.url, http=http).query_range("{}", 0, 10) == []
