"""Secrets never leave in audit diffs or log lines: one declared list, used everywhere.

A field is secret when its name is in ``SECRET_FIELD_NAMES`` or a model lists it in its
``SECRET_FIELDS`` class attribute (``register_secret_fields`` for models we do not own).
``redact`` is applied by ``audit.record`` on write and by the audit API and admin on read
(rows written before this existed); ``RedactSecretsFilter`` rewrites log records, and
``redact_url`` strips credentials from URLs in access logs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

# names that hold credentials wherever they appear (an integration's secret and webhook
# token, API token keys, signing keys, LLM/provider keys, passwords)
SECRET_FIELD_NAMES: set[str] = {
    "secret",
    "secret_hash",
    "token",
    "token_hash",
    "key",
    "key_hash",
    "password",
    "api_key",
    "access_token",
    "refresh_token",
    "signing_key",
    "signing_secret",
    "webhook_secret",
    "private_key",
    "client_secret",
    "llm_api_key",
    "authorization",
}

_SECRETISH = re.compile(r"(^|_)(secret|password|passwd|api_key|private_key|signing_key)($|_)")


def register_secret_fields(names: Iterable[str]) -> None:
    """Declare more secret field names (apps call this from ``AppConfig.ready``)."""
    SECRET_FIELD_NAMES.update(n.lower() for n in names)


def is_secret(name: str, extra: Iterable[str] = ()) -> bool:
    lowered = str(name).lower()
    return (
        lowered in SECRET_FIELD_NAMES or lowered in set(extra) or bool(_SECRETISH.search(lowered))
    )


def secret_fields_of(model: Any) -> set[str]:
    return set(getattr(model, "SECRET_FIELDS", ()) or ())


def redact(data: Any, extra: Iterable[str] = ()) -> Any:
    """A copy of ``data`` with the value of every secret key replaced by ``[redacted]``
    (at any depth; an audit diff ``[old, new]`` keeps its shape)."""
    extra = set(extra)
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if is_secret(key, extra) and value not in (None, ""):
                if isinstance(value, list):
                    out[key] = [REDACTED if v not in (None, "") else v for v in value]
                else:
                    out[key] = REDACTED
            else:
                out[key] = redact(value, extra)
        return out
    if isinstance(data, list):
        return [redact(item, extra) for item in data]
    return data


_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:secret|token|key|api_key|apikey|access_token|password|signature|sig)=)"
    r"[^&;\s\"'#]*"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}|\b(token)\s+[0-9a-f]{40}\b")


def redact_text(text: str) -> str:
    """A log line without query-string credentials or Authorization header values."""
    text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", text)


def redact_url(url: str) -> str:
    return _QUERY_SECRET.sub(rf"\1{REDACTED}", url)


class RedactSecretsFilter(logging.Filter):
    """Rewrites every record passing a handler: query secrets and bearer values go."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of ``logger`` (root by default) that lacks it;
    for processes that configure logging themselves (Celery, daphne)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
            handler.addFilter(RedactSecretsFilter())
