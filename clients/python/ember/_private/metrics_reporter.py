"""Sends this process's ember.util.metrics values to its raylet, which
exports them on the node's /metrics (services/raylet/user_metrics.py).

At most every `interval_s`, and only when something changed: the families
changed since the last report go, whole (totals, not increments, so a lost
or repeated report corrupts nothing). The thread starts at the first metric
a process declares; one that declares none pays nothing. `close` sends what
changed since the last report, so a driver's last values are exported too.
"""

from __future__ import annotations

import threading
from typing import Callable

from ember.v1 import raylet_pb2

from ember._private.metrics_registry import HistogramSeries, MetricFamily, MetricKind, Registry, ValueSeries

_KINDS = {MetricKind.COUNTER: raylet_pb2.UserMetricFamily.COUNTER,
          MetricKind.GAUGE: raylet_pb2.UserMetricFamily.GAUGE,
          MetricKind.HISTOGRAM: raylet_pb2.UserMetricFamily.HISTOGRAM}


def to_proto(families: list[MetricFamily]) -> raylet_pb2.UserMetrics:
    report = raylet_pb2.UserMetrics()
    for family in families:
        out = report.families.add(name=family.name, description=family.description, kind=_KINDS[family.kind],
                                  tag_keys=family.tag_keys, boundaries=family.boundaries)
        for series in family.series:
            tag_values = [value for _, value in series.tags]
            if isinstance(series, HistogramSeries):
                out.series.add(tag_values=tag_values, value=series.sum, bucket_counts=series.bucket_counts)
            else:
                assert isinstance(series, ValueSeries)
                out.series.add(tag_values=tag_values, value=series.value, set_time=series.set_time)
    return report


class MetricsReporter:
    def __init__(self, registry: Registry, send: Callable[[raylet_pb2.UserMetrics], None], interval_s: float) -> None:
        self._registry = registry
        self._send = send
        self._interval_s = interval_s
        self._seen: dict[str, int] = {}  # family name -> version last sent
        self._sent_version = -1
        self._lock = threading.Lock()  # one report at a time (the thread, close)
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._registry.when_declared(self._start_thread)

    def _start_thread(self) -> None:
        if self._closed.is_set() or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="ember-metrics", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.wait(self._interval_s):
            self.report()

    def report(self) -> None:
        """Send the families changed since the last report, if any."""
        with self._lock:
            version = self._registry.version
            if version == self._sent_version:
                return
            self._sent_version = version
            changed = self._registry.changes(self._seen)
            if changed:
                self._send(to_proto(changed))

    def close(self) -> None:
        """The last report (what changed since the one before), then no more."""
        self._closed.set()
        if self._thread is not None:
            self.report()
