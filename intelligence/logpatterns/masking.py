"""Generic, token-wise masking of variable parts of a log message.

One rule set for every source: numbers (with units, signs, dots, dashes), hex, UUIDs, IPs
with ports, paths, URLs, Windows paths, host names, ``word_<digits>`` ids, versions and
hardware locations, plus multi-token values folded first (timestamps, human-readable sizes,
HTTP request targets). Every rule looks at digit classes, never digit values, so results
are cached per token, per digit shape of a token and per digit shape of a whole line: a
steady stream costs one ``translate`` and one dictionary look-up per line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

WILDCARD = "<*>"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
# Multi-token timestamps ("Sun Jul 10 03:55:15 2005", "2017-05-16 00:00:00.008") are one
# variable; they are folded on the token list around each clock-time token.
_CLOCK = re.compile(r"^\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?([^\w]*)$")
_MONTH_TOKEN = re.compile(_MONTH + r"\.?,?$")
_DAY_TOKEN = re.compile(_DAY + r"\.?,?$")
_DAY_OF_MONTH = re.compile(r"^\d{1,2}(?:st|nd|rd|th)?,?$")
_DATE_TOKEN = re.compile(r"^[\[(]?\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$")
# Any 4-digit number right after a clock time is its year. (Every rule here looks at digit
# classes only, never at digit values, which is what makes the line-shape cache exact.)
_YEAR_TOKEN = re.compile(r"^\d{4}([^\w]*)$")
_ZONE_TOKEN = re.compile(r"^(?:[+-]\d{4}|UTC|GMT|Z)([^\w]*)$")
_CLF_TIME = re.compile(r"^\[?\d{1,2}/" + _MONTH + r"/\d{4}:\d{2}:\d{2}:\d{2}([^\w]*)$")

# A human-readable size ("23.4 KB", "512.0 B") picks its unit by magnitude, so the unit is
# part of the value; integer sizes keep their fixed unit ("2048 MB").
_SIZE_UNIT = re.compile(r"^(?:[KMGTPE]i?B|B)([^\w]*)$")
# ... but "1190 bytes (1.16 KB)" only annotates an exact count: the unit there stays a word.
_SIZE_NUMBER = re.compile(r"^([^\w.(]*)\d+\.\d+$")
# Cheap literal-first hints gate the costlier multi-token rules (most lines skip them).
_HMS_HINT = re.compile(r":\d\d:")
_SIZE_HINT = re.compile(r"B\b")
# An HTTP request line ("GET /path?q=1 HTTP/1.1"): the target and version are one value.
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "CONNECT"})
_VERSION_CHARS = frozenset("0123456789.")
# Host names: dotted labels ending in a common top-level domain (Java class names do not).
_TLD = (
    "com|net|org|edu|gov|mil|int|io|info|biz|local|localdomain|lan|internal|corp|home|"
    "uk|de|cn|jp|hk|nl|at|fr|ru|br|au|ca|us|it|es|se|ch|kr|tw|pl|be|dk|no|fi|cz|in|"
    "vn|tr|mx|ar|cl|co|za|ie|pt|gr|ro|hu|ua|il|sg|my|th|ph|nz|ir|pk|eg|sa|ae|bg|sk|"
    "lt|lv|ee|si|hr|rs|by|kz|ve|pe|uy|eu|asia|me|tv|cc|ws|su|cloud|arpa"
)

# The variable rules, in priority order, each with a cheap necessary condition: a token is
# matched only against the rules that can apply to it (same result, far fewer branches).
_RULES: list[tuple[str, Callable[[str], bool]]] = [
    (r"(?P<url>[A-Za-z][A-Za-z0-9+.\-]*://\S+)", lambda t: "://" in t),
    (
        r"(?P<uuid>(?<![0-9A-Za-z])[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})",
        lambda t: t.count("-") >= 4,
    ),
    (r"(?P<winpath>(?<![A-Za-z0-9])[A-Za-z]:\\[^\s\"',;]*)", lambda t: ":\\" in t),
    (
        r"(?P<path>(?<![\w.\-])(?:~|\.{1,2})?(?:/[^\s/\"'()\[\]<>{},;]+){2,}/?)",
        lambda t: t.count("/") >= 2,
    ),
    (
        r"(?P<host>(?<![\w.\-])[A-Za-z0-9][\w\-]*(?:\.[\w\-]+)*\.(?i:" + _TLD + r")(?![\w.\-]))",
        lambda t: "." in t,
    ),
    (
        r"(?P<dnsname>(?<![\w.\-])[A-Za-z][A-Za-z_\-]*\d[\w\-]*(?:\.[A-Za-z][\w\-]*){2,}"
        r"(?![\w.\-]))",
        lambda t: t.count(".") >= 2,
    ),
    (
        r"(?P<location>(?<![\w.\-])(?=(?:[A-Za-z]*\d\w*[-:]){1,}[\w:\-]*\d)"
        r"[A-Za-z0-9]+(?:[-:][A-Za-z0-9]+){2,}(?![\w.\-]))",
        lambda t: t.count("-") + t.count(":") >= 2,
    ),
    (
        r"(?P<node>(?<![\w.\-])[A-Za-z]+(?:-[A-Za-z]+)+-\d[\w.\-]*(?::\d+)?(?:/[\d.:]+)?(?![\w]))",
        lambda t: t.count("-") >= 2,
    ),
    (
        r"(?P<id>(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z][A-Za-z0-9]*)*_-?\d\w*"
        r"(?:[.\-]\w+)*)",
        lambda t: "_" in t,
    ),
    (
        r"(?P<version>(?<![A-Za-z0-9])[vV]\d+(?:\.\d+)+\w*)",
        lambda t: ("v" in t or "V" in t) and "." in t,
    ),
    (r"(?P<numbered>(?<![A-Za-z0-9])[A-Za-z]+\d{4,}(?![A-Za-z0-9]))", lambda t: len(t) >= 5),
    (r"(?P<hex>(?<![A-Za-z0-9])0[xX][0-9a-fA-F]+)", lambda t: "0x" in t or "0X" in t),
    (
        r"(?P<hexword>(?<![\w])(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}"
        r"(?![\w]))",
        lambda t: len(t) >= 8,
    ),
    (r"(?P<num>(?:^/)?(?<![A-Za-z0-9])[-+]?\d\w*(?:[.\-]\w+)*)", lambda t: True),
]
_VARIABLE = re.compile("|".join(rule for rule, _ in _RULES))
_RULE_SETS: dict[tuple[bool, ...], re.Pattern[str]] = {}


def _rules_for(token: str) -> re.Pattern[str]:
    """The alternation of just the rules whose necessary condition ``token`` meets."""
    key = tuple(applies(token) for _, applies in _RULES)
    rx = _RULE_SETS.get(key)
    if rx is None:
        rx = re.compile("|".join(rule for (rule, _), on in zip(_RULES, key, strict=True) if on))
        _RULE_SETS[key] = rx
    return rx


# "key=1##2##3": a key's value made only of variables and separators is one value.
_KEYED_COMPOUND = re.compile(r"^([A-Za-z_][\w.\-]*[=:])((?:<\*>[^\w<>]*){2,})$")
# Variables glued by these separators are one value (an endpoint "ip:port", a list "a,b").
_GLUED = re.compile(r"<\*>(?:[:.,_\-@]+<\*>)+")


_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_ASCII_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_PER_TOKEN = "\0per-token"


_TRAILING = "\"')]}>,;:!?"
_TLDS = frozenset(_TLD.split("|"))
_HAS_DIGIT = re.compile(r"\d")
_NO_DIGIT_VARIABLE = re.compile(
    r"(?P<url>[A-Za-z][A-Za-z0-9+.\-]*://\S+)"
    r"|(?P<winpath>(?<![A-Za-z0-9])[A-Za-z]:\\[^\s\"',;]*)"
    r"|(?P<path>(?<![\w.\-])(?:~|\.{1,2})?(?:/[^\s/\"'()\[\]<>{},;]+){2,}/?)"
    r"|(?P<host>(?<![\w.\-])[A-Za-z0-9][\w\-]*(?:\.[\w\-]+)*\.(?i:" + _TLD + r")(?![\w.\-]))"
)


# A boolean value, bare or after "key=" / "key:" ("obj=true", "enabled:false,").
_BOOLEAN = re.compile(
    r"^([^\w]*(?:[A-Za-z_][\w.\-]*[=:])?)(?:true|false|True|False|TRUE|FALSE)([^\w]*)$"
)
_NUMERIC_CORE = frozenset("0123456789.:,-_")
_OPENERS = "([{\"'"
_CLOSERS = ")]}\"',;:."


def _plain_number(token: str) -> str | None:
    """Fast path for the commonest shape, a bare or bracketed number ("(12.5),", "10:42")."""
    core = token.lstrip(_OPENERS)
    lead = token[: len(token) - len(core)]
    body = core.rstrip(_CLOSERS)
    start = 1 if body[:1] in ("+", "-") else 0
    if len(body) <= start or not body[start].isdigit() or not body[-1].isdigit():
        return None
    if not _NUMERIC_CORE.issuperset(body[start:]):
        return None
    return lead + WILDCARD + core[len(body) :]


MAX_TOKEN_LEN = 512


def _mask_word(token: str) -> str:
    """A token without digits, dots or slashes: only a boolean value can be variable."""
    boolean = _BOOLEAN.match(token)
    return boolean.group(1) + WILDCARD + boolean.group(2) if boolean else token


def _mask_text(token: str) -> str:
    if len(token) > MAX_TOKEN_LEN:
        # A very long token with digits is a blob (base64, serialized data, a long id):
        # one value. The cap also keeps regex backtracking bounded on hostile input.
        return WILDCARD if _HAS_DIGIT.search(token) else token
    plain = _plain_number(token)
    if plain is not None:
        return plain
    if _HAS_DIGIT.search(token) is None:
        if _BOOLEAN.match(token):
            return _mask_word(token)
        # Only URLs, paths and host names can hide in a token without digits; a dotted
        # code name ("org.apache.Foo") is rejected by a set look-up before any regex runs.
        if "/" in token or "\\" in token:
            return _NO_DIGIT_VARIABLE.sub(WILDCARD, token)
        if "." in token:
            tail = token.rstrip(_TRAILING).rsplit(".", 1)[-1].lower()
            if tail in _TLDS:
                return _NO_DIGIT_VARIABLE.sub(WILDCARD, token)
        return token
    masked = _rules_for(token).sub(WILDCARD, token)
    if WILDCARD in masked:
        masked = _GLUED.sub(WILDCARD, masked)
        keyed = _KEYED_COMPOUND.match(masked)
        if keyed:
            tail = keyed.group(2)
            masked = keyed.group(1) + WILDCARD + tail[tail.rfind(WILDCARD) + len(WILDCARD) :]
    return masked


class Masker:
    """Mask variable parts of whitespace tokens, caching results per distinct token.

    The cache is bounded: when it is full it is cleared, which keeps memory flat on
    streams with unbounded distinct values and costs only a re-mask of hot tokens.
    """

    def __init__(self, cache_size: int = 200_000, line_cache_size: int = 50_000) -> None:
        self._lines: dict[bytes, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        self._line_cache_size = line_cache_size
        self._cache: dict[str, str] = {}
        self._shapes: dict[str | bytes, str] = {}
        self._cache_size = cache_size

    def mask_token(self, token: str) -> str:
        """Return ``token`` with every variable part replaced by ``<*>``."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        if token.isdigit():
            masked = WILDCARD
        elif token.isalpha():
            masked = _mask_word(token)
        else:
            # Every rule treats all digits alike, so tokens of one digit shape mask alike:
            # "blk_-69..." and "blk_-12..." share one regex pass.
            shape = token.translate(_DIGITS_TO_ZERO)
            masked = self._shapes.get(shape)
            if masked is None:
                masked = _mask_text(shape)
                if "0" in masked:
                    masked = _PER_TOKEN  # a digit stays visible: the real digits matter
                if len(self._shapes) >= self._cache_size:
                    self._shapes.clear()
                self._shapes[shape] = masked
            if masked is _PER_TOKEN:
                masked = _mask_text(token)
            elif WILDCARD not in masked:
                masked = token
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = masked
        return masked

    def mask(self, tokens: list[str]) -> list[str]:
        """Mask a tokenised message."""
        get = self._cache.get
        slow = self.mask_token
        return [get(t) or slow(t) for t in tokens]

    def _mask_shape(self, shape: str | bytes) -> str:
        text = shape.decode() if isinstance(shape, bytes) else shape
        # Without a digit, a dot or a slash no rule can match: skip the regex.
        if "0" in text or "." in text or "/" in text or "\\" in text:
            masked = _mask_text(text)
        else:
            masked = _mask_word(text)
        if "0" in masked:
            masked = _PER_TOKEN
        if len(self._shapes) >= self._cache_size:
            self._shapes.clear()
        self._shapes[shape] = masked
        return masked

    def mask_line(self, content: str) -> tuple[list[str], list[str]]:
        """Tokenise and mask a message: ``(raw tokens, masked tokens)``.

        The whole line is mapped to its digit shape with one ``translate`` call, so unique
        values ("blk_-6952...", "10.251.73.220:50010") hit the cache by shape. ASCII lines
        are shaped as bytes (a table lookup, ~10x faster than ``str.translate``).
        """
        folded = _fold_request_target(content) if " HTTP/" in content else content
        tokens = folded.split()
        if ":" in folded and _HMS_HINT.search(folded):
            tokens = _fold_times(tokens)
            folded = " ".join(tokens)
        if "B" in folded and _SIZE_HINT.search(folded):
            tokens = _fold_sizes(tokens)
            folded = " ".join(tokens)
        shapes: list[bytes] | list[str]
        if ('"' in folded or "'" in folded) and len(quoted := _fold_quotes(tokens)) != len(tokens):
            tokens = quoted
            shapes = [t.translate(_DIGITS_TO_ZERO) for t in tokens]
        elif folded.isascii():
            shapes = folded.encode().translate(_ASCII_DIGITS_TO_ZERO).split()
            if len(shapes) != len(tokens):  # str.split knows a few more separators
                shapes = folded.translate(_DIGITS_TO_ZERO).split()
        else:
            shapes = folded.translate(_DIGITS_TO_ZERO).split()
        return tokens, self._mask_shapes(shapes, tokens)

    def _mask_shapes(self, shapes: list[bytes] | list[str], tokens: list[str]) -> list[str]:
        masked: list[str] = list(map(self._shapes.get, shapes))  # C-level look-ups
        if None in masked:
            slow = self._mask_shape
            masked = [m if m is not None else slow(s) for m, s in zip(masked, shapes, strict=True)]
        if _PER_TOKEN in masked:
            masked = [
                self.mask_token(t) if m is _PER_TOKEN else m
                for t, m in zip(tokens, masked, strict=True)
            ]
        return masked

    def mask_key(self, content: str) -> tuple[str, ...]:
        """Masked tokens only: the miner's hot path.

        Every masking rule depends on where digits are, never on which digits they are, so
        all lines with one digit shape (digits mapped to ``0``) mask alike. The result is
        cached per line shape; only tokens whose digits stay visible ("tty2") are redone.
        """
        shape = content.encode().translate(_ASCII_DIGITS_TO_ZERO)
        hit = self._lines.get(shape)
        if hit is not None:
            key, visible = hit
            if not visible:
                return key
            tokens = tokenize(content)
            out = list(key)
            for i in visible:
                out[i] = self.mask_token(tokens[i])
            return tuple(out)
        tokens, masked = self.mask_line(content)
        visible = tuple(
            i
            for i, (t, m) in enumerate(zip(tokens, masked, strict=True))
            if _has_visible_digit(t, m)
        )
        key = tuple(masked)
        if len(self._lines) >= self._line_cache_size:
            self._lines.clear()
        self._lines[shape] = (key, visible)
        return key


