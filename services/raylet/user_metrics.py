"""Application metrics (ember.util.metrics) of the node's drivers and
workers, as one set of families for the raylet's /metrics.

Each client reports its families' current totals (ClientBatch.user_metrics);
the raylet keeps the last report of each and aggregates at scrape time, so
the labels are the user's tags only (never a worker id) and a family's
series are as many as its distinct tag values:

- counters: summed over the clients; a client that leaves adds its totals
  to the node's, so a counter never goes down;
- histograms: buckets, sums and counts summed the same way;
- gauges: the value set last (by the recording process's clock) among the
  clients still connected, Ray's "last value"; a client that leaves takes
  its gauges with it, so no value outlives every process that set it.

The first report of a name on this node fixes its kind, tag keys and
boundaries; reports that differ (or are malformed) are dropped, with a
warning in the log once per name.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterator

from ember.v1 import raylet_pb2
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ember_common import metric_names
from ember_common.loop_metrics import cumulative_buckets

log = logging.getLogger(__name__)

Family = raylet_pb2.UserMetricFamily
COUNTER, GAUGE, HISTOGRAM = Family.COUNTER, Family.GAUGE, Family.HISTOGRAM
# Series per family and client beyond which the rest are dropped: tag
# values are the user's, and one runaway tag must not exhaust the raylet.
MAX_SERIES = 2000


@dataclasses.dataclass(frozen=True)
class _Shape:
    kind: int
    description: str
    tag_keys: tuple[str, ...]
    boundaries: tuple[float, ...]


@dataclasses.dataclass
class _Totals:
    """A counter's or histogram's values left by clients that disconnected."""
    value: float = 0.0
    buckets: list[int] = dataclasses.field(default_factory=list)


class UserMetrics:
    def __init__(self) -> None:
        self._shapes: dict[str, _Shape] = {}
        self._reports: dict[bytes, dict[str, Family]] = {}  # client id -> name -> its last report
        self._departed: dict[str, dict[tuple[str, ...], _Totals]] = {}
        self._warned: set[str] = set()

    def report(self, client_id: bytes, metrics: raylet_pb2.UserMetrics) -> None:
        """A client's report: each family in it replaces the client's previous one."""
        families = self._reports.setdefault(client_id, {})
        for family in metrics.families:
            problem = self._check(family)
            if problem is not None:
                self._warn(family.name, problem)
                continue
            kept = Family()
            kept.CopyFrom(family)  # (not a reference into the batch, which it would keep alive)
            if len(kept.series) > MAX_SERIES:
                self._warn(family.name, f"more than {MAX_SERIES} tag value combinations from one process; "
                                        "the rest are dropped")
                del kept.series[MAX_SERIES:]
            families[family.name] = kept

    def client_gone(self, client_id: bytes) -> None:
        """A client disconnected: its counters and histograms stay in the
        node's totals, its gauges go."""
        for name, family in self._reports.pop(client_id, {}).items():
            if family.kind == GAUGE:
                continue
            departed = self._departed.setdefault(name, {})
            for series in family.series:
                totals = departed.setdefault(tuple(series.tag_values), _Totals())
                _add(totals, series)

    def families(self) -> Iterator[Metric]:
        """Every family reported on this node, aggregated over its clients."""
        for name, shape in sorted(self._shapes.items()):
            live = [f for families in self._reports.values() if (f := families.get(name)) is not None]
            keys = list(shape.tag_keys)
            if shape.kind == GAUGE:
                gauge = GaugeMetricFamily(name, shape.description or name, labels=keys)
                latest: dict[tuple[str, ...], raylet_pb2.UserMetricSeries] = {}
                for family in live:
                    for series in family.series:
                        tags = tuple(series.tag_values)
                        if tags not in latest or series.set_time >= latest[tags].set_time:
                            latest[tags] = series
                for tags, series in sorted(latest.items()):
                    gauge.add_metric(list(tags), series.value)
                yield gauge
                continue
            totals: dict[tuple[str, ...], _Totals] = {
                tags: _Totals(t.value, list(t.buckets)) for tags, t in self._departed.get(name, {}).items()}
            for family in live:
                for series in family.series:
                    _add(totals.setdefault(tuple(series.tag_values), _Totals()), series)
            if shape.kind == COUNTER:
                counter = CounterMetricFamily(name, shape.description or name, labels=keys)
                for tags, t in sorted(totals.items()):
                    counter.add_metric(list(tags), t.value)
                yield counter
            else:
                histogram = HistogramMetricFamily(name, shape.description or name, labels=keys)
                for tags, t in sorted(totals.items()):
                    histogram.add_metric(list(tags), cumulative_buckets(shape.boundaries, t.buckets), t.value)
                yield histogram

    def _check(self, family: Family) -> str | None:
        """Why the family cannot be exported, or None (and its shape is known from now on)."""
        name = family.name
        if not metric_names.VALID_NAME.match(name):
            return "not a valid Prometheus metric name"
        if metric_names.reserved(name):
            return f"names starting with {' or '.join(metric_names.RESERVED_PREFIXES)} are Ember's own"
        if family.kind not in (COUNTER, GAUGE, HISTOGRAM):
            return f"unknown kind {family.kind}"
        if not all(metric_names.valid_label(key) for key in family.tag_keys) or \
                len(set(family.tag_keys)) != len(family.tag_keys):
            return f"tag keys {list(family.tag_keys)} are not distinct valid Prometheus label names"
        boundaries = tuple(family.boundaries)
        if family.kind == HISTOGRAM and (not boundaries or any(a >= b for a, b in zip(boundaries, boundaries[1:]))):
            return "a histogram needs increasing boundaries"
        width = len(boundaries) + 1
        for series in family.series:
            if len(series.tag_values) != len(family.tag_keys):
                return "a series has not one value per tag key"
            if family.kind == HISTOGRAM and len(series.bucket_counts) != width:
                return f"a series has {len(series.bucket_counts)} buckets for {len(boundaries)} boundaries"
        shape = _Shape(family.kind, family.description, tuple(family.tag_keys),
                       boundaries if family.kind == HISTOGRAM else ())
        known = self._shapes.setdefault(name, shape)
        if (known.kind, known.tag_keys, known.boundaries) != (shape.kind, shape.tag_keys, shape.boundaries):
            return (f"it was first reported on this node as a {Family.Kind.Name(known.kind).lower()} with tag keys "
                    f"{list(known.tag_keys)}{_boundaries(known.boundaries)}, not a "
                    f"{Family.Kind.Name(shape.kind).lower()} with tag keys {list(shape.tag_keys)}"
                    f"{_boundaries(shape.boundaries)}")
        return None

    def _warn(self, name: str, problem: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            log.warning("application metric %r is not exported: %s", name[:200], problem)


def _add(totals: _Totals, series: raylet_pb2.UserMetricSeries) -> None:
    totals.value += series.value
    if series.bucket_counts:
        if not totals.buckets:
            totals.buckets = [0] * len(series.bucket_counts)
        for i, count in enumerate(series.bucket_counts):
            totals.buckets[i] += count


def _boundaries(boundaries: tuple[float, ...]) -> str:
    return f" and boundaries {list(boundaries)}" if boundaries else ""
