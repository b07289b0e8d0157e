"""Values recorded on a service's event loop and exported at scrape time.

The loop is the only writer and a scrape runs on the same loop
(`metrics_server`), so these are plain numbers: an event costs an integer
add (a histogram: a bisect and two adds), no lock, no allocation. A
service's collector turns them into Prometheus families when scraped.
"""

from __future__ import annotations

import bisect
from typing import Iterable, Sequence

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

# Latencies from 100 us (a task on a warm worker) to a minute (a queue).
LATENCY_BUCKETS_S: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LoopHistogram:
    """Observations in fixed buckets: counts[i] counts the values v with
    bounds[i-1] < v <= bounds[i] (Prometheus' `le`); the last, those above
    every bound. Not cumulative until exported."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


def histogram_family(name: str, documentation: str, series: Iterable[tuple[Sequence[str], LoopHistogram]],
                     labels: Sequence[str] = ()) -> HistogramMetricFamily:
    """A histogram family of one series per label values."""
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for label_values, histogram in series:
        family.add_metric(list(label_values), cumulative_buckets(histogram.bounds, histogram.counts), histogram.sum)
    return family


def cumulative_buckets(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (the last above every bound) as Prometheus' cumulative `le` buckets."""
    out, running = [], 0
    for bound, count in zip(bounds, counts):
        running += count
        out.append((floatToGoString(bound), running))
    running += counts[len(bounds)] if len(counts) > len(bounds) else 0
    out.append(("+Inf", running))
    return out