def _has_visible_digit(token: str, masked: str) -> bool:
    """True when a digit of ``token`` survives masking (so the real digits matter)."""
    # A digit in the masked token came from the token, so the masked side alone decides.
    return masked != WILDCARD and _HAS_DIGIT.search(masked) is not None


def _fold_request_target(content: str) -> str:
    """Replace ``<target> HTTP/<version>`` after a request method by one ``<*>``."""
    at = content.find(" HTTP/")
    while at > 0:
        target = content.rfind(" ", 0, at)
        method = content.rfind(" ", 0, target) if target > 0 else -1
        end = at + 6
        while end < len(content) and content[end] in _VERSION_CHARS:
            end += 1
        if target > 0 and content[method + 1 : target].lstrip("\"'[(") in _METHODS:
            content = content[: target + 1] + WILDCARD + content[end:]
            at = content.find(" HTTP/", target + 1 + len(WILDCARD))
        else:
            at = content.find(" HTTP/", at + 6)
    return content


def _fold_times(tokens: list[str]) -> list[str]:
    """Fold a date + clock time (+ year) spread over several tokens into one ``<*>``."""
    out: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        clock = (_CLOCK.match(tok) or _CLF_TIME.match(tok)) if ":" in tok else None
        if clock is None:
            out.append(tok)
            i += 1
            continue
        tail = clock.group(1)
        back = 0
        if out and _DATE_TOKEN.match(out[-1]):
            back = 1
        elif len(out) >= 2 and _DAY_OF_MONTH.match(out[-1]) and _MONTH_TOKEN.match(out[-2]):
            back = 2
            if len(out) >= 3 and _DAY_TOKEN.match(out[-3]):
                back = 3
        i += 1
        extra = False
        if not tail and i < n:
            year = _YEAR_TOKEN.match(tokens[i]) or _ZONE_TOKEN.match(tokens[i])
            if year:
                tail, extra = year.group(1), True
                i += 1
        if back or extra or clock.re is _CLF_TIME:
            lead = ""
            if back:
                first = out[-back]
                lead = first[: len(first) - len(first.lstrip("[("))]
                del out[-back:]
            out.append(lead + WILDCARD + tail)
        else:
            out.append(tok)
    return out


