"""What waits for resources, gathered by the GCS leader for the policy: the
shapes each raylet reports queued (with its resource report), placement
groups not placed yet, and the explicit request in the GCS KV
(`ember.autoscaler.sdk.request_resources`)."""

from __future__ import annotations

import collections
import json
import time
from typing import Iterable, Sequence

from ember.v1 import autoscaler_pb2, gcs_pb2

from ember_autoscaler.policy import Gang, Shape, Strategy
from ember_common import placement

# Where request_resources (clients/python/ember/autoscaler/sdk.py) keeps its request:
# one JSON value, {"bundles": [...]}, the last call's.
REQUEST_NAMESPACE = "ember_autoscaler"
REQUEST_KEY = b"resource_request"
# Distinct shapes kept per node (a node reports at most this many).
MAX_SHAPES_PER_NODE = 200


class DemandBoard:
    """Each node's last report of queued shapes (not stored: raylets say it
    every report, a new leader hears it within one)."""

    def __init__(self) -> None:
        self._by_node: dict[bytes, tuple[float, list[autoscaler_pb2.ResourceDemand]]] = {}

    def report(self, node_id: bytes, demand: Sequence[autoscaler_pb2.ResourceDemand]) -> None:
        self._by_node[node_id] = (time.monotonic(), list(demand[:MAX_SHAPES_PER_NODE]))

    def of(self, node_id: bytes) -> list[autoscaler_pb2.ResourceDemand]:
        return self._by_node.get(node_id, (0.0, []))[1]

    def shapes(self, alive: Iterable[bytes], skip: Iterable[bytes] = ()) -> dict[Shape, int]:
        """Queued shapes and their counts over the alive nodes but `skip` (a
        dead node's are dropped: its tasks are retried, and counted, elsewhere)."""
        alive = set(alive)
        for node_id in [n for n in self._by_node if n not in alive]:
            del self._by_node[node_id]
        skipped = set(skip)
        total: collections.Counter[Shape] = collections.Counter()
        for node_id, (_, demand) in self._by_node.items():
            if node_id in skipped:
                continue
            for d in demand:
                amounts = dict(d.shape.amounts)
                if d.count > 0 and not any(placement.is_group_resource(k) for k in amounts):
                    total[Shape.of(amounts, dict(d.label_selector))] += d.count
        return dict(total)


def pending_gangs(groups: Iterable[gcs_pb2.PlacementGroupInfo]) -> list[Gang]:
    strategies = {v: Strategy[name] for name, v in gcs_pb2.PlacementGroupInfo.Strategy.items()}
    return [Gang(g.name or g.placement_group_id.hex()[:8], tuple(Shape.of(dict(b.amounts)) for b in g.bundles),
                 strategies[g.strategy])
            for g in groups if g.state == gcs_pb2.PlacementGroupInfo.PENDING]


def decode_request(raw: bytes | None) -> list[Shape]:
    """The stored request's bundles ([] if none or unreadable: a bad value
    in the KV must not stop the autoscaler)."""
    if not raw:
        return []
    try:
        bundles = json.loads(raw)["bundles"]
        return [Shape.of({str(k): float(v) for k, v in b.items()}) for b in bundles if isinstance(b, dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
