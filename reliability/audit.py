"""Audit trail: who changed what, from where, in the same transaction as the change.

``RequestContextMiddleware`` stamps each request with an id and the client address;
``record()`` reads them so callers only say what happened.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse

from reliability.models import AuditLog
from reliability.redaction import redact, secret_fields_of


@dataclass(frozen=True)
class AuditContext:
    request_id: str = ""
    source_ip: str | None = None
    via: str = "system"


_context: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar(
    "audit_context", default=None
)


def current_context() -> AuditContext:
    return _context.get() or AuditContext()


@contextmanager
def audit_context(**fields: Any) -> Iterator[AuditContext]:
    """Override parts of the audit context for a block (e.g. ``via="ingestion"``)."""
    merged = AuditContext(**{**current_context().__dict__, **fields})
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Give every request an id (or keep the caller's ``X-Request-ID``) for the audit log."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
        via = "admin" if request.path.startswith("/admin/") else "api"
        token = _context.set(AuditContext(request_id, client_ip(request), via))
        request.request_id = request_id
        try:
            response = self.get_response(request)
        finally:
            _context.reset(token)
        response["X-Request-ID"] = request_id
        return response


def record(
    action: str,
    obj: models.Model | None = None,
    *,
    actor: Any = None,
    changes: dict[str, Any] | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    object_repr: str | None = None,
) -> AuditLog:
    """Append one audit row. Call inside the transaction that makes the change.

    Secret fields (``reliability.redaction``) are stored as ``[redacted]``, never in clear."""
    ctx = current_context()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr if object_repr is not None else str(obj)[:200]
    return AuditLog.objects.create(
        actor=actor,
        actor_repr=(actor.get_username() if actor else ctx.via)[:200],
        action=action,
        object_type=object_type or "",
        object_id=object_id or "",
        object_repr=(object_repr or "")[:200],
        changes=redact(changes or {}, secret_fields_of(obj)),
        request_id=ctx.request_id,
        source_ip=ctx.source_ip,
        via=ctx.via,
    )


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields that changed."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


VisibleObjects = Callable[[Any], models.QuerySet]
_visibility: dict[str, VisibleObjects] = {}


def register_visibility(model_label: str, visible: VisibleObjects) -> None:
    """Say how to find the objects of ``model_label`` a user may see, so the audit log
    shows them their entries. Apps register from ``AppConfig.ready`` (imports point down)."""
    _visibility[model_label] = visible


def visibility_providers() -> dict[str, VisibleObjects]:
    return dict(_visibility)
