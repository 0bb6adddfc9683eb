"""Streaming, online log template miner.

How it differs from Drain:

* Variables are masked token-wise with one generic rule set first (``masking.py``), so most
  lines resolve through one dictionary look-up on their masked token sequence, not a tree walk.
* Lines whose masked tokens are identical are one template; no similarity threshold is ever
  applied to the constant words, so templates that differ in a single enum word (``from NEW
  to UNASSIGNED`` vs ``from RUNNING to SUCCEEDED``) stay apart.
* A word position becomes a parameter only when evidence says so: templates of the same
  length that agree everywhere except one position are indexed together, and once that
  position has taken ``min_distinct`` different values (``min_distinct_code`` for values
  that look like code: Capitalised, UPPER_CASE, camelCase) they merge into one template
  with a ``<*>`` slot there. Merges cascade, so a template can grow several word slots.
* Positions that look like values, by syntactic role (after ``key=``, after a delimited
  ``key:``, a name after "user"/"host"-like nouns, a glued ``key=value``, quoted or
  bracketed as a whole, ``null``, an error name next to its code) or by shape
  (digits, dotted/tilde/underscore identifiers, CamelCase compounds), need only
  ``min_distinct_role`` values. Siblings with one constant skeleton that differ only in such
  positions merge even when several positions differ at once.
* A quantity with a unit and an optional parenthesised conversion ("1190 bytes (1.16 KB)",
  "<1 sec") is one variable of varying length once forms with and without it are seen.
* Templates that differ only in the length of a trailing run of variables (a list of block
  ids) merge into one "variadic" template whose last ``<*>`` takes one or more tokens.
* Template ids are content hashes of the (generalised) template text, so they are stable
  across runs and arrival orders; merged ids stay resolvable as aliases.
* State round-trips through plain JSON-able dicts and is bounded: the least recently seen
  templates are evicted when ``max_templates`` is exceeded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .masking import WILDCARD, Masker, collapse_spans

# Values that look like code (Capitalised, UPPER_CASE, camelCase, Dotted.Names_With_Caps)
# are event words or enum constants far more often than parameters, so they need more
# evidence. Lower-case words, dotted lower-case names (hosts, files) and values with digits
# or masks are ordinary parameters.
_CODE_WORD = re.compile(r"^[A-Z]|[a-z][A-Z]|[A-Za-z][._][A-Za-z]*[A-Z_]")
_GENERAL_HEAD = "\0slot"
_KEY_PREFIX = re.compile(r"^[^\w<]*[A-Za-z_][\w.\-]*[=:]+")
_STRIP = re.compile(r"^[^\w<]+|[^\w>]+$")
# Syntactic roles that make a token a value whatever its shape: it follows a "key:" or
# "key=" token, it carries its own key ("user=root", "ws=null"), or it is quoted or
# bracketed as a whole ("'safety'", "[mice.c]", "{a b}"; parentheses are left out: they
# mostly hold a remark such as "(usable)").
_KEYED_VALUE = re.compile(r"^[^\w]*[A-Za-z_][\w.\-]*(?:=|:(?!//))[^=:]")
_ENCLOSED = re.compile(r"""^[^\w"'\[{]*(?:"[^"]+"|'[^']+'|\[[^\]]+\]|\{[^}]+\})[^\w]*$""")
# Shapes that make a token an identifier rather than a word: a digit anywhere ("tty2",
# "node-D1", "wl0"), or parts joined by ".", "~", "$", "@", "#", "/" or "\\" (class and
# package names, file names, "pkg~arch~~1.0"), or lower/mixed-case snake_case ("my_var").
_IDENTIFIER = re.compile(
    r"\d|[A-Za-z0-9][.~$@#/\\][A-Za-z0-9]|[A-Za-z0-9]~|[a-z][A-Za-z0-9]*_[A-Za-z0-9]|_[a-z]"
)
# UPPER_SNAKE_CASE names (alone or ending a dotted path: "SCREEN_ON",
# "android.intent.SCREEN_ON") are constants by convention, so they keep needing
# ``min_distinct_code`` values; short upper-case words ("GET", "POST") in value positions
# are values.
_CONSTANT_NAME = re.compile(r"^(?:[\w$]+\.)*[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
# A CamelCase compound of three or more parts ("UpdateOrchestratorAgent") names a class,
# agent or process, like a dotted name does; one Capitalised word ("Started") does not.
_CAMEL = re.compile(r"[a-z][A-Z][a-z]+[A-Z]")
_NULLS = frozenset({"null", "NULL", "Null", "None", "nil", "NIL", "undefined"})
_MISSING = frozenset({"-", "--", "N/A", "n/a"})
# Sibling groups that never merge (too few constants) are cleared at this size, so memory
# stays bounded on streams that keep producing new siblings.
_MAX_GROUP = 256
STATE_VERSION = 1


@dataclass
class MinerConfig:
    """One configuration for every log source (no per-source knobs)."""

    min_distinct: int = 3
    min_distinct_code: int = 8
    # Positions whose role or shape marks them as values (see ``looks_variable``) become
    # slots on this many distinct values: in 2,000 lines many variables show only two.
    min_distinct_role: int = 2
    min_constant_share: float = 0.34
    max_templates: int = 20_000
    max_leaves: int = 200_000
    max_buckets: int = 500_000
    max_indexed_tokens: int = 64  # longer messages never grow word slots (index is O(n^2))


@dataclass
class Template:
    """A mined template: tokens (``<*>`` marks parameter slots) and usage counters."""

    id: str
    tokens: list[str]
    general: list[bool]
    prefix: list[str]
    suffix: list[str]
    count: int = 0
    first_seen: int = 0
    last_seen: int = 0
    variadic: bool = False  # the last <*> stands for one or more variable tokens
    spanned: bool = False  # a <*> may stand for a value with its unit ("512 bytes (0.5 KB)")

    @property
    def text(self) -> str:
        """The template as text; generalised slots keep their shared punctuation."""
        out = []
        for tok, gen, pre, suf in zip(
            self.tokens, self.general, self.prefix, self.suffix, strict=True
        ):
            out.append(f"{pre}{WILDCARD}{suf}" if gen else tok)
        return " ".join(out)

    def matches(self, key: tuple[str, ...]) -> bool:
        """True when ``key`` (masked tokens) fits this template."""
        n = len(self.tokens)
        if self.variadic:
            if len(key) < n or any(k != WILDCARD for k in key[n - 1 :]):
                return False
            key = key[:n]
        elif len(key) != n:
            return False
        for tok, gen, k in zip(self.tokens, self.general, key, strict=True):
            if not gen and tok != k:
                return False
        return True

    def specificity(self) -> int:
        return len(self.general) - sum(self.general)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tokens": self.tokens,
            "general": self.general,
            "prefix": self.prefix,
            "suffix": self.suffix,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "variadic": self.variadic,
            "spanned": self.spanned,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Template:
        return cls(
            id=d["id"],
            tokens=list(d["tokens"]),
            general=[bool(g) for g in d["general"]],
            prefix=list(d["prefix"]),
            suffix=list(d["suffix"]),
            count=int(d["count"]),
            first_seen=int(d["first_seen"]),
            last_seen=int(d["last_seen"]),
            variadic=bool(d.get("variadic", False)),
            spanned=bool(d.get("spanned", False)),
        )


def _trunk(key: tuple[str, ...]) -> tuple[str, ...] | None:
    """``key`` with its trailing run of bare ``<*>`` cut to one; None without such a run."""
    j = len(key)
    while j > 0 and key[j - 1] == WILDCARD:
        j -= 1
    if j == len(key) or j == 0:
        return None
    return (*key[:j], WILDCARD)


def _is_key(token: str | None) -> bool:
    """True for a "key:"/"key=" token (not a bare ":" or an already masked "x=<*>:")."""
    return (
        token is not None
        and len(token) > 1
        and token[-1] in "=:"
        and (token[-2].isalnum() or token[-2] in "_])")
        and WILDCARD not in token
    )


def _after_key(token: str, previous: str | None, following: str | None) -> bool:
    """True when ``token`` is the value of the key before it.

    After "key=" always. After "key:" only when the value is delimited: last in the
    message, followed by punctuation, another key or a bracket. "ciod: failed to read"
    is a component label followed by a sentence, not a key and its value.
    """
    if previous is None or not _is_key(previous):
        return False
    if previous[-1] == "=" or following is None or token[-1] in ",;)]}":
        return True
    return _is_key(following) or following[0] in "([{" or _KEYED_VALUE.match(following) is not None


# Nouns that introduce a name ("for user cyrus by", "on host alpha,", "client Cron from"):
# the word after one of them is a value when a preposition, punctuation or the end of the
# message follows it and it is not a verb form ("job started by") or a function word.
_NAMING_NOUNS = frozenset(
    {
        *("user", "users", "account", "owner", "peer", "tenant", "project", "group"),
        *("host", "hostname", "node", "client", "server", "device", "interface", "domain"),
        *("process", "program", "daemon", "service", "job", "task", "container", "session"),
        *("queue", "topic", "table", "database", "volume"),
    }
)
_NOT_NAMES = frozenset({"not", "no", "now", "will", "can", "cannot", "must", "may", "does"})
_AFTER_NAME = frozenset(
    {
        *("by", "from", "to", "on", "at", "in", "for", "with", "via", "as", "of"),
        *("and", "or", "is", "was", "has", "had"),
    }
)


def _after_naming_noun(token: str, previous: str | None, following: str | None) -> bool:
    """True for the name in "<noun> <name> <preposition | punctuation | end>"."""
    if previous is None or previous.lower() not in _NAMING_NOUNS:
        return False
    word = token.rstrip(",;:)]}").lower()
    if word.endswith(("ed", "ing")) or word in _AFTER_NAME or word in _NOT_NAMES:
        return False  # "job started by", "task running on", "user is", "host not"
    if following is None or token[-1] in ",;:)]}":
        return True
    return following in _AFTER_NAME or following[0] in "([{"


# What a token's own text says about it being a value (``value_kind``).
NEVER, BY_ROLE, ALWAYS, CODE_NAME = 0, 1, 2, 3
_CODE_JOINERS = frozenset({"-", "=", ":", "/", "|"})


def _names_a_code(tokens: list[str], i: int) -> bool:
    """True for an UPPER_SNAKE name that spells out the masked code just before it
    ("[HRESULT = 0x800f0805 - E_INVALID_PACKAGE]", "error 2 (ENOENT_FILE)"): it varies
    with the code, so it is a value, not an event word."""
    if i >= 2 and tokens[i - 1] in _CODE_JOINERS:
        return WILDCARD in tokens[i - 2]
    return i >= 1 and tokens[i][:1] in "([" and WILDCARD in tokens[i - 1]


def value_kind(token: str) -> int:
    """ALWAYS when a token's text marks it as a value, BY_ROLE when it is one only after a
    key, CODE_NAME for an UPPER_SNAKE constant (a value only when it names a code), NEVER
    for a key or a label."""
    if WILDCARD in token:
        return ALWAYS
    if token.isalpha():  # a plain word: only its role or being a null can make it a value
        if _CAMEL.search(token):
            return ALWAYS
        return ALWAYS if token in _NULLS else BY_ROLE
    core = _STRIP.sub("", token)
    if not core or token[-1] == "=":  # a key (with an empty value), not a value
        return NEVER
    key = _KEY_PREFIX.match(token)
    value = _STRIP.sub("", token[key.end() :]) if key else core
    if _CONSTANT_NAME.match(value) and "_" in value:
        return CODE_NAME
    if core in _NULLS or _KEYED_VALUE.match(token) or _ENCLOSED.match(token):
        return ALWAYS
    if _IDENTIFIER.search(core):
        return ALWAYS
    return NEVER if token[-1] == ":" else BY_ROLE  # "nvme:" labels what follows


def value_at(tokens: Sequence[str], i: int, kind: int | None = None) -> bool:
    """True when the constant ``tokens[i]`` sits where values go or is shaped like one.

    Such positions need less evidence to become a slot (``min_distinct_role`` values). An
    already masked token counts too ("user=<*>" next to "user=root"); a key with an empty
    value ("rhost=") does not. ``kind`` is ``value_kind(tokens[i])`` when already known.
    """
    token = tokens[i]
    if kind is None:
        kind = value_kind(token)
    if kind == ALWAYS:
        return True
    if kind == CODE_NAME:
        return _names_a_code(tokens, i)
    if kind == NEVER:
        return False
    previous = tokens[i - 1] if i > 0 else None
    following = tokens[i + 1] if i + 1 < len(tokens) else None
    return _after_key(token, previous, following) or _after_naming_noun(token, previous, following)


def looks_variable(token: str, previous: str | None = None, following: str | None = None) -> bool:
    """``value_at`` for one token between its neighbours."""
    tokens = [t for t in (previous, token, following) if t is not None]
    return value_at(tokens, 0 if previous is None else 1)


class Match(NamedTuple):
    """Result of adding one line: its template id and the raw tokens it was cut into."""

    template_id: str
    tokens: list[str]
    is_new: bool


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def _common_suffix(a: str, b: str) -> str:
    return _common_prefix(a[::-1], b[::-1])[::-1]


def _edge_prefix(s: str) -> str:
    """Keep a shared prefix only if it is a ``key=``/``key:`` or pure punctuation.

    "user=root"/"user=guest" share "user="; "(host)"/"()" share "("; "chrome"/"chromium"
    share nothing, so no word is ever split.
    """
    key = _KEY_PREFIX.match(s)
    n = key.end() if key else 0
    while n < len(s) and not s[n].isalnum():
        n += 1
    return s[:n]


def _edge_suffix(s: str) -> str:
    """Keep only trailing punctuation: "chrome.exe"/"svchost.exe" share no suffix."""
    n = len(s)
    while n > 0 and not s[n - 1].isalnum():
        n -= 1
    return s[n:]


class TemplateMiner:
    """Online template miner; feed it messages with ``add`` and read ``templates``."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self.masker = Masker()
        self.templates: dict[str, Template] = {}
        self.aliases: dict[str, str] = {}
        self._leaves: dict[tuple[str, ...], str] = {}
        # (length, first token or _GENERAL_HEAD) -> template ids: candidates for a new leaf
        self._by_head: dict[tuple[int, str], set[str]] = {}
        # (length, position, other tokens) -> value at position -> template id
        self._buckets: dict[tuple[int, int, tuple[str, ...]], dict[str, str]] = {}
        # a key with its trailing run of <*> cut to one -> {key length: template id}
        self._trunks: dict[tuple[str, ...], dict[int, str]] = {}
        self._variadic: dict[tuple[str, ...], str] = {}
        # constant skeleton (value-like positions blanked) -> their values -> template id
        self._skeletons: dict[tuple[Any, ...], dict[tuple[str, ...], str]] = {}
        # key with value+unit runs folded -> raw keys seen -> template id
        self._spans: dict[tuple[str, ...], dict[tuple[str, ...], str]] = {}
        self._kinds: dict[str, int] = {}
        self._tick = 0

    # ------------------------------------------------------------------ mining
    def add(self, content: str) -> Match:
        """Mine one message and return its (current) template id and raw tokens."""
        tokens, masked = self.masker.mask_line(content)
        tid, is_new = self._learn(tuple(masked))
        return Match(tid, tokens, is_new)

    def add_many(self, contents: Iterable[str]) -> list[str]:
        """Mine messages in order; return the template id each got when it arrived."""
        mask_key = self.masker.mask_key
        learn = self._learn
        return [learn(mask_key(c))[0] for c in contents]

    def _learn(self, key: tuple[str, ...]) -> tuple[str, bool]:
        self._tick += 1
        tid = self._leaves.get(key)
        if tid is not None:
            if tid in self.aliases:
                tid = self.resolve(tid)
            tpl = self.templates.get(tid)
            if tpl is not None:
                tpl.count += 1
                tpl.last_seen = self._tick
                return tid, False
        tid, is_new = self._place(key)
        if len(self._leaves) >= self.config.max_leaves:
            self._leaves.clear()
        self._leaves[key] = tid
        tpl = self.templates[tid]
        tpl.count += 1
        tpl.last_seen = self._tick
        return tid, is_new

    def resolve(self, tid: str) -> str:
        """Follow merge aliases to the live template id (path-compressed)."""
        root = tid
        while root in self.aliases:
            root = self.aliases[root]
        while tid != root:
            nxt = self.aliases[tid]
            self.aliases[tid] = root
            tid = nxt
        return root

    def template_of(self, tid: str) -> Template | None:
        """The live template for an id, following merges."""
        return self.templates.get(self.resolve(tid))

    def match(self, content: str) -> Template | None:
        """Find the template of a message without learning from it."""
        key = tuple(self.masker.mask_line(content)[1])
        tid = self._leaves.get(key)
        if tid is not None:
            tpl = self.templates.get(self.resolve(tid))
            if tpl is not None:
                return tpl
        return self._find(key)

    @staticmethod
    def _head(tpl: Template) -> tuple[int, str]:
        n = len(tpl.tokens)
        if n == 0:
            return (0, "")
        return (n, _GENERAL_HEAD if tpl.general[0] else tpl.tokens[0])

    def _index(self, tpl: Template) -> None:
        self._by_head.setdefault(self._head(tpl), set()).add(tpl.id)

    def _unindex(self, tpl: Template, head: tuple[int, str] | None = None) -> None:
        ids = self._by_head.get(head or self._head(tpl))
        if ids is not None:
            ids.discard(tpl.id)

    def _fold_into(self, root: Template, other: Template) -> None:
        """Fold ``other``'s counts and times into ``root``; its id becomes an alias."""
        root.count += other.count
        root.first_seen = min(root.first_seen, other.first_seen)
        root.last_seen = max(root.last_seen, other.last_seen)
        self.aliases[other.id] = root.id
        del self.templates[other.id]
        self._unindex(other)

    def _rekey(self, root: Template, head: tuple[int, str]) -> str:
        """Re-key by the generalised text: ids then depend on the pattern, not on which
        value happened to arrive first. The old id stays resolvable as an alias."""
        new_id = self._fresh_id(root.text)
        self.aliases[root.id] = new_id
        del self.templates[root.id]
        self._unindex(root, head)
        root.id = new_id
        self.templates[new_id] = root
        self._index(root)
        return new_id

    def _best_fit(self, key: tuple[str, ...]) -> Template | None:
        """The most specific template a new masked key fits (same length and first token)."""
        n = len(key)
        best: Template | None = None
        for head in ((n, key[0]), (n, _GENERAL_HEAD)) if n else ((0, ""),):
            for tid in self._by_head.get(head, ()):
                tpl = self.templates[tid]
                if tpl.matches(key) and (best is None or tpl.specificity() > best.specificity()):
                    best = tpl
        return best

    def _find(self, key: tuple[str, ...]) -> Template | None:
        best = self._best_fit(key)
        if best is None:
            trunk = _trunk(key)
            if trunk is not None and trunk in self._variadic:
                tpl = self.templates.get(self.resolve(self._variadic[trunk]))
                if tpl is not None and tpl.matches(key):
                    best = tpl
        if best is None and WILDCARD in key:
            folded = collapse_spans(key)
            if folded is not None:
                tpl = self._best_fit(folded[0])
                if tpl is not None and tpl.spanned:
                    best = tpl
        return best

    def _note_span(self, key: tuple[str, ...], tid: str) -> str:
        """Merge templates whose keys agree once value + unit runs are folded.

        "<*> bytes sent", "<*> bytes (<*> KB) sent" and "<*> sent" are one template: the
        quantity is one variable written with a varying number of tokens.
        """
        folded = collapse_spans(key)
        span_key = folded[0] if folded is not None else key
        if len(self._spans) >= self.config.max_buckets:
            self._spans.clear()
        seen = self._spans.setdefault(span_key, {})
        if len(seen) >= _MAX_GROUP:
            seen.clear()
        seen[key] = tid
        live = {self.resolve(t) for t in seen.values()}
        group = [self.templates[t] for t in live if t in self.templates]
        if len(group) < 2 or any(t.variadic for t in group):
            return tid
        group.sort(key=lambda t: (-t.count, t.first_seen, t.id))
        root = group[0]
        head = self._head(root)
        n = len(span_key)
        general = [False] * n
        prefix, suffix = [""] * n, [""] * n
        for tpl in group:
            mapped = collapse_spans(tuple(tpl.tokens))
            starts = mapped[1] if mapped is not None else list(range(n))
            if len(starts) != n:
                return tid
            for j, start in enumerate(starts):
                run = (starts[j + 1] if j + 1 < n else len(tpl.tokens)) - start
                if run == 1 and tpl.general[start] and not general[j]:
                    general[j] = True
                    prefix[j], suffix[j] = tpl.prefix[start], tpl.suffix[start]
        root.tokens, root.general = list(span_key), general
        root.prefix, root.suffix = prefix, suffix
        root.spanned = True
        for other in group[1:]:
            self._fold_into(root, other)
        new_id = self._rekey(root, head)
        seen.clear()
        seen[span_key] = new_id
        return self._register(new_id)

    def _place(self, key: tuple[str, ...]) -> tuple[str, bool]:
        best = self._find(key)
        if best is not None:
            self._absorb(best, key)
            return best.id, False
        tpl = self._new_template(key)
        merged = self._register(tpl.id)
        trunk = _trunk(key)
        if trunk is not None:
            merged = self._note_trunk(trunk, len(key), merged)
        if WILDCARD in key and merged in self.templates:
            merged = self._note_span(key, merged)
        return merged, merged == tpl.id

    def _note_trunk(self, trunk: tuple[str, ...], length: int, tid: str) -> str:
        """Merge templates that differ only in how many variables end them (a list)."""
        if len(self._trunks) >= self.config.max_buckets:
            self._trunks.clear()
        seen = self._trunks.setdefault(trunk, {})
        seen[length] = tid
        live = {self.resolve(t) for t in seen.values()}
        group = [self.templates[t] for t in live if t in self.templates]
        if len(group) < 2:
            return tid
        group.sort(key=lambda t: (-t.count, t.first_seen, t.id))
        root = group[0]
        head = self._head(root)
        n = len(trunk)
        root.tokens = list(trunk)
        root.general = [*root.general[: n - 1], False]
        root.prefix = [*root.prefix[: n - 1], ""]
        root.suffix = [*root.suffix[: n - 1], ""]
        root.variadic = True
        for other in group[1:]:
            for i in range(n - 1):
                if other.general[i] and not root.general[i]:
                    root.general[i] = True
                    root.prefix[i], root.suffix[i] = other.prefix[i], other.suffix[i]
            self._fold_into(root, other)
        new_id = self._rekey(root, head)
        self._variadic[trunk] = new_id
        seen.clear()
        seen[n] = new_id
        return self.resolve(tid)

    def _fresh_id(self, text: str) -> str:
        """Content-derived id, so the same pattern gets the same id in every run."""
        base = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
        tid, n = base, 1
        while tid in self.templates or tid in self.aliases:
            tid = f"{base}-{n}"
            n += 1
        return tid

    def _new_template(self, key: tuple[str, ...]) -> Template:
        tid = self._fresh_id(" ".join(key))
        tpl = Template(
            id=tid,
            tokens=list(key),
            general=[False] * len(key),
            prefix=[""] * len(key),
            suffix=[""] * len(key),
            first_seen=self._tick,
            last_seen=self._tick,
        )
        self.templates[tid] = tpl
        self._index(tpl)
        if len(self.templates) > self.config.max_templates:
            self._evict()
        return tpl

    @staticmethod
    def _absorb(tpl: Template, key: tuple[str, ...]) -> None:
        """Widen the shared punctuation of generalised slots with a new member."""
        for i, gen in enumerate(tpl.general):
            if gen:
                tpl.prefix[i] = _edge_prefix(_common_prefix(tpl.prefix[i], key[i]))
                tpl.suffix[i] = _edge_suffix(_common_suffix(tpl.suffix[i], key[i]))

    def _bucket_keys(self, tpl: Template) -> list[tuple[tuple[int, int, tuple[str, ...]], str]]:
        norm = [WILDCARD if g else t for t, g in zip(tpl.tokens, tpl.general, strict=True)]
        n = len(norm)
        out: list[tuple[tuple[int, int, tuple[str, ...]], str]] = []
        if n > self.config.max_indexed_tokens or tpl.variadic:
            return out
        for i in range(n):
            if tpl.general[i] or norm[i] == WILDCARD:
                continue
            out.append(((n, i, (*norm[:i], *norm[i + 1 :])), norm[i]))
        return out

    def _register(self, tid: str) -> str:
        """Index a template by each of its constant positions; merge when a slot emerges."""
        work = [tid]
        result = tid
        while work:
            cur = self.resolve(work.pop())
            tpl = self.templates.get(cur)
            if tpl is None:
                continue
            for bkey, value in self._bucket_keys(tpl):
                bucket = self._buckets.get(bkey)
                if bucket is None:
                    if len(self._buckets) >= self.config.max_buckets:
                        self._buckets.clear()
                    bucket = self._buckets[bkey] = {}
                bucket[value] = cur
                if self._is_slot(bucket, bkey[1]):
                    root = self._merge(bkey[1], bucket)
                    bucket.clear()
                    bucket["\0merged"] = root
                    work.append(root)
                    if self.resolve(result) == root:
                        result = root
                    break
            else:
                root = self._check_skeleton(tpl)
                if root is not None:
                    work.append(root)
        return self.resolve(result)

    def _value_kind(self, token: str) -> int:
        """``value_kind``, cached per token (templates share most of their tokens)."""
        kind = self._kinds.get(token)
        if kind is None:
            if len(self._kinds) >= self.config.max_buckets:
                self._kinds.clear()
            kind = self._kinds[token] = value_kind(token)
        return kind

    def _skeleton(self, tpl: Template) -> tuple[tuple[Any, ...], tuple[str, ...], list[int]] | None:
        """The template with its value-like constant positions blanked, and their values.

        Siblings with one skeleton differ only where values go, so they are one template.
        """
        n = len(tpl.tokens)
        if n > self.config.max_indexed_tokens or tpl.variadic or n < 2:
            return None
        skel: list[Any] = []
        values: list[str] = []
        slots: list[int] = []
        # Generalised slots read as "<*>": they are neither keys nor naming nouns.
        tokens = [WILDCARD if g else t for t, g in zip(tpl.tokens, tpl.general, strict=True)]
        for i, (tok, gen) in enumerate(zip(tokens, tpl.general, strict=True)):
            if gen:
                skel.append(WILDCARD)
            elif value_at(tokens, i, self._value_kind(tok)):
                key = _KEY_PREFIX.match(tok)  # "user=root" and "user=guest" share "user="
                keyed = key is not None and key.end() < len(tok)  # "nvme0:" is not a key
                skel.append(("key", key.group(0)) if keyed else ("value",))
                values.append(tok)
                slots.append(i)
            else:
                skel.append(tok)
        if not values:
            return None
        return (n, *skel), tuple(values), slots

    def _check_skeleton(self, tpl: Template) -> str | None:
        """Merge ``tpl`` with its skeleton siblings once they show enough distinct values."""
        found = self._skeleton(tpl)
        if found is None:
            return None
        skel, values, slots = found
        group = self._skeletons.get(skel)
        if group is None:
            if len(self._skeletons) >= self.config.max_buckets:
                self._skeletons.clear()
            group = self._skeletons[skel] = {}
        if len(group) >= _MAX_GROUP:
            group.clear()
        group[values] = tpl.id
        live_ids = {self.resolve(t) for t in group.values()}
        live = [self.templates[t] for t in live_ids if t in self.templates]
        if len(live) < max(2, self.config.min_distinct_role):
            return None
        varying = [i for i in slots if len({t.tokens[i] for t in live}) > 1]
        n = len(tpl.tokens)
        constants = sum(
            1
            for i, (t, g) in enumerate(zip(tpl.tokens, tpl.general, strict=True))
            if i not in varying and not g and t != WILDCARD
        )
        if not varying or constants < max(1, self.config.min_constant_share * n):
            return None
        root = self._merge_positions(varying, live)
        group.clear()
        return root

    def _is_slot(self, bucket: dict[str, str], pos: int) -> bool:
        """Decide whether the values seen at ``pos`` make it a parameter slot."""
        if len(bucket) < 2 or "\0merged" in bucket:
            return False
        live = {self.resolve(t) for t in bucket.values()}
        live = {t for t in live if t in self.templates and not self.templates[t].variadic}
        if len(live) < 2:
            return False
        tpl = self.templates[next(iter(live))]
        constants = sum(
            1
            for i, (t, g) in enumerate(zip(tpl.tokens, tpl.general, strict=True))
            if i != pos and not g and t != WILDCARD
        )
        if constants < max(1, self.config.min_constant_share * len(tpl.tokens)):
            return False
        values = list(bucket)
        # "()" next to "(<*>)": the same shape with an empty value, so it is a slot.
        bare = {v.replace(WILDCARD, "") for v in values if WILDCARD in v}
        if any(v in bare for v in values if WILDCARD not in v):
            return True
        # "ratio=-" or "(N/A)" next to "ratio=<*>" or "(<*>)": a missing value spelled out.
        masked = [v for v in values if WILDCARD in v]
        missing = {m.replace(WILDCARD, gap) for m in masked for gap in _MISSING}
        if any(v in missing for v in values if WILDCARD not in v):
            return True
        # "null" next to anything else: an absent object and a present one.
        if any(_STRIP.sub("", v).rsplit("=", 1)[-1] in _NULLS for v in values):
            return True
        if len(live) < self.config.min_distinct:
            return False
        code = sum(1 for v in values if _CODE_WORD.search(_STRIP.sub("", v)))
        if code * 2 >= len(values):
            return len(live) >= self.config.min_distinct_code
        return True

    def _merge(self, pos: int, bucket: dict[str, str]) -> str:
        """Merge the templates of a bucket into the most used one, with a slot at ``pos``."""
        live = [
            self.templates[t]
            for t in {self.resolve(t) for t in bucket.values()}
            if t in self.templates
        ]
        return self._merge_positions([pos], live)

    def _merge_positions(self, positions: list[int], live: list[Template]) -> str:
        """Merge same-length templates into the most used one, with slots at ``positions``."""
        live.sort(key=lambda t: (-t.count, t.first_seen, t.id))
        root = live[0]
        root_head = self._head(root)  # before the slot changes it
        for pos in positions:
            values = [t.tokens[pos] for t in live]
            pre, suf = values[0], values[0]
            for v in values[1:]:
                pre = _common_prefix(pre, v)
                suf = _common_prefix(suf[::-1], v[::-1])[::-1]
            root.general[pos] = True
            root.prefix[pos] = _edge_prefix(pre)
            root.suffix[pos] = _edge_suffix(suf)
        for other in live[1:]:
            for i, gen in enumerate(other.general):
                if gen and not root.general[i]:
                    root.general[i] = True
                    root.prefix[i], root.suffix[i] = other.prefix[i], other.suffix[i]
                elif gen:
                    root.prefix[i] = _edge_prefix(_common_prefix(root.prefix[i], other.prefix[i]))
                    root.suffix[i] = _edge_suffix(
                        _common_prefix(root.suffix[i][::-1], other.suffix[i][::-1])[::-1]
                    )
            self._fold_into(root, other)
        self._rekey(root, root_head)
        return root.id

    def _evict(self) -> None:
        """Drop the least recently seen tenth of templates (LRU in batches)."""
        keep = int(self.config.max_templates * 0.9)
        order = sorted(self.templates.values(), key=lambda t: t.last_seen)
        for tpl in order[: len(order) - keep]:
            del self.templates[tpl.id]
            self._unindex(tpl)
        live = set(self.templates)
        self.aliases = {a: r for a, r in self.aliases.items() if self.resolve(r) in live}
        self._leaves = {k: v for k, v in self._leaves.items() if self.resolve(v) in live}
        self._variadic = {k: v for k, v in self._variadic.items() if self.resolve(v) in live}
        self._trunks.clear()
        self._spans.clear()
        # Buckets keep their entries: evicted ids no longer resolve to a live template and
        # are ignored by ``_is_slot``; the bucket index has its own size bound.

    # ------------------------------------------------------------- persistence
    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state: templates and aliases (indexes are rebuilt on load)."""
        return {
            "version": STATE_VERSION,
            "tick": self._tick,
            "config": self.config.__dict__.copy(),
            "templates": [t.to_dict() for t in self.templates.values()],
            "aliases": dict(self.aliases),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TemplateMiner:
        """Rebuild a miner from ``to_state`` output."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported miner state version {state.get('version')!r}")
        known = set(MinerConfig.__dataclass_fields__)
        config = {k: v for k, v in state.get("config", {}).items() if k in known}
        miner = cls(MinerConfig(**config))
        miner._tick = int(state.get("tick", 0))
        for d in state["templates"]:
            tpl = Template.from_dict(d)
            miner.templates[tpl.id] = tpl
            miner._index(tpl)
            if tpl.variadic:
                miner._variadic[tuple(tpl.tokens)] = tpl.id
        miner.aliases = dict(state.get("aliases", {}))
        for tid in list(miner.templates):
            miner._register(tid)
        return miner
