"""Parser: the AST for valid PromQL, Prometheus-style parse errors for invalid or
unsupported PromQL."""

from __future__ import annotations

import math

import pytest

from lab.promql import ParseError, parse
from lab.promql.lexer import parse_duration, tokenize
from lab.promql.nodes import (
    Aggregate,
    Binary,
    Call,
    MatrixSelector,
    NumberLiteral,
    Paren,
    StringLiteral,
    Subquery,
    Unary,
    VectorMatching,
    VectorSelector,
)
from lab.tsdb import Matcher


def test_bare_metric_name_becomes_a_name_matcher() -> None:
    assert parse("http_requests_total") == VectorSelector(
        "http_requests_total", (Matcher("__name__", "=", "http_requests_total"),)
    )


def test_all_four_matcher_operators_and_trailing_comma() -> None:
    node = parse('up{job="api", env!="dev", pod=~"web-.*", code!~"5..",}')
    assert isinstance(node, VectorSelector)
    assert node.matchers[1:] == (
        Matcher("job", "=", "api"),
        Matcher("env", "!=", "dev"),
        Matcher("pod", "=~", "web-.*"),
        Matcher("code", "!~", "5.."),
    )


def test_name_matcher_without_metric_name() -> None:
    node = parse('{__name__=~"http_.*", job="x"}')
    assert isinstance(node, VectorSelector)
    assert node.name is None
    assert node.matchers[0] == Matcher("__name__", "=~", "http_.*")
    assert parse('{__name__="up"}').name == "up"  # type: ignore[union-attr]