def tokenize(content: str) -> list[str]:
    """Split a message on whitespace after folding multi-token values into one token."""
    if " HTTP/" in content:
        content = _fold_request_target(content)
    tokens = content.split()
    if ":" in content and _HMS_HINT.search(content):
        tokens = _fold_times(tokens)
    if "B" in content and _SIZE_HINT.search(content):
        tokens = _fold_sizes(tokens)
    if '"' in content or "'" in content:
        tokens = _fold_quotes(tokens)
    return tokens


# A quoted value that spans several words ('tag="View Lock",') is one token, so a value
# of two words and one of three words sit in the same position.
_QUOTE_OPEN = re.compile(r"""^[^\w"']*(?:[A-Za-z_][\w.\-]*[=:])?(["'])""")
_MAX_QUOTED_TOKENS = 8


def _fold_quotes(tokens: list[str]) -> list[str]:
    """Join the words of a quoted value into one token (bounded, unclosed quotes left)."""
    out: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        opener = _QUOTE_OPEN.match(tok)
        if opener is None or tok.count(opener.group(1)) % 2 == 0:
            out.append(tok)
            i += 1
            continue
        quote = opener.group(1)
        end = None
        for j in range(i + 1, min(n, i + _MAX_QUOTED_TOKENS)):
            core = tokens[j].rstrip(_TRAILING_AFTER_QUOTE)
            if tokens[j].count(quote) % 2 == 1 and core.endswith(quote):
                end = j
                break
        span = " ".join(tokens[i : end + 1]) if end is not None else ""
        if end is None or _STRUCTURED.search(span):
            out.append(tok)
            i += 1
            continue
        out.append(span)
        i = end + 1
    return out


