"""Scheduling strategies for `.options(scheduling_strategy=...)`, as in
Ray's `ray.util.scheduling_strategies`. Besides these objects a task takes
the strings "DEFAULT" and "SPREAD"."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class NodeAffinitySchedulingStrategy:
    """Run on the node `node_id` (hex, as `get_runtime_context().get_node_id()`
    and `ember.nodes()` give it). If that node is dead or cannot fit the task:
    with `soft=True` the task runs elsewhere, else it fails with
    `TaskUnschedulableError`."""

    node_id: str
    soft: bool = False

    def __post_init__(self) -> None:
        try:
            raw = bytes.fromhex(self.node_id)
        except (TypeError, ValueError):
            raw = b""
        if len(raw) != 16:
            raise ValueError(f"node_id must be a node's 32-character hex id, got {self.node_id!r}")


__all__ = ["NodeAffinitySchedulingStrategy"]
