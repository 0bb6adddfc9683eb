"""Shared fixtures: two teams (ours and theirs), a user per role in each, services,
integrations, and helpers to post webhooks and call the API as someone."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from incidents.models import Dependency, Integration, Service
from reliability.accounts import ensure_user
from reliability.models import Team
from reliability.roles import ROLE_ORDER


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup, django_db_blocker):
    """Threads of async and live-server tests may leave sessions open; end them so the
    test database can be dropped."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()  # throttle counters live in the cache (Redis under scripts/test.sh)
    yield
    cache.clear()


@pytest.fixture
def teams(db) -> dict[str, Team]:
    return {
        "own": Team.objects.create(name="Own", slug="own"),
        "other": Team.objects.create(name="Other", slug="other"),
    }


@pytest.fixture
def users(teams) -> dict[str, Any]:
    """``users[role]`` is in the own team; ``outsider`` is in no team; ``root`` is superuser."""
    made = {}
    for role in ROLE_ORDER:
        made[str(role)], _ = ensure_user(f"own-{role}", team=teams["own"], role=role)
        ensure_user(f"other-{role}", team=teams["other"], role=role)
    made["outsider"], _ = ensure_user("outsider")
    made["root"], _ = ensure_user("root", superuser=True)
    return made


@pytest.fixture
def services(teams) -> dict[str, Service]:
    own = teams["own"]
    made = {
        "payments": Service.objects.create(name="Payments", slug="payments", team=own, tier=1),
        "checkout": Service.objects.create(name="Checkout", slug="checkout", team=own, tier=1),
        "search": Service.objects.create(name="Search", slug="search", team=teams["other"]),
    }
    Dependency.objects.create(service=made["checkout"], depends_on=made["payments"])
    return made


@pytest.fixture
def integrations(teams) -> dict[str, Integration]:
    return {
        "alertmanager": Integration.objects.create(
            name="am", kind=Integration.Kind.ALERTMANAGER, team=teams["own"]
        ),
        "grafana": Integration.objects.create(
            name="grafana", kind=Integration.Kind.GRAFANA, team=teams["own"]
        ),
        "generic": Integration.objects.create(
            name="generic", kind=Integration.Kind.GENERIC, team=teams["own"]
        ),
        "other": Integration.objects.create(
            name="other-am", kind=Integration.Kind.ALERTMANAGER, team=teams["other"]
        ),
    }


@pytest.fixture
def api() -> Callable[[Any], APIClient]:
    """``api(user)`` is a client authenticated with that user's token (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
        return client

    return make


def am_alert(
    name: str,
    service: str,
    *,
    status: str = "firing",
    fingerprint: str | None = None,
    severity: str = "warning",
    summary: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "service": service, "severity": severity, **labels},
        "annotations": {"summary": summary or f"{name} on {service}"},
        "startsAt": "2026-11-28T10:00:00Z",
        "endsAt": "2026-11-28T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
        "fingerprint": fingerprint or f"{name}-{service}",
    }


def am_payload(alerts: list[dict], group_key: str = '{}:{alertname="X"}') -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "reliability-studio",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": alerts,
    }


@pytest.fixture
def post_webhook() -> Callable[..., Any]:
    """``post_webhook(integration, payload)`` posts JSON with the right secret."""

    def post(integration: Integration, payload: Any, *, secret: str | None = None, **extra):
        client = APIClient()
        body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        return client.post(
            f"/api/v1/ingest/{integration.token}/",
            data=body,
            content_type=extra.pop("content_type", "application/json"),
            HTTP_AUTHORIZATION=f"Bearer {integration.secret if secret is None else secret}",
            **extra,
        )

    return post
