"""Placement group bundles this node holds: reserved (two-phase: prepared,
then committed or returned) out of its free resources; a committed bundle
adds the group's own resources (`placement.bundle_resources`), which the
group's tasks ask for."""

from __future__ import annotations

from typing import Iterable

from ember.v1 import raylet_pb2

from ember_common import placement
from ember_raylet import resources
from ember_raylet.resources import Resources


class BundleReservations:
    def __init__(self, total: Resources, available: Resources) -> None:
        # This node's resources (the node manager's dicts, changed in place).
        self._total = total
        self._available = available
        # (group id, index) -> (resources, committed).
        self.held: dict[tuple[bytes, int], tuple[Resources, bool]] = {}

    def prepare(self, bundles: Iterable[raylet_pb2.Bundle]) -> str | None:
        """Reserve the bundles' resources, all or none; why not, or None."""
        fresh = [b for b in bundles if (b.placement_group_id, b.index) not in self.held]
        need: Resources = {}
        for b in fresh:
            resources.add(need, b.resources.amounts)
        if not resources.fits(need, self._available):
            return f"needs {resources.describe(need)}; free here: {resources.describe(self._available)}"
        for b in fresh:
            amounts = dict(b.resources.amounts)
            resources.subtract(self._available, amounts)
            self.held[(b.placement_group_id, b.index)] = (amounts, False)
        return None

    def commit(self, bundles: Iterable[raylet_pb2.Bundle]) -> bool:
        """Reserved bundles become resources tasks in the group ask for;
        True if any did (this node's totals changed)."""
        changed = False
        for b in bundles:
            key = (b.placement_group_id, b.index)
            held = self.held.get(key)
            if held is None or held[1]:
                continue
            self.held[key] = (held[0], True)
            derived = placement.bundle_resources(b.placement_group_id.hex(), b.index, held[0])
            resources.add(self._total, derived)
            resources.add(self._available, derived)
            changed = True
        return changed

    def give_back(self, bundles: Iterable[raylet_pb2.Bundle]) -> None:
        """The bundles' resources are free again (their group's are gone)."""
        total, available = self._total, self._available
        for b in bundles:
            held = self.held.pop((b.placement_group_id, b.index), None)
            if held is None:
                continue
            amounts, committed = held
            if committed:
                derived = placement.bundle_resources(b.placement_group_id.hex(), b.index, amounts)
                resources.subtract(total, derived)
                resources.subtract(available, derived)
                for name in derived:
                    if total.get(name, 0.0) <= 1e-9:
                        total.pop(name, None)
                        available.pop(name, None)
            resources.add(available, amounts)
