"""Turn a Loghub-style ``<Field>`` log format into a regex that extracts the message.

The header format is the only per-source input the miner accepts: it says where the message
starts, never how to mine it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_FIELD = re.compile(r"<([^<>]+)>")


@dataclass(frozen=True)
class HeaderFormat:
    """A compiled header format; ``content()`` returns the message part of a raw line."""

    fmt: str
    regex: re.Pattern[str]
    fields: tuple[str, ...]

    def parse(self, line: str) -> dict[str, str] | None:
        """Return all header fields of ``line`` or None when the line does not fit."""
        m = self.regex.match(line.strip())
        return m.groupdict() if m else None

    def content(self, line: str) -> str:
        """Return the ``Content`` field; a line that does not fit is mined whole."""
        m = self.regex.match(line.strip())
        if m is None:
            return line.strip()
        return m.group("Content")


def compile_log_format(fmt: str | None) -> HeaderFormat:
    """Compile ``fmt`` (logparser semantics: literal text is a regex, spaces are ``\\s+``)."""
    if not fmt:
        return HeaderFormat("", re.compile(r"^(?P<Content>.*)$", re.S), ("Content",))
    parts = re.split(r"(<[^<>]+>)", fmt)
    out: list[str] = []
    fields: list[str] = []
    for part in parts:
        m = _FIELD.fullmatch(part)
        if m:
            name = m.group(1)
            fields.append(name)
            out.append(f"(?P<{name}>.*?)")
        else:
            out.append(re.sub(r" +", r"\\s+", part))
    if "Content" not in fields:
        raise ValueError(f"log format {fmt!r} has no <Content> field")
    return HeaderFormat(fmt, re.compile("^" + "".join(out) + "$", re.S), tuple(fields))


def iter_contents(lines: Iterable[str], fmt: str | None) -> Iterator[str]:
    """Yield the message of each raw line (newline stripped)."""
    header = compile_log_format(fmt)
    for line in lines:
        yield header.content(line.rstrip("\r\n"))