_TRAILING_AFTER_QUOTE = ".,;:!?)]}>"
# Only free text is folded: a quoted request line ('"GET /a HTTP/1.1"') has structure.
_STRUCTURED = re.compile(r"[\d/<>]")

# Units a quantity may carry ("512 bytes", "<1 sec", "3 ms"); a parenthesised conversion
# may follow ("1190 bytes (1.16 KB)"). The whole run is one variable of varying length.
_UNITS = frozenset(
    " ".join(
        [
            "b B byte bytes Bytes KB kB KiB kb MB MiB mb GB GiB gb TB TiB tb PB",
            "ns us µs ms msec msecs s sec secs second seconds min mins minute minutes",
            "h hr hrs hour hours d day days % percent",
        ]
    ).split()
)
_LEADING_KEPT = "([{\"'"
_GROUP_PUNCT = "(),;."


def collapse_spans(key: tuple[str, ...]) -> tuple[tuple[str, ...], list[int]] | None:
    """Fold each value + unit (+ "(conversion)") run of a masked key into one ``<*>``.

    Returns the folded key and, per folded position, the index of its first token; None
    when the key has no such run. "<*> bytes (<*> KB) sent," and "<*> bytes sent," both
    fold to "<*> sent,".
    """
    out: list[str] = []
    starts: list[int] = []
    i, n = 0, len(key)
    changed = False
    while i < n:
        tok = key[i]
        j = i + 1
        if WILDCARD in tok and not tok.endswith((",", ";")):
            while j < n and j - i <= 4:
                word = key[j].rstrip(",;.")
                if word in _UNITS:
                    j += 1
                    if key[j - 1] != word:  # "sec," ends the run
                        break
                    continue
                if key[j].startswith("(") and WILDCARD in key[j]:
                    k = j
                    while k < n and k - j < 2 and ")" not in key[k]:
                        k += 1
                    inner = " ".join(key[j : k + 1])
                    if k < n and all(
                        WILDCARD in w or w.strip(_GROUP_PUNCT) in _UNITS for w in inner.split()
                    ):
                        j = k + 1
                        continue
                break
        if j > i + 1:
            lead = tok[: len(tok) - len(tok.lstrip(_LEADING_KEPT))]
            last = key[j - 1]
            tail = last[len(last.rstrip(",;.")) :]
            out.append(lead + WILDCARD + tail)
            changed = True
        else:
            out.append(tok)
        starts.append(i)
        i = j
    return (tuple(out), starts) if changed else None


def _fold_sizes(tokens: list[str]) -> list[str]:
    """Join "23.4 KB," into one "<*>," token (see ``_SIZE_UNIT``)."""
    out: list[str] = []
    for tok in tokens:
        unit = _SIZE_UNIT.match(tok)
        number = _SIZE_NUMBER.match(out[-1]) if unit and out else None
        if number:
            out[-1] = number.group(1) + WILDCARD + unit.group(1)
        else:
            out.append(tok)
    return out
