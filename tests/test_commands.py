"""Management commands: accounts with tokens, the demo estate, webhook URLs."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from incidents.models import Integration, Service
from reliability.models import TeamMembership

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_create_user_prints_a_working_token(api):
    token = run(
        "create_user", "alice", "--team", "payments", "--role", "responder", "--create-team"
    )
    assert Token.objects.get(key=token).user.username == "alice"
    assert TeamMembership.objects.get(user__username="alice").role == "responder"
    assert api(Token.objects.get(key=token).user).get("/api/v1/teams/").json()["count"] == 1
    # running it again changes the role, keeps the token
    assert run("create_user", "alice", "--team", "payments", "--role", "sre") == token
    assert TeamMembership.objects.get(user__username="alice").role == "sre"


def test_create_user_refuses_unknown_team_and_half_arguments():
    with pytest.raises(CommandError, match="No team"):
        run("create_user", "bob", "--team", "nope", "--role", "viewer")
    with pytest.raises(CommandError, match="go together"):
        run("create_user", "bob", "--team", "nope")


def test_load_demo_is_idempotent_and_prints_tokens():
    first = run("load_demo")
    run("load_demo")
    assert Service.objects.count() == 12
    assert Service.objects.get(slug="checkout").depends_on.count() == 4
    assert "commerce-responder" in first and "Token " in first
    assert Integration.objects.filter(name="lab", kind="alertmanager").count() == 1


def test_webhook_url(integrations):
    am = integrations["alertmanager"]
    assert run("webhook_url", "am") == f"http://127.0.0.1:8000/api/v1/ingest/{am.token}/"
    with_secret = run("webhook_url", "am", "--with-secret", "--base-url", "http://x:1")
    assert with_secret == f"http://x:1/api/v1/ingest/{am.token}/?secret={am.secret}"
    with pytest.raises(CommandError):
        run("webhook_url", "missing")
