"""Scheduling strategies for `.options(scheduling_strategy=...)`, as in
Ray's `ray.util.scheduling_strategies`. Besides these objects a task takes
the strings "DEFAULT" and "SPREAD"."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Mapping

from ember_common import placement

if TYPE_CHECKING:
    from ember.util.placement_group import PlacementGroup


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


@dataclasses.dataclass(frozen=True)
class PlacementGroupSchedulingStrategy:
    """Run in a placement group's bundle `placement_group_bundle_index` (any
    bundle if -1), taking its resources from that bundle's reservation. The
    task waits while the group is not reserved yet. With
    `placement_group_capture_child_tasks=True` the tasks and actors it starts
    without a strategy of their own go into the group too (any bundle); None
    inherits that from the task submitting it."""

    placement_group: "PlacementGroup"
    placement_group_bundle_index: int = -1
    placement_group_capture_child_tasks: bool | None = None

    def __post_init__(self) -> None:
        from ember.util.placement_group import PlacementGroup

        if not isinstance(self.placement_group, PlacementGroup):
            raise ValueError(f"placement_group must be a PlacementGroup, got {self.placement_group!r}")
        index = self.placement_group_bundle_index
        if index < -1 or (index >= 0 and index >= self.placement_group.bundle_count):  # (-1 needs no bundle count)
            raise ValueError(f"placement_group_bundle_index must be -1..{self.placement_group.bundle_count - 1}, "
                             f"got {self.placement_group_bundle_index}")

    def task_request(self, shape: Mapping[str, float]) -> dict[str, float]:
        """The resource request moved into the group's bundle resources."""
        return placement.task_request(shape, self.placement_group.id.hex(), self.placement_group_bundle_index)


__all__ = ["NodeAffinitySchedulingStrategy", "PlacementGroupSchedulingStrategy"]
