"""The GCS's span of a traced placement group's scheduling (docs/tracing.md):
`placement group schedule`, from its CreatePlacementGroup to the moment
its bundles are reserved, a child of the context the creating call sent
(gRPC metadata `traceparent`). The contexts wait here, in memory (bounded),
while their groups are pending; a GCS that takes over the lead has none of
them (the groups are scheduled, untraced)."""

from __future__ import annotations

import time
from typing import Any

from ember_common import service_spans

# Pending traced groups remembered at most: past it, new ones go untraced.
MAX_PENDING = 10_000

# group id -> (traceparent, tracestate, creation time ns)
_pending: dict[bytes, tuple[str, str, int]] = {}


def requested(group_id: bytes, context: Any) -> None:
    """A CreatePlacementGroup call: remember its context if it carries a sampled one."""
    if service_spans.active is None or len(_pending) >= MAX_PENDING:
        return
    traceparent, tracestate = service_spans.incoming(context)
    if traceparent and service_spans.metadata(traceparent) is not None:
        _pending[group_id] = (traceparent, tracestate, time.time_ns())


def scheduled(group_id: bytes, nodes: list[bytes]) -> None:
    """The group's bundles are reserved on `nodes` (one per bundle)."""
    remembered = _pending.pop(group_id, None)
    spans = service_spans.active
    if remembered is None or spans is None:
        return
    traceparent, tracestate, start_ns = remembered
    span = spans.start(traceparent, "placement group schedule",
                       {"ember.placement_group_id": group_id.hex(), "ember.bundle_count": len(nodes),
                        "ember.node_ids": sorted({n.hex() for n in nodes})},
                       start_ns=start_ns, tracestate=tracestate)
    if span is not None:
        span.end()


def forget(group_id: bytes) -> None:
    """The group was removed before it was scheduled."""
    _pending.pop(group_id, None)
