"""Utilities of the public API, as in Ray's `ray.util`."""

from ember.util import scheduling_strategies
from ember.util.actor_pool import ActorPool
from ember.util.placement_group import (
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = ["ActorPool", "PlacementGroup", "get_current_placement_group", "get_placement_group", "placement_group", "placement_group_table",
           "remove_placement_group", "scheduling_strategies"]
