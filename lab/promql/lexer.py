"""Tokeniser for the PromQL subset: identifiers, keywords, numbers, durations, strings,
operators and brackets. Positions are kept so errors point at the offending character."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.promql.errors import ParseError

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "atan2"}
)

_DURATION_RE = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_NUMBER_RE = re.compile(r"0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_IDENT_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_:]*|:[a-zA-Z_:][a-zA-Z0-9_:]*")
_SPECIAL_NUMBERS = {"inf": float("inf"), "nan": float("nan")}
_OPERATORS = (
    "==", "!=", "=~", "!~", ">=", "<=", "=", ">", "<", "+", "-", "*", "/", "%", "^",
    "(", ")", "{", "}", "[", "]", ",", "@", ":",
)  # fmt: skip
_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "`": "`",
}  # fmt: skip

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_UNIT_MS |= {"w": 7 * 86_400_000, "y": 365 * 86_400_000}
_UNIT_ORDER = ("y", "w", "d", "h", "m", "s", "ms")


@dataclass(frozen=True)
class Token:
    kind: str  # IDENT, KEYWORD, NUMBER, DURATION, STRING, OP, EOF
    value: str
    pos: int
    number: float = 0.0


def parse_duration(text: str) -> int:
    """A Prometheus duration (``1h30m``, ``5m``, ``250ms``) in milliseconds; units must
    appear largest first and at most once, as in Prometheus's ``model.ParseDuration``."""
    if text == "0":
        return 0
    parts = re.findall(r"([0-9]+)(ms|[smhdwy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a valid duration string: {text!r}")
    last = -1
    total = 0
    for number, unit in parts:
        rank = _UNIT_ORDER.index(unit)
        if rank <= last:
            raise ValueError(f"not a valid duration string: {text!r}")
        last = rank
        total += int(number) * _UNIT_MS[unit]
    return total


def _unquote(text: str, start: int, quote: str) -> tuple[str, int]:
    """Read a quoted string starting after the opening ``quote``; return (value, end)."""
    out: list[str] = []
    i = start
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if quote == "`":
            out.append(ch)
            i += 1
            continue
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4]):
            out.append(chr(int(text[i + 2 : i + 4], 16)))
            i += 4
        elif nxt in ("u", "U"):
            width = 4 if nxt == "u" else 8
            digits = text[i + 2 : i + 2 + width]
            if not re.fullmatch(rf"[0-9a-fA-F]{{{width}}}", digits):
                raise ParseError("invalid unicode escape in string", i, text)
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif re.fullmatch(r"[0-7]{3}", text[i + 1 : i + 4]):
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise ParseError(f"unknown escape sequence {nxt!r}", i, text)
    raise ParseError("unterminated quoted string", start - 1, text)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "#":  # comment to end of line
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in "\"'`":
            value, end = _unquote(text, i + 1, ch)
            tokens.append(Token("STRING", value, i))
            i = end
            continue
        if ch.isdigit() or (ch == "." and text[i + 1 : i + 2].isdigit()):
            dm = _DURATION_RE.match(text, i)
            if dm and not _is_word_char(text, dm.end()):
                tokens.append(Token("DURATION", dm.group(), i))
                i = dm.end()
                continue
            nm = _NUMBER_RE.match(text, i)
            if nm is None or _is_word_char(text, nm.end()) or text[nm.end() : nm.end() + 1] == ".":
                if _inside_brackets(tokens):
                    digits = re.match(r"[0-9]*", text[i:])
                    raise ParseError(f'bad duration syntax: "{digits.group()}"', i, text)
                raise ParseError("bad number or duration syntax", i, text)
            raw = nm.group()
            value = float(int(raw, 16)) if raw[:2].lower() == "0x" else float(raw)
            tokens.append(Token("NUMBER", raw, i, value))
            i = nm.end()
            continue
        im = _IDENT_RE.match(text, i)
        if im:
            word = im.group()
            if word.lower() in _SPECIAL_NUMBERS:
                tokens.append(Token("NUMBER", word, i, _SPECIAL_NUMBERS[word.lower()]))
            elif word.lower() in KEYWORDS:
                tokens.append(Token("KEYWORD", word, i))
            else:
                tokens.append(Token("IDENT", word, i))
            i = im.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("OP", op, i))
                i += len(op)
                break
        else:
            raise ParseError(f"unexpected character: {ch!r}", i, text)
    tokens.append(Token("EOF", "", n))
    return tokens


def _inside_brackets(tokens: list[Token]) -> bool:
    opens = sum(1 for t in tokens if t.kind == "OP" and t.value == "[")
    closes = sum(1 for t in tokens if t.kind == "OP" and t.value == "]")
    return opens > closes


def _is_word_char(text: str, i: int) -> bool:
    return i < len(text) and (text[i].isalnum() or text[i] == "_")
