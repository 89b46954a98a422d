"""The load harness's histograms: percentiles within the bucket error, exact merges."""

from __future__ import annotations

import json
import math
import random

import pytest

from loadtest.metrics import RELATIVE_ERROR, Histogram, MetricSet


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.lognormvariate(2.0, 1.5),  # latencies: a long tail
        lambda rng: rng.uniform(0.0, 500.0),
        lambda rng: rng.expovariate(0.01) + 0.0005,  # some values below MIN_VALUE
    ],
)
def test_percentiles_are_within_the_bucket_error(seed: int, draw: object) -> None:
    rng = random.Random(seed)
    values = [draw(rng) for _ in range(20_000)]  # type: ignore[operator]
    hist = Histogram()
    for v in values:
        hist.record(v)
    assert hist.count == len(values)
    assert hist.min == min(values)
    assert hist.max == max(values)
    assert hist.total == pytest.approx(sum(values))
    for q in (1, 10, 50, 90, 99, 99.9, 100):
        exact = exact_percentile(values, q)
        got = hist.percentile(q)
        assert abs(got - exact) <= RELATIVE_ERROR * exact + 0.001, (q, got, exact)


def test_buckets_stay_few_whatever_the_count() -> None:
    hist = Histogram()
    rng = random.Random(7)
    for _ in range(200_000):
        hist.record(rng.lognormvariate(1.0, 1.0))
    assert len(hist.buckets) < 1000
    assert len(json.dumps(hist.to_dict())) < 20_000


def test_edge_values() -> None:
    hist = Histogram()
    assert hist.percentile(99) == 0.0
    assert hist.summary().count == 0
    for v in (-3.0, 0.0, math.nan, 5.0):
        hist.record(v)
    assert hist.count == 4
    assert hist.min == 0.0
    assert hist.percentile(50) == 0.0
    assert hist.percentile(100) == 5.0
    with pytest.raises(ValueError, match="percentile"):
        hist.percentile(0)


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(11)
    parts = [Histogram() for _ in range(4)]
    whole = Histogram()
    for i in range(10_000):
        v = rng.expovariate(0.05)
        parts[i % 4].record(v)
        whole.record(v)
    merged = Histogram()
    for part in reversed(parts):
        merged.merge(Histogram.from_dict(json.loads(json.dumps(part.to_dict()))))
    assert merged.buckets == whole.buckets
    assert merged.count == whole.count
    assert (merged.min, merged.max) == (whole.min, whole.max)
    assert merged.total == pytest.approx(whole.total)
    for q in (50, 90, 99):
        assert merged.percentile(q) == whole.percentile(q)


def test_metric_sets_round_trip_and_merge() -> None:
    a, b = MetricSet(), MetricSet()
    a.observe("lag_ms", 3.0, second=0)
    a.observe("lag_ms", 30.0, second=1)
    b.observe("lag_ms", 300.0, second=1)
    b.observe("connect_ms", 5.0, second=1)  # not a per-second metric
    a.count("integrity.gap")
    b.count("integrity.gap", 2)
    b.count("error.rate_limited")
    a.events_per_s[1] += 10
    b.events_per_s[1] += 5
    a.active_per_s[1] = 3
    b.active_per_s[1] = 4
    total = MetricSet.merged(
        MetricSet.from_dict(json.loads(json.dumps(m.to_dict()))) for m in (a, b)
    )
    assert total.histograms["lag_ms"].count == 3
    assert total.series[1]["lag_ms"].count == 2
    assert "connect_ms" not in total.series[1]
    assert total.counters["integrity.gap"] == 3
    assert total.total("integrity.") == 3
    assert total.by_prefix("error.") == {"rate_limited": 1}
    assert total.events_per_s[1] == 15
    assert total.active_per_s[1] == 7
