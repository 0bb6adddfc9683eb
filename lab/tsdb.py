"""A small in-memory time-series store: what the lab's Prometheus API queries and its
exporters expose.

Series are keyed by their full label set (``__name__`` included). Samples are appended in
time order; ``select`` returns numpy arrays so PromQL evaluation stays vectorised.
Thread-safe: the live simulation appends while HTTP handlers read.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

LabelKey = tuple[tuple[str, str], ...]


def label_key(labels: Mapping[str, str]) -> LabelKey:
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


@dataclass(frozen=True)
class Matcher:
    """A label matcher as in PromQL: ``name op value`` with op in ``= != =~ !~``."""

    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown matcher operator {self.op!r}")

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(f"(?:{self.value})\\Z")  # PromQL regexes are fully anchored

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self._regex.match(value) is not None
        return hit if self.op == "=~" else not hit


@dataclass
class Series:
    labels: dict[str, str]
    timestamps: np.ndarray  # float64 seconds since the epoch, ascending
    values: np.ndarray  # float64


@dataclass
class _Buffer:
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


class TSDB:
    """Append-only in-memory store of float samples."""

    def __init__(self) -> None:
        self._series: dict[LabelKey, _Buffer] = {}
        self._lock = threading.Lock()

    def add(self, labels: Mapping[str, str], t: float, value: float) -> None:
        key = label_key(labels)
        with self._lock:
            buf = self._series.get(key)
            if buf is None:
                buf = self._series[key] = _Buffer()
            if buf.times and t <= buf.times[-1]:
                if t == buf.times[-1]:
                    buf.values[-1] = float(value)
                return
            buf.times.append(float(t))
            buf.values.append(float(value))

    def add_series(
        self, labels: Mapping[str, str], times: Sequence[float], values: Sequence[float]
    ) -> None:
        """Append a run of samples to one series at once: the generator's fast path.

        Samples not newer than the series' last one are dropped, as ``add`` does.
        """
        self.add_series_key(label_key(labels), times, values)

    def add_series_key(
        self, key: LabelKey, times: Sequence[float], values: Sequence[float]
    ) -> None:
        """``add_series`` with the label key already computed (callers that cache it)."""
        ts = np.asarray(times, dtype=np.float64).tolist()
        vs = np.asarray(values, dtype=np.float64).tolist()
        with self._lock:
            buf = self._series.get(key)
            if buf is None:
                buf = self._series[key] = _Buffer()
            if buf.times:
                last = buf.times[-1]
                keep = next((i for i, t in enumerate(ts) if t > last), len(ts))
                ts, vs = ts[keep:], vs[keep:]
            buf.times.extend(ts)
            buf.values.extend(vs)

    def sample_count(self) -> int:
        with self._lock:
            return sum(len(buf.times) for buf in self._series.values())

    def add_many(self, samples: Iterable[tuple[Mapping[str, str], float, float]]) -> None:
        for labels, t, value in samples:
            self.add(labels, t, value)

    def _matching(self, matchers: Sequence[Matcher]) -> list[tuple[LabelKey, _Buffer]]:
        with self._lock:
            items = list(self._series.items())
        out = []
        for key, buf in items:
            labels = dict(key)
            if all(m.matches(labels.get(m.name, "")) for m in matchers):
                out.append((key, buf))
        return out

    def select(self, matchers: Sequence[Matcher], start: float, end: float) -> list[Series]:
        """Series matching all ``matchers`` with their samples in ``[start, end]``."""
        result = []
        for key, buf in self._matching(matchers):
            with self._lock:
                times = np.asarray(buf.times, dtype=np.float64)
                values = np.asarray(buf.values, dtype=np.float64)
            lo, hi = np.searchsorted(times, [start, end], side="left")
            hi = np.searchsorted(times, end, side="right")
            if hi > lo:
                result.append(Series(dict(key), times[lo:hi], values[lo:hi]))
        return result

    def series_labels(
        self, matchers: Sequence[Matcher], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        lo = float("-inf") if start is None else start
        hi = float("inf") if end is None else end
        return [
            dict(key)
            for key, buf in self._matching(matchers)
            if buf.times and buf.times[-1] >= lo and buf.times[0] <= hi
        ]

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        return sorted({name for labels in self.series_labels(matchers) for name in labels})

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        return sorted({lab[name] for lab in self.series_labels(matchers) if name in lab})

    def latest(self) -> list[tuple[dict[str, str], float, float]]:
        """The newest sample of every series: what an exporter serves on /metrics."""
        with self._lock:
            return [
                (dict(key), buf.times[-1], buf.values[-1])
                for key, buf in self._series.items()
                if buf.times
            ]

    def __len__(self) -> int:
        return len(self._series)
