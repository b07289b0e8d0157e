"""The autoscaler's user-facing calls (Ray's `ray.autoscaler`): see `sdk`."""

from ember.autoscaler import sdk

__all__ = ["sdk"]