def test_keywords_are_valid_label_names() -> None:
    node = parse('x{on="a", by="b"}')
    assert [m.name for m in node.matchers] == ["__name__", "on", "by"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("250ms", 250),
        ("5s", 5_000),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
        ("1h30m", 5_400_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms
    node = parse(f"rate(x[{text}])")
    assert isinstance(node, Call)
    assert node.args[0] == MatrixSelector(VectorSelector("x", (Matcher("__name__", "=", "x"),)), ms)


def test_duration_units_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="not a valid duration"):
        parse_duration("30m1h")


def test_offset_on_instant_and_range_selectors() -> None:
    assert parse("x offset 5m").offset == 300_000  # type: ignore[union-attr]
    assert parse("x offset -1m").offset == -60_000  # type: ignore[union-attr]
    node = parse("x[1m] offset 1h")
    assert isinstance(node, MatrixSelector)
    assert node.range == 60_000 and node.selector.offset == 3_600_000


def test_subqueries() -> None:
    inner = parse("rate(x[1m])")
    assert parse("max_over_time(rate(x[1m])[10m:30s])") == Call(
        "max_over_time", (Subquery(inner, 600_000, 30_000),)
    )
    assert parse("x[5m:]") == Subquery(parse("x"), 300_000, 0)
    node = parse("x[5m:1m] offset 2m")
    assert isinstance(node, Subquery) and node.offset == 120_000 and node.type == "matrix"


def test_at_modifier() -> None:
    assert parse("x @ 100.5").at == 100_500  # type: ignore[union-attr]
    node = parse("rate(x[5m] @ end() offset 1m)")
    assert isinstance(node, Call)
    arg = node.args[0]
    assert isinstance(arg, MatrixSelector) and arg.selector.at == "end"
    assert parse("x[5m:1m] @ start()").at == "start"  # type: ignore[union-attr]


def test_numbers() -> None:
    assert parse("1.5") == NumberLiteral(1.5)
    assert parse("0x1F") == NumberLiteral(31.0)
    assert parse("1e3") == NumberLiteral(1000.0)
    assert parse(".5") == NumberLiteral(0.5)
    assert parse("-2") == NumberLiteral(-2.0)
    assert parse("Inf") == NumberLiteral(math.inf)
    assert math.isnan(parse("NaN").value)  # type: ignore[union-attr]


def test_strings_and_escapes() -> None:
    assert parse('"a\\"b\\n"') == StringLiteral('a"b\n')
    assert parse("'it\\'s'") == StringLiteral("it's")
    assert parse("`raw\\n`") == StringLiteral("raw\\n")
    assert parse('x{a="\\u00e9"}').matchers[1].value == "é"  # type: ignore[union-attr]


def test_comments_are_ignored() -> None:
    assert parse("up # the up metric\n") == parse("up")
    assert [t.kind for t in tokenize("a # c")] == ["IDENT", "EOF"]


def test_operator_precedence_and_associativity() -> None:
    node = parse("1 + 2 * 3")
    assert isinstance(node, Binary) and node.op == "+"
    assert isinstance(node.rhs, Binary) and node.rhs.op == "*"
    node = parse("2 ^ 3 ^ 2")  # right-associative
    assert isinstance(node, Binary) and isinstance(node.rhs, Binary)
    node = parse("a - b - c")  # left-associative
    assert isinstance(node, Binary) and isinstance(node.lhs, Binary)
    node = parse("a > b + 1 and c or d")
    assert isinstance(node, Binary) and node.op == "or"
    assert isinstance(node.lhs, Binary) and node.lhs.op == "and"
    # unary minus binds looser than ^ (as in Prometheus: -2^2 == -4)
    node = parse("-a ^ 2")
    assert isinstance(node, Unary) and isinstance(node.expr, Binary)


def test_parentheses() -> None:
    node = parse("(1 + 2) * 3")
    assert isinstance(node, Binary) and isinstance(node.lhs, Paren)


def test_aggregation_grouping_in_both_positions() -> None:
    before = parse("sum by (job, env) (rate(x[5m]))")
    after = parse("sum(rate(x[5m])) by (job, env)")
    assert before == after
    assert isinstance(before, Aggregate) and before.grouping == ("job", "env")
    node = parse("avg without (pod) (x)")
    assert isinstance(node, Aggregate) and node.without and node.grouping == ("pod",)
    node = parse("COUNT(x)")
    assert isinstance(node, Aggregate) and node.op == "count"
    node = parse("topk(3, x)")
    assert isinstance(node, Aggregate) and node.param == NumberLiteral(3.0)


def test_vector_matching_modifiers() -> None:
    node = parse("a / on(job) b")
    assert isinstance(node, Binary)
    assert node.matching == VectorMatching("one-to-one", True, ("job",), ())
    node = parse("a * ignoring(code) group_left(team) b")
    assert node.matching == VectorMatching("many-to-one", False, ("code",), ("team",))  # type: ignore[union-attr]
    node = parse("a + on(x) group_right b")
    assert node.matching == VectorMatching("one-to-many", True, ("x",), ())  # type: ignore[union-attr]
    node = parse("a and b")
    assert node.matching.card == "many-to-many"  # type: ignore[union-attr]
    node = parse("a > bool 1")
    assert isinstance(node, Binary) and node.return_bool


def test_types_are_inferred() -> None:
    assert parse("1 + 2").type == "scalar"
    assert parse("x + 2").type == "vector"
    assert parse("x[5m]").type == "matrix"
    assert parse("time()").type == "scalar"
    assert parse("scalar(x)").type == "scalar"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "no expression found in input"),
        ("sum(", "unclosed left parenthesis"),
        ("foo bar", 'unexpected identifier "bar"'),
        ('foo{a="b"', "unexpected end of input inside braces"),
        ("x[5m", "unexpected end of input in range selector"),
        ("foo{a=b}", 'unexpected identifier "b" in label matching, expected string'),
        ("{}", "vector selector must contain at least one non-empty matcher"),
        ('{a=""}', "vector selector must contain at least one non-empty matcher"),
        ('foo{__name__="bar"}', 'metric name must not be set twice: "foo" or "bar"'),
        ("rate(foo)", 'expected type range vector in call to function "rate", got instant vector'),
        ("rate(foo[5m], 1)", 'expected 1 argument(s) in call to "rate", got 2'),
        ("abs(x[5m])", 'expected type instant vector in call to function "abs", got range vector'),
        ("nosuchfn(x)", 'unknown function with name "nosuchfn"'),
        ("holt_winters(x[5m], 0.5, 0.5)", 'function "holt_winters" is not supported'),
        ("label_replace(x, 'a', 'b', 'c')", 'expected 5 argument(s) in call to "label_replace"'),
        ("label_replace(x, 'a', 'b', 'c', 1)", "expected type string in call to function"),
        ("count_values('v', x)", "aggregation 'count_values' is not supported"),
        ("quantile(x)", "wrong number of arguments for aggregate expression provided"),
        ("sum(x[5m])", "expected type instant vector in aggregation expression, got range vector"),
        ("topk(x)", "wrong number of arguments for aggregate expression provided, expected 2"),
        ("1 > 2", "comparisons between scalars must use BOOL modifier"),
        ("x + bool 1", "bool modifier can only be used on comparison operators"),
        ("x[5m] + 1", "binary expression must contain only scalar and instant vector types"),
        ("1 and x", 'set operator "and" not allowed in binary scalar expression'),
        ("1 + on(a) x", "vector matching only allowed between instant vectors"),
        ("a and on(x) group_left b", 'no grouping allowed for "and" operation'),
        ("a + on(x) group_left(x) b", 'label "x" must not occur in ON and GROUP clause at once'),
        ("(x)[5m]", "ranges only allowed for vector selectors"),
        ("(1)[5m:1m]", "subquery is only allowed on instant vector, got scalar"),
        ("x[5m:1m] offset 1m offset 1m", "offset may not be set multiple times"),
        ("sum(x) @ 1000", "@ modifier must be preceded by an instant vector selector"),
        ("x @ 1 @ 2", "@ <timestamp> may not be set multiple times"),
        ("x @ Inf", "timestamp out of bounds for @ modifier"),
        ("abs(x) offset 5m", "offset modifier must be preceded by an instant vector selector"),
        ("x offset 1m offset 2m", "offset may not be set multiple times"),
        ("x[0s]", "duration must be greater than 0"),
        ("-x[5m]", "unary expression only allowed on expressions of type scalar or instant vector"),
        ("x[5x]", 'bad duration syntax: "5"'),
        ("x offset 5x", "bad number or duration syntax"),
        ('x{a=~"("}', "error parsing regexp"),
        ('"unterminated', "unterminated quoted string"),
        ("x $ y", "unexpected character: '$'"),
        ("a atan2 b", 'binary operator "atan2" is not supported'),
    ],
)
def test_invalid_queries(query: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(query)
    assert message in str(info.value)
    assert ": parse error: " in str(info.value)


@pytest.mark.parametrize(
    ("query", "position"),
    [
        ("sum(x)\n  )", "2:3"),  # line and column of the unexpected token
        ("rate(foo)", "1:6"),  # a wrongly typed argument
        ("sum(x[5m])", "1:5"),  # a wrongly typed aggregation operand
        ("x[5m] + 1", "1:1"),  # the whole binary expression
        ("a + on(x) group_left(x) b", "1:3"),  # the operator
        ('foo{__name__="bar"}', "1:1"),  # the selector
        ("x offset 1m offset 2m", "1:1"),
    ],
)
def test_error_positions_match_prometheus(query: str, position: str) -> None:
    with pytest.raises(ParseError, match=rf"^{position}: parse error"):
        parse(query)
