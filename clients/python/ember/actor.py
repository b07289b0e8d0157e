"""Actor helpers of the public API (`ember.actor.exit_actor()`), as in Ray."""

from ember._private.actor import ActorClass, ActorHandle, ActorMethod, exit_actor

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "exit_actor"]
