"""WebSocket authentication: the Django session cookie, or an API token given as
``?token=<key>`` or in the ``Authorization: Token <key>`` header."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddleware, CookieMiddleware, SessionMiddleware
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from rest_framework.authtoken.models import Token


@database_sync_to_async
def user_for_token(key: str):
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else AnonymousUser()


def _token_from_scope(scope) -> str:
    query = parse_qs(scope.get("query_string", b"").decode())
    if query.get("token"):
        return query["token"][0]
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, key = value.decode().partition(" ")
            if scheme.lower() == "token":
                return key.strip()
    return ""


class _TokenAuthMiddleware(AuthMiddleware):
    async def resolve_scope(self, scope):
        await super().resolve_scope(scope)
        key = _token_from_scope(scope)
        if key:
            scope["user"]._wrapped = await user_for_token(key)


def TokenOrSessionAuthMiddleware(inner):
    return CookieMiddleware(SessionMiddleware(_TokenAuthMiddleware(inner)))
