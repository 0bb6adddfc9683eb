"""One HTTP client factory for every outside system (Loki, Prometheus, Tempo, ...).

Each client has a timeout, retries with exponential back-off on transport errors and 5xx,
and a circuit breaker shared by every client of the same outside system name, so a dead
Loki fails fast for all callers instead of tying up workers. Failures surface as
``DataSourceUnavailable(name, reason)``; a 4xx (our bad request) is a ``DataSourceError``
and does not count against the breaker.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pybreaker
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)


class DataSourceError(Exception):
    """An outside system answered, but not with what we asked for."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class DataSourceUnavailable(DataSourceError):
    """An outside system could not be reached (after retries) or its breaker is open."""


class _Retryable(Exception):
    """Internal: a failure worth retrying (transport error or 5xx)."""


_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_lock = threading.Lock()


def breaker_for(
    name: str, *, fail_max: int = 5, reset_timeout: float = 30.0
) -> pybreaker.CircuitBreaker:
    """The circuit breaker of one outside system (created on first use)."""
    with _lock:
        br = _breakers.get(name)
        if br is None:
            br = pybreaker.CircuitBreaker(
                fail_max=fail_max,
                reset_timeout=reset_timeout,
                exclude=[lambda e: type(e) is DataSourceError],
                name=name,
            )
            _breakers[name] = br
        return br


def reset_breakers() -> None:
    """Forget all breakers (tests, or after reconfiguration)."""
    with _lock:
        _breakers.clear()


class ResilientClient:
    """A small wrapper over ``httpx.Client`` with retries and a shared breaker."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout: float,
        retries: int,
        backoff: float = 0.2,
        breaker: pybreaker.CircuitBreaker,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.retries = retries
        self.backoff = backoff
        self.breaker = breaker
        self._http = httpx.Client(base_url=base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ResilientClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500:
            raise _Retryable(f"HTTP {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise DataSourceError(self.name, f"HTTP {resp.status_code}: {resp.text[:200]}")
        return resp

    def _with_retries(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=5.0),
            retry=retry_if_exception_type(_Retryable),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, **kwargs)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise DataSourceUnavailable(
                self.name, f"{last} (after {self.retries + 1} attempts)"
            ) from last
        raise DataSourceUnavailable(self.name, "no attempt was made")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise ``DataSourceUnavailable`` / ``DataSourceError`` on failure."""
        try:
            return self.breaker.call(self._with_retries, method, path, **kwargs)
        except pybreaker.CircuitBreakerError as exc:
            raise DataSourceUnavailable(self.name, f"circuit breaker open: {exc}") from exc

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` and decode JSON (a non-JSON answer is a ``DataSourceError``)."""
        resp = self.request("GET", path, params=params)
        try:
            return resp.json()
        except ValueError as exc:
            raise DataSourceError(self.name, f"invalid JSON: {exc}") from exc


def make_client(
    name: str,
    base_url: str,
    *,
    timeout: float,
    retries: int,
    backoff: float = 0.2,
    fail_max: int = 5,
    reset_timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> ResilientClient:
    """A client for outside system ``name``; clients of one name share one breaker."""
    return ResilientClient(
        name,
        base_url,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        breaker=breaker_for(name, fail_max=fail_max, reset_timeout=reset_timeout),
        headers=headers,
    )
