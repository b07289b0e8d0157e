"""Utilities of the public API, as in Ray's `ray.util`."""

from ember.util import scheduling_strategies
from ember.util.actor_pool import ActorPool

__all__ = ["ActorPool", "scheduling_strategies"]
