"""JSON the database can store: bounded nesting, no NUL, no lone UTF-16 surrogates.

Python's ``json`` accepts all three, but PostgreSQL's ``jsonb`` refuses ``\\u0000``, a lone
surrogate cannot be encoded as UTF-8 (fingerprints, the database, the response), and very
deep nesting exhausts the parser's recursion. ``parse_json`` and ``unsafe_paths`` turn each
into a field-level error instead of a 500, before anything is written.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # far above any webhook or API body (alerts are 4 levels deep)

_SURROGATE = re.compile("[\ud800-\udfff]")


class UnsafeJSON(ValueError):
    """The body is JSON we refuse; ``errors`` maps a path (``alerts[0].labels.x``) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))


def _printable(key: str) -> str:
    """A key as it can appear in an error message (NUL and surrogates escaped)."""
    return ascii(key)[1:-1] if _problem(key) else key


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate, which is not valid Unicode"
    return None


def unsafe_paths(data: Any, max_depth: int = MAX_DEPTH) -> dict[str, list[str]]:
    """Every path in ``data`` holding a string we cannot store, or nested too deeply.

    Iterative, so it is safe on any depth a parser let through."""
    errors: dict[str, list[str]] = {}
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = _problem(value)
            if problem:
                errors.setdefault(path or "non_field_errors", []).append(f"The value {problem}.")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= max_depth:
            errors.setdefault(path or "non_field_errors", []).append(
                f"Nested deeper than {max_depth} levels."
            )
            continue
        if isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
            continue
        for key, item in value.items():
            child = f"{path}.{_printable(key)}" if path else _printable(key)
            problem = _problem(key)
            if problem:
                errors.setdefault(child, []).append(f"The key {problem}.")
            stack.append((item, child, depth + 1))
    return dict(sorted(errors.items()))


def parse_json(body: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises ``ValueError`` (``UnsafeJSON`` with paths) for anything
    the database could not store exactly, never ``RecursionError``."""
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise UnsafeJSON({"non_field_errors": [f"Nested deeper than {max_depth} levels."]}) from exc
    errors = unsafe_paths(data, max_depth)
    if errors:
        raise UnsafeJSON(errors)
    return data
