"""An SLO's good/total PromQL, asked over any window.

SLO queries count events with a range selector, e.g.
``sum(rate(http_requests_total{code!~"5.."}[5m]))``. Over another window the same query
with its range selectors set to that window counts the events of that window (what Sloth
does with its ``{{.window}}`` template). A query without range selector (a recording rule
of a rate, a gauge of events per second) is averaged over the window with a subquery.

Both sides are summed to one number (``sum(...)``): an SLO is one ratio per service, and
the Prometheus rules use exactly the same expressions as the Python evaluation.
"""

from __future__ import annotations

import re

from intelligence.slo.burn import duration

_DURATION = re.compile(r"^\s*(?:\d+(?:ms|[smhdwy]))+\s*$")
SUBQUERY_STEP = "1m"


def _scan(query: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Offsets of the text inside every ``[duration]`` outside string literals (subqueries
    ``[1h:1m]`` are left out), and of every ``#`` comment."""
    spans, comments, i, n = [], [], 0, len(query)
    while i < n:
        ch = query[i]
        if ch in "\"'`":
            i += 1
            while i < n and query[i] != ch:
                i += 2 if query[i] == "\\" and ch != "`" else 1
            i += 1
            continue
        if ch == "#":  # a comment runs to the end of the line
            start = i
            while i < n and query[i] != "\n":
                i += 1
            comments.append((start, i))
            continue
        if ch == "[":
            close = query.find("]", i)
            if close < 0:
                break
            if _DURATION.match(query[i + 1 : close]):
                spans.append((i + 1, close))
            i = close + 1
            continue
        i += 1
    return spans, comments


def over_window(query: str, seconds: int) -> str:
    """``query`` counting events over the last ``seconds`` (see the module docstring)."""
    window = duration(seconds)
    spans, comments = _scan(query)
    edits = [(a, b, window) for a, b in spans] + [(a, b, "") for a, b in comments]
    out, last = [], 0
    for start, end, text in sorted(edits):
        out.append(query[last:start])
        out.append(text)
        last = end
    out.append(query[last:])
    rewritten = "".join(out).strip()
    if not spans:
        return f"avg_over_time(({rewritten})[{window}:{SUBQUERY_STEP}])"
    return rewritten


def summed(query: str) -> str:
    return f"sum({query})"


def window_queries(good_query: str, total_query: str, seconds: int) -> tuple[str, str]:
    """The good and total expressions for one window, each summed to a single series."""
    return summed(over_window(good_query, seconds)), summed(over_window(total_query, seconds))


def error_ratio_expression(good_query: str, total_query: str, seconds: int) -> str:
    """``1 - good/total`` over one window: the recording rule's expression."""
    good, total = window_queries(good_query, total_query, seconds)
    return f"1 - ({good}) / ({total})"
