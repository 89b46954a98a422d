"""Compact measurements: log-bucketed histograms, counters and per-second series.

A load run can see millions of events, so no sample list is kept anywhere: each measurement
goes into a :class:`Histogram` whose buckets grow geometrically (HDR-style), and each worker
process ships its :class:`MetricSet` to the parent as a small dict that merges exactly.

Contracts:

- ``Histogram.percentile(q)`` is the nearest-rank percentile of the recorded values to within
  :data:`RELATIVE_ERROR` of the exact one (values below :data:`MIN_VALUE` count as 0); ``min``,
  ``max``, ``count`` and ``sum`` are exact. Negative values are recorded as 0 (a clock that
  truncates to whole milliseconds can make a lag of a few microseconds come out negative).
- Merging is associative and commutative, and ``from_dict(to_dict(h))`` equals ``h``; a
  histogram's serialized size grows with the spread of its values, not their number.
- Counters are non-negative integers keyed by a free string; series are keyed by whole
  seconds since the run's common start time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GROWTH",
    "MIN_VALUE",
    "RELATIVE_ERROR",
    "SERIES_METRICS",
    "Histogram",
    "MetricSet",
    "Summary",
]

GROWTH = 1.02
"""Ratio between the bounds of consecutive buckets."""
MIN_VALUE = 0.001
"""The smallest value told apart from 0 (in the unit recorded: milliseconds here, so 1 µs)."""
RELATIVE_ERROR = math.sqrt(GROWTH) - 1
"""Largest relative error of a percentile: a bucket reports its geometric midpoint (~1%)."""
_LOG_GROWTH = math.log(GROWTH)

SERIES_METRICS = ("lag_ms", "first_delta_ms", "ack_ms")
"""The histograms also kept per second, for the plot over time."""


def _bucket(value: float) -> int:
    if value < MIN_VALUE:
        return 0
    return 1 + int(math.log(value / MIN_VALUE) / _LOG_GROWTH)


def _midpoint(bucket: int) -> float:
    if bucket == 0:
        return 0.0
    return MIN_VALUE * GROWTH ** (bucket - 1) * math.sqrt(GROWTH)


@dataclass(frozen=True)
class Summary:
    """The figures of one histogram that the report prints."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "min": self.min,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "max": self.max,
        }


class Histogram:
    """Counts of non-negative values in geometric buckets; see the module contract."""

    __slots__ = ("buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def record(self, value: float) -> None:
        """Add one value (negative or non-finite values: see the module contract)."""
        if not value > 0.0:  # also catches NaN
            value = 0.0
        elif value == math.inf:
            value = 1e18
        index = _bucket(value)
        self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: Histogram) -> None:
        """Add every value ``other`` holds to this histogram."""
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float:
        """The nearest-rank ``q``-th percentile (0 < q <= 100); 0.0 when empty."""
        if not 0 < q <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {q}")
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(self.max, max(self.min, _midpoint(index)))
        return self.max

    def summary(self) -> Summary:
        if self.count == 0:
            return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return Summary(
            count=self.count,
            min=self.min,
            mean=self.total / self.count,
            p50=self.percentile(50),
            p90=self.percentile(90),
            p99=self.percentile(99),
            max=self.max,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form: ``buckets`` as ``[[index, count], ...]`` in index order."""
        return {
            "buckets": [[i, self.buckets[i]] for i in sorted(self.buckets)],
            "count": self.count,
            "sum": self.total,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        hist = cls()
        hist.buckets = {int(i): int(n) for i, n in data["buckets"]}
        hist.count = int(data["count"])
        hist.total = float(data["sum"])
        if hist.count:
            hist.min = float(data["min"])
            hist.max = float(data["max"])
        return hist

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _merge_histograms(into: dict[Any, Histogram], other: Mapping[Any, Histogram]) -> None:
    for key, hist in other.items():
        into.setdefault(key, Histogram()).merge(hist)


@dataclass
class MetricSet:
    """Everything one worker (or, merged, the whole run) measured.

    ``histograms``: name → histogram. ``counters``: name → count; error codes, close codes
    and integrity kinds use the prefixes ``error.``, ``close.`` and ``integrity.``.
    ``series``: second → metric name → histogram (only :data:`SERIES_METRICS`);
    ``events_per_s`` and ``active_per_s``: second → live events received, sessions active.
    """

    histograms: dict[str, Histogram] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    series: dict[int, dict[str, Histogram]] = field(default_factory=dict)
    events_per_s: Counter[int] = field(default_factory=Counter)
    active_per_s: Counter[int] = field(default_factory=Counter)

    def observe(self, name: str, value: float, second: int | None = None) -> None:
        """Record ``value`` in histogram ``name``, and in its per-second series when
        ``second`` is given and ``name`` is one of :data:`SERIES_METRICS`."""
        hist = self.histograms.get(name)
        if hist is None:
            hist = self.histograms[name] = Histogram()
        hist.record(value)
        if second is not None and name in SERIES_METRICS:
            per_second = self.series.setdefault(second, {})
            slot = per_second.get(name)
            if slot is None:
                slot = per_second[name] = Histogram()
            slot.record(value)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def total(self, prefix: str) -> int:
        """The sum of every counter whose name starts with ``prefix``."""
        return sum(n for name, n in self.counters.items() if name.startswith(prefix))

    def by_prefix(self, prefix: str) -> dict[str, int]:
        """Counters under ``prefix``, with the prefix removed, largest first."""
        found = {k[len(prefix) :]: n for k, n in self.counters.items() if k.startswith(prefix)}
        return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))

    def merge(self, other: MetricSet) -> None:
        _merge_histograms(self.histograms, other.histograms)
        self.counters.update(other.counters)
        for second, hists in other.series.items():
            _merge_histograms(self.series.setdefault(second, {}), hists)
        self.events_per_s.update(other.events_per_s)
        self.active_per_s.update(other.active_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "histograms": {k: h.to_dict() for k, h in sorted(self.histograms.items())},
            "counters": dict(sorted(self.counters.items())),
            "series": {
                str(s): {k: h.to_dict() for k, h in sorted(hs.items())}
                for s, hs in sorted(self.series.items())
            },
            "events_per_s": {str(s): n for s, n in sorted(self.events_per_s.items())},
            "active_per_s": {str(s): n for s, n in sorted(self.active_per_s.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricSet:
        return cls(
            histograms={k: Histogram.from_dict(v) for k, v in data["histograms"].items()},
            counters=Counter({k: int(v) for k, v in data["counters"].items()}),
            series={
                int(s): {k: Histogram.from_dict(v) for k, v in hs.items()}
                for s, hs in data["series"].items()
            },
            events_per_s=Counter({int(s): int(n) for s, n in data["events_per_s"].items()}),
            active_per_s=Counter({int(s): int(n) for s, n in data["active_per_s"].items()}),
        )

    @classmethod
    def merged(cls, parts: Iterable[MetricSet]) -> MetricSet:
        total = cls()
        for part in parts:
            total.merge(part)
        return total
