"""ember.timeline(): the cluster's recent task events as a Chrome trace."""

from __future__ import annotations

import json
from typing import Any


def timeline(filename: str | None = None, address: str | None = None) -> list[dict[str, Any]] | None:
    """Write the cluster's recent task events (every node's buffer) to
    `filename` as Chrome trace JSON (chrome://tracing, Perfetto); without a
    filename, return the trace events."""
    from ember.util.state import state_client
    from ember_common.chrome_trace import trace_events

    with state_client(address) as state:
        head = next((n.node_id.hex() for n in state.node_infos() if n.is_head and n.alive), "")
        events = trace_events(state.tasks(), head)
    if filename is None:
        return events
    with open(filename, "w") as f:
        json.dump(events, f)
    return None
