"""The process's metric values (what `ember.util.metrics` records), kept in
memory: one family per metric name, one series per combination of tag
values. `snapshot()` reads them all; `changes()` the families changed since
the caller last asked (what `metrics_reporter` sends to the raylet, whose
/metrics exports them). Nothing here formats or sends anything.

The registry trusts its callers' arguments (ember.util.metrics checks
them), except that a name is declared once: a second declaration must match
the first (kind, tag keys, boundaries), so every series of a family has the
same shape."""

from __future__ import annotations

import bisect
import dataclasses
import enum
import threading
import time
from typing import Callable


class MetricKind(enum.Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


Tags = tuple[tuple[str, str], ...]  # (key, value) pairs in the order of the family's tag keys


@dataclasses.dataclass(frozen=True)
class ValueSeries:
    """A counter's total or a gauge's last value, for one set of tags
    (gauges: `set_time`, the unix time it was set)."""
    tags: Tags
    value: float
    set_time: float = dataclasses.field(default=0.0, compare=False)


@dataclasses.dataclass(frozen=True)
class HistogramSeries:
    """A histogram's observations for one set of tags. bucket_counts[i]
    counts the values v with boundaries[i-1] < v <= boundaries[i] (not
    cumulative); the last bucket holds those above every boundary."""
    tags: Tags
    bucket_counts: tuple[int, ...]
    count: int
    sum: float


@dataclasses.dataclass(frozen=True)
class MetricFamily:
    name: str
    description: str
    kind: MetricKind
    tag_keys: tuple[str, ...]
    boundaries: tuple[float, ...]  # histograms only; () otherwise
    series: tuple[ValueSeries, ...] | tuple[HistogramSeries, ...]


@dataclasses.dataclass
class _Histogram:
    bucket_counts: list[int]
    count: int = 0
    sum: float = 0.0


@dataclasses.dataclass
class _Family:
    description: str
    kind: MetricKind
    tag_keys: tuple[str, ...]
    boundaries: tuple[float, ...]
    values: dict[tuple[str, ...], float] = dataclasses.field(default_factory=dict)
    set_times: dict[tuple[str, ...], float] = dataclasses.field(default_factory=dict)  # gauges
    histograms: dict[tuple[str, ...], _Histogram] = dataclasses.field(default_factory=dict)
    version: int = 0  # bumped by every change


class Registry:
    """Thread-safe: tasks of one worker may record from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        # Bumped by every change: a reader that saw this number has nothing new (read without the lock).
        self.version = 0
        self._on_first_declare: list[Callable[[], None]] = []

    def when_declared(self, callback: Callable[[], None]) -> None:
        """Call `callback` once some metric is declared: now if one is, else
        (once) at the first declaration. A process without metrics so pays
        nothing for their reporting."""
        with self._lock:
            if not self._families:
                self._on_first_declare.append(callback)
                return
        callback()

    def declare(self, name: str, kind: MetricKind, description: str, tag_keys: tuple[str, ...],
                boundaries: tuple[float, ...] = ()) -> None:
        """Make the family known (with no series yet); again with the same
        shape is a no-op, so a metric rebuilt in each task shares its values."""
        first: list[Callable[[], None]] = []
        with self._lock:
            family = self._families.get(name)
            if family is None:
                self._families[name] = _Family(description, kind, tag_keys, boundaries)
                self.version += 1
                first, self._on_first_declare = self._on_first_declare, []
            elif (family.kind, family.tag_keys, family.boundaries) != (kind, tag_keys, boundaries):
                raise ValueError(
                    f"metric {name!r} is already declared in this process as a {family.kind.value} with tag keys "
                    f"{family.tag_keys}{_boundaries_text(family.boundaries)}; it cannot also be a {kind.value} "
                    f"with tag keys {tag_keys}{_boundaries_text(boundaries)}")
        for callback in first:
            callback()

    def add(self, name: str, tag_values: tuple[str, ...], amount: float) -> None:
        with self._lock:
            family = self._families[name]
            family.values[tag_values] = family.values.get(tag_values, 0.0) + amount
            family.version += 1
            self.version += 1

    def set(self, name: str, tag_values: tuple[str, ...], value: float) -> None:
        now = time.time()
        with self._lock:
            family = self._families[name]
            family.values[tag_values] = float(value)
            family.set_times[tag_values] = now
            family.version += 1
            self.version += 1

    def observe(self, name: str, tag_values: tuple[str, ...], value: float) -> None:
        with self._lock:
            family = self._families[name]
            family.version += 1
            self.version += 1
            histogram = family.histograms.get(tag_values)
            if histogram is None:
                histogram = family.histograms[tag_values] = _Histogram([0] * (len(family.boundaries) + 1))
            histogram.bucket_counts[bisect.bisect_left(family.boundaries, value)] += 1
            histogram.count += 1
            histogram.sum += value

    def snapshot(self) -> list[MetricFamily]:
        """Every family declared in this process, with its series, sorted by name."""
        with self._lock:
            return [_freeze(name, family) for name, family in sorted(self._families.items())]

    def changes(self, seen: dict[str, int]) -> list[MetricFamily]:
        """The families changed since the versions in `seen` (name -> version,
        updated here), whole, sorted by name."""
        with self._lock:
            changed = []
            for name, family in sorted(self._families.items()):
                if seen.get(name) != family.version:
                    seen[name] = family.version
                    changed.append(_freeze(name, family))
            return changed


def _freeze(name: str, family: _Family) -> MetricFamily:
    def tags(values: tuple[str, ...]) -> Tags:
        return tuple(zip(family.tag_keys, values))

    series: tuple[ValueSeries, ...] | tuple[HistogramSeries, ...]
    if family.kind is MetricKind.HISTOGRAM:
        series = tuple(HistogramSeries(tags(k), tuple(h.bucket_counts), h.count, h.sum)
                       for k, h in sorted(family.histograms.items()))
    else:
        series = tuple(ValueSeries(tags(k), v, family.set_times.get(k, 0.0)) for k, v in sorted(family.values.items()))
    return MetricFamily(name, family.description, family.kind, family.tag_keys, family.boundaries, series)


def _boundaries_text(boundaries: tuple[float, ...]) -> str:
    return f" and boundaries {list(boundaries)}" if boundaries else ""


REGISTRY = Registry()


def snapshot() -> list[MetricFamily]:
    """This process's metrics (see Registry.snapshot)."""
    return REGISTRY.snapshot()
