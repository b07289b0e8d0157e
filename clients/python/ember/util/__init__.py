"""Utilities of the public API, as in Ray's `ray.util`."""

from ember.util.actor_pool import ActorPool

__all__ = ["ActorPool"]
