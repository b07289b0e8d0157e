"""Application metrics, as Ray's `ray.util.metrics`: Counter, Gauge and
Histogram with tags, usable in the driver, tasks and actors.

    requests = Counter("requests", description="requests served", tag_keys=("route",))
    requests.inc(tags={"route": "/a"})
    latency = Histogram("latency_s", boundaries=[0.01, 0.1, 1.0])
    latency.observe(0.05)

Values are kept in the recording process (ember._private.metrics_registry)
and sent to its raylet when they change (at most every second), which
exports them on the node's /metrics under the name given here, aggregated
over the node's processes (docs/architecture.md, "Metrics"). Checks are
Ray's, plus three Ray leaves out: tags must be declared in tag_keys,
histogram boundaries must increase, and names starting with "ember_" or
"process_" (Ember's own and the standard process metrics) are refused."""

from __future__ import annotations

import warnings
from typing import Any

from ember._private.metrics_registry import REGISTRY, MetricKind
from ember_common import metric_names

__all__ = ["Counter", "Gauge", "Histogram"]


class Metric:
    """What Counter, Gauge and Histogram share: the name, the description,
    the declared tag keys and the default tags."""

    _kind: MetricKind

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"a metric name must be a string, got {type(name).__name__}")
        if not name:
            raise ValueError("Empty name is not allowed. Please provide a metric name.")
        if not isinstance(description, str):
            raise TypeError(f"description must be a string, got {type(description).__name__}")
        tag_keys = tag_keys or ()
        if not isinstance(tag_keys, tuple):
            raise TypeError(f"tag_keys should be a tuple type, got: {type(tag_keys)}")
        for key in tag_keys:
            if not isinstance(key, str):
                raise TypeError(f"Tag keys must be str, got {type(key)}.")
        self._name = name
        self._description = description
        self._tag_keys: tuple[str, ...] = tag_keys
        self._default_tags: dict[str, str] = {}
        # Ray's rule: a name Prometheus would refuse is warned about and its values dropped.
        if metric_names.reserved(name):
            raise ValueError(f"metric name {name!r} starts with one of {metric_names.RESERVED_PREFIXES}, kept for "
                             "Ember's own metrics and the standard process metrics: choose another name")
        self._discard = not metric_names.VALID_NAME.match(name)
        if self._discard:
            warnings.warn(f"Invalid metric name: {name}. Metric will be discarded and data will not be collected "
                          "or published. Metric names can only contain letters, numbers, _, and :. "
                          "Metric names cannot start with numbers.", UserWarning, stacklevel=3)
        elif ":" in name:
            warnings.warn(f"Metric name {name} contains a : character, which is no longer allowed. "
                          "Please migrate to the new metric name format. This will be an error in the future.",
                          FutureWarning, stacklevel=3)

    def _declare(self, boundaries: tuple[float, ...] = ()) -> None:
        if not self._discard:
            REGISTRY.declare(self._name, self._kind, self._description, self._tag_keys, boundaries)

    def set_default_tags(self, default_tags: dict[str, str]) -> "Metric":
        """Tags used by every record that does not give them; returns the metric."""
        for key, value in default_tags.items():
            if key not in self._tag_keys:
                raise ValueError(f"Unrecognized tag key {key}.")
            if not isinstance(value, str):
                raise TypeError(f"Tag values must be str, got {type(value)}.")
        self._default_tags = dict(default_tags)
        return self

    def _tag_values(self, tags: dict[str, str] | None) -> tuple[str, ...]:
        """The values of the declared tag keys, in their order: `tags` over the defaults."""
        final = self._default_tags
        if tags:
            for key, value in tags.items():
                if not isinstance(value, str):
                    raise TypeError(f"Tag values must be str, got {type(value)}.")
                if key not in self._tag_keys:
                    raise ValueError(f"Unrecognized tag key {key} for metric {self._name} "
                                     f"(declared tag_keys: {self._tag_keys}).")
            final = {**final, **tags}
        missing = [key for key in self._tag_keys if key not in final]
        if missing:
            raise ValueError(f"Missing value for tag key(s): {','.join(missing)}.")
        return tuple(final[key] for key in self._tag_keys)

    @property
    def info(self) -> dict[str, Any]:
        return {"name": self._name, "description": self._description, "tag_keys": self._tag_keys,
                "default_tags": self._default_tags}

    def __reduce__(self) -> Any:
        # Rebuilt (and declared) in the receiving process; its values stay here.
        return _rebuild, (type(self), self._constructor_args(), self._default_tags)

    def _constructor_args(self) -> tuple[Any, ...]:
        return self._name, self._description, self._tag_keys


def _rebuild(cls: type, args: tuple[Any, ...], default_tags: dict[str, str]) -> Metric:
    metric = cls(*args)
    metric._default_tags = default_tags  # checked when first set
    return metric


def _check_number(value: Any) -> None:
    if not isinstance(value, (int, float)):
        raise TypeError(f"value must be int or float, got {type(value)}.")


class Counter(Metric):
    """A total that only grows (Prometheus' counter)."""

    _kind = MetricKind.COUNTER

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)
        self._declare()

    def inc(self, value: int | float = 1.0, tags: dict[str, str] | None = None) -> None:
        """Add `value` (> 0) to the series of these tags."""
        _check_number(value)
        if value <= 0:
            raise ValueError(f"value must be >0, got {value}")
        if not self._discard:
            REGISTRY.add(self._name, self._tag_values(tags), float(value))


class Gauge(Metric):
    """The last value set (Prometheus' gauge): it may go up and down."""

    _kind = MetricKind.GAUGE

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)
        self._declare()

    def set(self, value: int | float | None, tags: dict[str, str] | None = None) -> None:
        """Set the series of these tags to `value` (None: no change)."""
        if value is None:
            return
        _check_number(value)
        if not self._discard:
            REGISTRY.set(self._name, self._tag_values(tags), value)


class Histogram(Metric):
    """Counts of observed values per bucket, with their sum (Prometheus'
    histogram). `boundaries` are the buckets' upper bounds: positive and
    increasing."""

    _kind = MetricKind.HISTOGRAM

    def __init__(self, name: str, description: str = "", boundaries: list[float] | None = None,
                 tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)
        if not boundaries:
            raise ValueError("boundaries argument should be provided when using the Histogram class. "
                             'e.g., Histogram("name", boundaries=[1.0, 2.0])')
        for i, boundary in enumerate(boundaries):
            if not isinstance(boundary, (int, float)) or boundary <= 0:
                raise ValueError(f"Invalid `boundaries` argument at index {i}, {boundaries}. "
                                 "Use positive values for the arguments.")
            if i and boundary <= boundaries[i - 1]:
                raise ValueError(f"Invalid `boundaries` argument at index {i}, {boundaries}. "
                                 "Boundaries must be increasing.")
        self.boundaries = list(boundaries)
        self._declare(tuple(float(b) for b in boundaries))

    def observe(self, value: int | float, tags: dict[str, str] | None = None) -> None:
        """Count `value` in its bucket of the series of these tags."""
        _check_number(value)
        if not self._discard:
            REGISTRY.observe(self._name, self._tag_values(tags), float(value))

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "boundaries": self.boundaries}

    def _constructor_args(self) -> tuple[Any, ...]:
        return self._name, self._description, self.boundaries, self._tag_keys
