"""Secrets never in audit diffs, the audit API or the admin, nor in log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from daphne.access import AccessLogGenerator
from django.conf import settings
from django.db import connection

from incidents.models import Integration
from reliability.models import AuditLog
from reliability.redaction import REDACTED, RedactSecretsFilter, redact, redact_text
from reliability.serve import RedactingActionLogger
from tests.integration.processes import free_port

pytestmark = pytest.mark.django_db


def _all_audit_text() -> str:
    return json.dumps(list(AuditLog.objects.values("changes", "object_repr")), default=str)


def test_integration_secret_is_never_stored_in_the_audit_log(teams, users, api):
    admin = api(users["admin"])
    created = admin.post(
        "/api/v1/integrations/", {"name": "n", "kind": "generic", "team": "own"}, format="json"
    )
    assert created.status_code == 201
    integration = Integration.objects.get(name="n")
    rotated = admin.post(f"/api/v1/integrations/{integration.pk}/rotate_secret/")
    assert rotated.status_code == 200
    integration.refresh_from_db()
    secrets = {created.json()["secret"], rotated.json()["secret"], integration.token}
    text = _all_audit_text()
    assert not [s for s in secrets if s in text]
    row = AuditLog.objects.get(action="integration.created")
    assert row.changes["secret"] == REDACTED
    rotation = AuditLog.objects.get(action="integration.secret_rotated")
    assert rotation.changes["secret"] == [REDACTED, REDACTED]  # that it changed, not to what
    viewer_sees = json.dumps(api(users["viewer"]).get("/api/v1/audit-log/?page_size=500").json())
    assert not [s for s in secrets if s in viewer_sees]


def test_rows_written_before_redaction_are_redacted_when_read(teams, users, api):
    """History cannot be rewritten (append-only), so the API and admin redact on read."""
    AuditLog.objects.create(
        actor=users["viewer"],
        actor_repr="own-viewer",
        action="integration.created",
        object_type="incidents.integration",
        object_id="999",
        changes={"secret": "s3cr3t-old", "name": "x", "nested": {"api_key": "k-old"}},
        via="api",
    )
    body = json.dumps(api(users["viewer"]).get("/api/v1/audit-log/").json())
    assert "s3cr3t-old" not in body and "k-old" not in body
    assert '"name": "x"' in body
    root = users["root"]
    root.set_password("pw")
    root.save()
    from django.test import Client

    client = Client()
    client.force_login(root)
    row = AuditLog.objects.get(object_id="999")
    page = client.get(f"/admin/reliability/auditlog/{row.pk}/change/").content.decode()
    assert "s3cr3t-old" not in page and REDACTED in page


def test_redact_keeps_shape_and_ordinary_fields():
    data = {"secret": ["a", "b"], "group_key": "g", "labels": {"password": "p", "team": "t"}}
    assert redact(data) == {
        "secret": [REDACTED, REDACTED],
        "group_key": "g",
        "labels": {"password": REDACTED, "team": "t"},
    }
    assert redact({"custom": "v"}, extra={"custom"}) == {"custom": REDACTED}


def test_log_lines_lose_query_secrets_and_bearer_values():
    line = 'POST /api/v1/ingest/tok/?secret=abc123&x=1 "Authorization: Bearer abcdefgh1234"'
    cleaned = redact_text(line)
    assert "abc123" not in cleaned and "abcdefgh1234" not in cleaned
    assert "x=1" in cleaned and "?secret=[redacted]" in cleaned
    # the filter is on the handler every Django logger writes through
    assert "redact_secrets" in settings.LOGGING["handlers"]["console"]["filters"]
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", ("/p?token=zz9",), None)
    assert RedactSecretsFilter().filter(record)
    assert record.getMessage() == "GET /p?token=[redacted]"


def test_daphne_access_log_is_redacted():
    stream = io.StringIO()
    logger = RedactingActionLogger(AccessLogGenerator(stream))
    logger(
        "http",
        "complete",
        {
            "path": "/api/v1/ingest/t/?secret=topsecret",
            "status": 200,
            "method": "POST",
            "client": "127.0.0.1:1",
            "size": 2,
        },
    )
    assert "topsecret" not in stream.getvalue() and REDACTED in stream.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_production_server_never_logs_a_query_secret(tmp_path: Path, integrations):
    """``python -m reliability.serve`` (the README's production command), a webhook posted
    with ``?secret=``: neither the access log nor any log line holds it."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    if connection.vendor != "postgresql":
        url = f"sqlite:///{db['NAME']}"
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "false"}
    log = tmp_path / "daphne.log"
    integration = integrations["generic"]
    with log.open("wb") as out:
        command = ["-m", "reliability.serve", "-b", "127.0.0.1", "-p", str(port)]
        server = subprocess.Popen(
            [sys.executable, *command, "reliability.asgi:application"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=settings.BASE_DIR,
        )
        try:
            _wait_answering(f"http://127.0.0.1:{port}/api/v1/", timeout=120)
            for secret in (integration.secret, "wrong-secret-value"):
                httpx.post(
                    f"http://127.0.0.1:{port}/api/v1/ingest/{integration.token}/?secret={secret}",
                    json={"name": "X"},
                    timeout=10,
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    text = log.read_text()
    assert f"/api/v1/ingest/{integration.token}/?secret={REDACTED}" in text, text[-2000:]
    assert integration.secret not in text and "wrong-secret-value" not in text


def _wait_answering(url: str, timeout: float) -> None:
    """Until the server answers anything (401 included): it is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not answering after {timeout} s")
