"""The PromQL abstract syntax tree.

Plain frozen dataclasses so the parser's output is easy to assert on in tests and the
evaluator can dispatch on node type. ``type`` mirrors Prometheus's value types
("scalar", "vector", "matrix", "string") and is checked at parse time, as Prometheus does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.tsdb import Matcher

SCALAR = "scalar"
VECTOR = "vector"
MATRIX = "matrix"
STRING = "string"

# Value-type names as Prometheus spells them in error messages.
TYPE_NAMES = {SCALAR: "scalar", VECTOR: "instant vector", MATRIX: "range vector", STRING: "string"}

COMPARISON_OPS = frozenset({"==", "!=", ">", "<", ">=", "<="})
ARITHMETIC_OPS = frozenset({"+", "-", "*", "/", "%", "^"})
SET_OPS = frozenset({"and", "or", "unless"})


@dataclass(frozen=True)
class NumberLiteral:
    value: float
    type: str = SCALAR


@dataclass(frozen=True)
class StringLiteral:
    value: str
    type: str = STRING


@dataclass(frozen=True)
class VectorSelector:
    """``name{matchers} offset d``; ``name`` is also present as a ``__name__`` matcher."""

    name: str | None
    matchers: tuple[Matcher, ...]
    offset: int = 0  # milliseconds
    at: int | str | None = None  # ``@``: milliseconds, "start" or "end" (of the query)
    type: str = VECTOR


@dataclass(frozen=True)
class MatrixSelector:
    selector: VectorSelector
    range: int  # milliseconds
    type: str = MATRIX


@dataclass(frozen=True)
class Subquery:
    """``expr[range:step] offset d``: ``expr`` evaluated every ``step`` (0 = the engine's
    default), at times aligned to multiples of the step, as a range vector."""

    expr: Node
    range: int  # milliseconds
    step: int  # milliseconds
    offset: int = 0
    at: int | str | None = None
    type: str = MATRIX


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    type: str = VECTOR


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: Node
    param: Node | None = None
    grouping: tuple[str, ...] = ()
    without: bool = False
    type: str = VECTOR


@dataclass(frozen=True)
class VectorMatching:
    """How two vectors are joined: ``card`` is one-to-one, many-to-one, one-to-many or
    many-to-many (set operators); ``on`` selects between ``on(labels)`` and
    ``ignoring(labels)``; ``include`` holds the ``group_left/right(...)`` labels."""

    card: str = "one-to-one"
    on: bool = False
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Node
    rhs: Node
    return_bool: bool = False
    matching: VectorMatching | None = None
    type: str = VECTOR


@dataclass(frozen=True)
class Unary:
    op: str
    expr: Node
    type: str = VECTOR


@dataclass(frozen=True)
class Paren:
    expr: Node
    type: str = field(default=VECTOR)


Node = (
    NumberLiteral
    | StringLiteral
    | VectorSelector
    | MatrixSelector
    | Subquery
    | Call
    | Aggregate
    | Binary
    | Unary
    | Paren
)
