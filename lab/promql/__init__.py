"""A PromQL subset evaluated over ``lab.tsdb.TSDB``: what the lab's Prometheus API runs.

``parse`` turns text into an AST (``nodes``), ``Engine`` evaluates it. The supported
subset and the reasons for each semantic choice are in the module docstrings.
"""

from lab.promql.engine import Engine, QueryResult, RangeSeries, Sample, Scalar, String
from lab.promql.errors import EvalError, ParseError, PromQLError
from lab.promql.parser import parse, parse_metric_selector

__all__ = [
    "Engine",
    "EvalError",
    "ParseError",
    "PromQLError",
    "QueryResult",
    "RangeSeries",
    "Sample",
    "Scalar",
    "String",
    "parse",
    "parse_metric_selector",
]
