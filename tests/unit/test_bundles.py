"""Placement group bundles on one node: reserved all or none, committed
into the group's own resources, and given back."""

from ember.v1 import common_pb2, raylet_pb2

from ember_common import ids, placement
from ember_raylet.bundles import BundleReservations


def bundle(group, index, cpus):
    return raylet_pb2.Bundle(placement_group_id=group, index=index,
                             resources=common_pb2.ResourceSet(amounts={"CPU": cpus}))


def test_bundles_are_reserved_all_or_none_then_committed_and_given_back():
    total, available = {"CPU": 4.0}, {"CPU": 4.0}
    held = BundleReservations(total, available)
    group = ids.new_unique_id()
    too_many = [bundle(group, 0, 2), bundle(group, 1, 3)]
    assert "needs" in held.prepare(too_many) and available == {"CPU": 4.0} and not held.held
    both = [bundle(group, 0, 2), bundle(group, 1, 1)]
    assert held.prepare(both) is None and available == {"CPU": 1.0}
    assert held.prepare(both) is None and available == {"CPU": 1.0}  # again: nothing more reserved
    assert held.commit(both) and not held.commit(both)  # the second time changes nothing
    group_cpu = "CPU_group_" + group.hex()  # (the group's whole: both bundles')
    assert total[group_cpu] == available[group_cpu] == 3.0
    first = placement.bundle_resources(group.hex(), 0, {"CPU": 2.0})
    assert all(total[name] == amount for name, amount in first.items() if "_0_" in name)
    held.give_back(both)
    assert total == {"CPU": 4.0} and available == {"CPU": 4.0} and not held.held


def test_an_uncommitted_bundle_given_back_frees_only_what_it_reserved():
    total, available = {"CPU": 2.0}, {"CPU": 2.0}
    held = BundleReservations(total, available)
    b = bundle(ids.new_unique_id(), 0, 1)
    assert held.prepare([b]) is None and available == {"CPU": 1.0} and len(held.held) == 1
    held.give_back([b, bundle(ids.new_unique_id(), 0, 1)])  # (one never held here)
    assert total == {"CPU": 2.0} and available == {"CPU": 2.0} and not held.held
