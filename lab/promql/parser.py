"""Recursive-descent (precedence-climbing) parser from PromQL text to ``nodes``.

Type checks happen here, as in Prometheus, so a query with the wrong argument types is a
400 ``bad_data`` before any data is read. Constructs outside the lab's subset (subqueries,
``@``, unsupported functions and aggregations) are rejected with a clear parse error
instead of being evaluated wrongly.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from lab.promql.errors import ParseError
from lab.promql.lexer import Token, parse_duration, tokenize
from lab.promql.nodes import (
    COMPARISON_OPS,
    MATRIX,
    SCALAR,
    SET_OPS,
    STRING,
    TYPE_NAMES,
    VECTOR,
    Aggregate,
    Binary,
    Call,
    MatrixSelector,
    Node,
    NumberLiteral,
    Paren,
    StringLiteral,
    Subquery,
    Unary,
    VectorMatching,
    VectorSelector,
)
from lab.tsdb import Matcher

# name -> (argument types, how many trailing arguments are optional, return type)
FUNCTION_SIGNATURES: dict[str, tuple[tuple[str, ...], int, str]] = {
    **{
        name: ((MATRIX,), 0, VECTOR)
        for name in (
            "rate", "irate", "increase", "delta", "idelta",
            "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
            "count_over_time", "last_over_time",
        )
    },
    **{
        name: ((VECTOR,), 0, VECTOR)
        for name in ("abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt")
    },
    "histogram_quantile": ((SCALAR, VECTOR), 0, VECTOR),
    "quantile_over_time": ((SCALAR, MATRIX), 0, VECTOR),
    "stddev_over_time": ((MATRIX,), 0, VECTOR),
    "stdvar_over_time": ((MATRIX,), 0, VECTOR),
    "clamp_min": ((VECTOR, SCALAR), 0, VECTOR),
    "clamp_max": ((VECTOR, SCALAR), 0, VECTOR),
    "clamp": ((VECTOR, SCALAR, SCALAR), 0, VECTOR),
    "round": ((VECTOR, SCALAR), 1, VECTOR),
    "time": ((), 0, SCALAR),
    "vector": ((SCALAR,), 0, VECTOR),
    "scalar": ((VECTOR,), 0, SCALAR),
    "absent": ((VECTOR,), 0, VECTOR),
    "timestamp": ((VECTOR,), 0, VECTOR),
    "changes": ((MATRIX,), 0, VECTOR),
    "resets": ((MATRIX,), 0, VECTOR),
    "deriv": ((MATRIX,), 0, VECTOR),
    "predict_linear": ((MATRIX, SCALAR), 0, VECTOR),
    "label_replace": ((VECTOR, STRING, STRING, STRING, STRING), 0, VECTOR),
    "sort": ((VECTOR,), 0, VECTOR),
    "sort_desc": ((VECTOR,), 0, VECTOR),
}  # fmt: skip

# Real PromQL names the lab does not evaluate: a clear "not supported" beats "unknown".
UNSUPPORTED_FUNCTIONS = frozenset(
    {
        "absent_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "holt_winters",
        "hour",
        "label_join",
        "minute",
        "month",
        "sgn",
        "year",
        "present_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "cos",
        "cosh",
        "deg",
        "pi",
        "rad",
        "sin",
        "sinh",
        "tan",
        "tanh",
    }
)

AGGREGATORS = frozenset(
    {"sum", "avg", "min", "max", "count", "topk", "bottomk", "stddev", "stdvar", "quantile"}
    | {"group"}
)
UNSUPPORTED_AGGREGATORS = frozenset({"count_values"})

_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    **dict.fromkeys(COMPARISON_OPS, 3),
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "^": 6,
}
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse(text: str) -> Node:
    """Parse a PromQL expression; raises ``ParseError`` with Prometheus-style messages."""
    return _Parser(text).parse()


def parse_metric_selector(text: str) -> list[Matcher]:
    """Parse a ``match[]`` series selector (``foo{bar="x"}``) into matchers."""
    node = parse(text)
    if not isinstance(node, VectorSelector):
        raise ParseError("expected a vector selector", 0, text)
    return list(node.matchers)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers -------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _is(self, kind: str, value: str | None = None) -> bool:
        tok = self.tok
        if tok.kind != kind:
            return False
        return value is None or tok.value.lower() == value

    def _error(self, message: str, tok: Token | None = None) -> ParseError:
        return ParseError(message, (tok or self.tok).pos, self.text)

    def _unexpected(self, context: str = "") -> ParseError:
        tok = self.tok
        if tok.kind == "EOF":
            opened = _open_brackets(self.tokens)
            if opened == "{":
                return self._error("unexpected end of input inside braces")
            if opened == "(":
                return self._error("unclosed left parenthesis")
        what = "end of input" if tok.kind == "EOF" else _describe(tok)
        suffix = f" in {context}" if context else ""
        return self._error(f"unexpected {what}{suffix}")

    def _expect(self, kind: str, value: str | None = None, context: str = "") -> Token:
        if not self._is(kind, value):
            raise self._unexpected(context)
        return self._next()

    # -- grammar -------------------------------------------------------------------
    def parse(self) -> Node:
        if self.tok.kind == "EOF":
            raise self._error("no expression found in input")
        node = self._expr(0)
        if self.tok.kind != "EOF":
            raise self._unexpected()
        return node

    def _binary_op(self) -> str | None:
        tok = self.tok
        if tok.kind == "OP" and tok.value in _PRECEDENCE:
            return tok.value
        if tok.kind == "KEYWORD" and tok.value.lower() in _PRECEDENCE:
            return tok.value.lower()
        if tok.kind == "KEYWORD" and tok.value.lower() == "atan2":
            raise self._error('binary operator "atan2" is not supported by the lab')
        return None

    def _expr(self, min_prec: int) -> Node:
        start = self.tok
        lhs = self._unary()
        while True:
            op = self._binary_op()
            if op is None or _PRECEDENCE[op] < min_prec:
                return lhs
            op_tok = self._next()
            return_bool, matching = self._bin_modifiers(op, start, op_tok)
            next_prec = _PRECEDENCE[op] if op == "^" else _PRECEDENCE[op] + 1
            rhs = self._expr(next_prec)
            lhs = self._check_binary(op, lhs, rhs, return_bool, matching, op_tok, start)

    def _bin_modifiers(
        self, op: str, start: Token, op_tok: Token
    ) -> tuple[bool, VectorMatching | None]:
        return_bool = False
        if self._is("KEYWORD", "bool"):
            self._next()
            return_bool = True
        matching: VectorMatching | None = None
        if self._is("KEYWORD", "on") or self._is("KEYWORD", "ignoring"):
            on = self._next().value.lower() == "on"
            matching = VectorMatching(on=on, labels=self._label_list())
        if self._is("KEYWORD", "group_left") or self._is("KEYWORD", "group_right"):
            side = self._next().value.lower()
            if matching is None:
                raise self._unexpected()
            include = self._label_list() if self._is("OP", "(") else ()
            card = "many-to-one" if side == "group_left" else "one-to-many"
            if op in SET_OPS:
                raise self._error(f'no grouping allowed for "{op}" operation', start)
            for name in include:
                if matching.on and name in matching.labels:
                    raise self._error(
                        f'label "{name}" must not occur in ON and GROUP clause at once', op_tok
                    )
            matching = replace(matching, card=card, include=include)
        return return_bool, matching

    def _check_binary(
        self,
        op: str,
        lhs: Node,
        rhs: Node,
        return_bool: bool,
        matching: VectorMatching | None,
        op_tok: Token,
        start: Token,
    ) -> Node:
        for side in (lhs, rhs):
            if side.type not in (SCALAR, VECTOR):
                raise self._error(
                    "binary expression must contain only scalar and instant vector types", start
                )
        if return_bool and op not in COMPARISON_OPS:
            raise self._error("bool modifier can only be used on comparison operators", op_tok)
        both_scalar = lhs.type == SCALAR and rhs.type == SCALAR
        if op in COMPARISON_OPS and both_scalar and not return_bool:
            raise self._error("comparisons between scalars must use BOOL modifier", op_tok)
        if op in SET_OPS and (lhs.type == SCALAR or rhs.type == SCALAR):
            raise self._error(f'set operator "{op}" not allowed in binary scalar expression', start)
        if matching is not None and (lhs.type != VECTOR or rhs.type != VECTOR):
            raise self._error("vector matching only allowed between instant vectors", start)
        if lhs.type == VECTOR and rhs.type == VECTOR:
            matching = matching or VectorMatching()
            if op in SET_OPS:
                matching = replace(matching, card="many-to-many")
        node_type = SCALAR if both_scalar else VECTOR
        return Binary(op, lhs, rhs, return_bool, matching, type=node_type)

    def _unary(self) -> Node:
        if self._is("OP", "-") or self._is("OP", "+"):
            op_tok = self._next()
            operand = self._expr(_PRECEDENCE["^"])
            if operand.type not in (SCALAR, VECTOR):
                raise self._error(
                    "unary expression only allowed on expressions of type scalar or instant "
                    f'vector, got "{TYPE_NAMES[operand.type]}"',
                    op_tok,
                )
            if op_tok.value == "+":
                return operand
            if isinstance(operand, NumberLiteral):
                return NumberLiteral(-operand.value)
            return Unary("-", operand, type=operand.type)
        start = self.tok
        return self._postfix(self._primary(), start)

    def _postfix(self, node: Node, node_start: Token) -> Node:
        while True:
            if self._is("OP", "["):
                start = self._next()
                duration = self._expect("DURATION", context="range selector")
                if self._is("OP", ":"):
                    self._next()
                    step = 0
                    if self._is("DURATION"):
                        step = self._duration(self._next())
                    self._expect("OP", "]", context="subquery selector")
                    if node.type != VECTOR:
                        raise self._error(
                            "subquery is only allowed on instant vector, got "
                            f"{TYPE_NAMES[node.type]} instead",
                            node_start,
                        )
                    rng = self._duration(duration)
                    if rng == 0:
                        raise self._error("duration must be greater than 0", duration)
                    node = Subquery(node, rng, step)
                    continue
                self._expect("OP", "]", context="range selector")
                if not isinstance(node, VectorSelector):
                    raise self._error("ranges only allowed for vector selectors", start)
                rng = self._duration(duration)
                if rng == 0:
                    raise self._error("duration must be greater than 0", duration)
                node = MatrixSelector(node, rng)
            elif self._is("KEYWORD", "offset"):
                self._next()
                sign = 1
                if self._is("OP", "-") or self._is("OP", "+"):
                    sign = -1 if self._next().value == "-" else 1
                offset = sign * self._duration(self._expect("DURATION", context="offset"))
                if isinstance(node, VectorSelector):
                    node = _with_offset(node, offset, node_start, self)
                elif isinstance(node, MatrixSelector):
                    inner = _with_offset(node.selector, offset, node_start, self)
                    node = MatrixSelector(inner, node.range)
                elif isinstance(node, Subquery):
                    if node.offset:
                        raise self._error("offset may not be set multiple times", node_start)
                    node = replace(node, offset=offset)
                else:
                    raise self._error(
                        "offset modifier must be preceded by an instant vector selector or "
                        "range vector selector or a subquery",
                        node_start,
                    )
            elif self._is("OP", "@"):
                self._next()
                at = self._at_value()
                target = node.selector if isinstance(node, MatrixSelector) else node
                if not isinstance(target, VectorSelector | Subquery):
                    raise self._error(
                        "@ modifier must be preceded by an instant vector selector or range "
                        "vector selector or a subquery",
                        node_start,
                    )
                if target.at is not None:
                    raise self._error("@ <timestamp> may not be set multiple times", node_start)
                target = replace(target, at=at)
                node = (
                    MatrixSelector(target, node.range)
                    if isinstance(node, MatrixSelector)
                    else target
                )
            else:
                return node

    def _at_value(self) -> int | str:
        """``@ <unix seconds>``, ``@ start()`` or ``@ end()``."""
        sign = 1.0
        if self._is("OP", "-") or self._is("OP", "+"):
            sign = -1.0 if self._next().value == "-" else 1.0
        tok = self.tok
        if tok.kind == "NUMBER":
            self._next()
            seconds = sign * tok.number
            if not math.isfinite(seconds) or abs(seconds) > 9.2e15:
                raise self._error("timestamp out of bounds for @ modifier", tok)
            return round(seconds * 1000)
        if tok.kind == "IDENT" and tok.value in ("start", "end") and sign > 0:
            self._next()
            self._expect("OP", "(", context="@ modifier")
            self._expect("OP", ")", context="@ modifier")
            return tok.value
        raise self._unexpected("@, expected timestamp")

    def _duration(self, tok: Token) -> int:
        try:
            return parse_duration(tok.value)
        except ValueError as exc:
            raise self._error(str(exc), tok) from None

    def _primary(self) -> Node:
        tok = self.tok
        if tok.kind == "NUMBER":
            self._next()
            return NumberLiteral(tok.number)
        if tok.kind == "STRING":
            self._next()
            return StringLiteral(tok.value)
        if tok.kind == "OP" and tok.value == "(":
            self._next()
            inner = self._expr(0)
            self._expect("OP", ")", context="parenthesized expression")
            return Paren(inner, type=inner.type)
        if tok.kind == "OP" and tok.value == "{":
            return self._selector(None, tok)
        if tok.kind == "IDENT":
            name = tok.value
            low = name.lower()
            if low in AGGREGATORS or low in UNSUPPORTED_AGGREGATORS:
                nxt = self.tokens[self.i + 1]
                if (nxt.kind == "OP" and nxt.value == "(") or (
                    nxt.kind == "KEYWORD" and nxt.value.lower() in ("by", "without")
                ):
                    if low in UNSUPPORTED_AGGREGATORS:
                        raise self._error(f"aggregation {low!r} is not supported by the lab")
                    self._next()
                    return self._aggregate(low, tok)
            nxt = self.tokens[self.i + 1]
            if nxt.kind == "OP" and nxt.value == "(":
                self._next()
                return self._call(name, tok)
            self._next()
            return self._selector(name, tok)
        raise self._unexpected()

    def _selector(self, name: str | None, start: Token) -> VectorSelector:
        matchers: list[Matcher] = []
        if name is not None:
            matchers.append(Matcher("__name__", "=", name))
        if self._is("OP", "{"):
            self._next()
            while not self._is("OP", "}"):
                label_tok = self.tok
                if label_tok.kind not in ("IDENT", "KEYWORD") or not _LABEL_NAME_RE.fullmatch(
                    label_tok.value
                ):
                    raise self._unexpected("label matching")
                self._next()
                op_tok = self.tok
                if not (op_tok.kind == "OP" and op_tok.value in ("=", "!=", "=~", "!~")):
                    raise self._unexpected(
                        'label matching, expected one of "=", "!=", "=~" or "!~"'
                    )
                self._next()
                value_tok = self._expect("STRING", context="label matching, expected string")
                if label_tok.value == "__name__" and name is not None:
                    raise self._error(
                        f'metric name must not be set twice: "{name}" or "{value_tok.value}"',
                        start,
                    )
                if op_tok.value in ("=~", "!~"):
                    try:
                        re.compile(value_tok.value)
                    except re.error as exc:
                        raise self._error(f"error parsing regexp: {exc}", label_tok) from None
                matchers.append(Matcher(label_tok.value, op_tok.value, value_tok.value))
                if self._is("OP", ","):
                    self._next()
                elif not self._is("OP", "}"):
                    raise self._unexpected('label matching, expected "," or "}"')
            self._next()
        if not any(not m.matches("") for m in matchers):
            raise self._error("vector selector must contain at least one non-empty matcher", start)
        if name is None:
            names = [m.value for m in matchers if m.name == "__name__" and m.op == "="]
            name = names[0] if names else None
        return VectorSelector(name, tuple(matchers))

    def _label_list(self) -> tuple[str, ...]:
        self._expect("OP", "(", context="grouping opts")
        labels: list[str] = []
        while not self._is("OP", ")"):
            tok = self.tok
            if tok.kind not in ("IDENT", "KEYWORD") or not _LABEL_NAME_RE.fullmatch(tok.value):
                raise self._unexpected("grouping opts")
            labels.append(self._next().value)
            if self._is("OP", ","):
                self._next()
            elif not self._is("OP", ")"):
                raise self._unexpected('grouping opts, expected "," or ")"')
        self._next()
        return tuple(labels)

    def _aggregate(self, op: str, start: Token) -> Aggregate:
        grouping: tuple[str, ...] = ()
        without = False
        have_grouping = False
        if self._is("KEYWORD", "by") or self._is("KEYWORD", "without"):
            without = self._next().value.lower() == "without"
            grouping = self._label_list()
            have_grouping = True
        args = self._arguments("aggregation")
        if self._is("KEYWORD", "by") or self._is("KEYWORD", "without"):
            if have_grouping:
                raise self._unexpected("aggregation")
            without = self._next().value.lower() == "without"
            grouping = self._label_list()
        wants = 2 if op in ("topk", "bottomk", "quantile") else 1
        if len(args) != wants:
            raise self._error(
                "wrong number of arguments for aggregate expression provided, "
                f"expected {wants}, got {len(args)}",
                start,
            )
        param = args[0][0] if wants == 2 else None
        expr, expr_start = args[-1]
        if expr.type != VECTOR:
            raise self._error(
                "expected type instant vector in aggregation expression, got "
                f"{TYPE_NAMES[expr.type]}",
                expr_start,
            )
        if param is not None and param.type != SCALAR:
            raise self._error(
                f"expected type scalar in aggregation parameter, got {TYPE_NAMES[param.type]}",
                args[0][1],
            )
        return Aggregate(op, expr, param, grouping, without)

    def _arguments(self, context: str) -> list[tuple[Node, Token]]:
        """Comma-separated expressions in parentheses, each with its first token (type
        errors point at the offending argument, as Prometheus's do)."""
        self._expect("OP", "(", context=context)
        args: list[tuple[Node, Token]] = []
        while not self._is("OP", ")"):
            first = self.tok
            args.append((self._expr(0), first))
            if self._is("OP", ","):
                self._next()
            elif not self._is("OP", ")"):
                raise self._unexpected(f'{context}, expected "," or ")"')
        self._next()
        return args

    def _call(self, name: str, start: Token) -> Call:
        if name not in FUNCTION_SIGNATURES:
            if name in UNSUPPORTED_FUNCTIONS:
                raise self._error(f'function "{name}" is not supported by the lab', start)
            raise self._error(f'unknown function with name "{name}"', start)
        arg_types, optional, ret = FUNCTION_SIGNATURES[name]
        args = self._arguments("function call")
        if not len(arg_types) - optional <= len(args) <= len(arg_types):
            expected = len(arg_types) if optional == 0 else len(arg_types) - optional
            qualifier = "" if optional == 0 else "at least "
            raise self._error(
                f'expected {qualifier}{expected} argument(s) in call to "{name}", got {len(args)}',
                start,
            )
        for want, (arg, arg_start) in zip(arg_types, args, strict=False):
            if arg.type != want:
                raise self._error(
                    f'expected type {TYPE_NAMES[want]} in call to function "{name}", '
                    f"got {TYPE_NAMES[arg.type]}",
                    arg_start,
                )
        return Call(name, tuple(arg for arg, _start in args), type=ret)


def _with_offset(node: VectorSelector, offset: int, tok: Token, parser: _Parser) -> VectorSelector:
    if node.offset:
        raise parser._error("offset may not be set multiple times", tok)
    return replace(node, offset=offset)


def _open_brackets(tokens: list[Token]) -> str:
    """The innermost bracket still open at the end of input ("" when all are closed)."""
    stack: list[str] = []
    pairs = {")": "(", "}": "{", "]": "["}
    for tok in tokens:
        if tok.kind != "OP":
            continue
        if tok.value in "({[":
            stack.append(tok.value)
        elif tok.value in pairs and stack and stack[-1] == pairs[tok.value]:
            stack.pop()
    return stack[-1] if stack else ""


def _describe(tok: Token) -> str:
    if tok.kind == "STRING":
        return f'string "{tok.value}"'
    if tok.kind == "NUMBER":
        return f'number "{tok.value}"'
    if tok.kind == "DURATION":
        return f'duration "{tok.value}"'
    if tok.kind == "IDENT":
        return f'identifier "{tok.value}"'
    if tok.kind == "KEYWORD":
        return f"<{tok.value.lower()}>"
    return f'"{tok.value}"'


__all__ = ["FUNCTION_SIGNATURES", "STRING", "parse", "parse_metric_selector"]
