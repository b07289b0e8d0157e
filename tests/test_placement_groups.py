"""Placement groups on a real multi-node cluster: each strategy, the
all-or-nothing reservation, scheduling tasks and actors into bundles,
removal, infeasible groups, and a node leaving."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import ember
from ember.cluster_utils import Cluster
from ember.util import get_placement_group, placement_group, placement_group_table, remove_placement_group
from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tests.conftest import added_nodes, multinode_cluster
from tests.helpers import wait_until


@pytest.fixture(scope="module")
def cluster():
    with multinode_cluster({"num_cpus": 2}, {"num_cpus": 2}) as (c, (other,)):
        yield c, other


@ember.remote(num_cpus=1)
def where() -> str:
    return ember.get_runtime_context().get_node_id()


def _in(pg, index=-1, fn=where):
    return fn.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, index))


def _cli(c: Cluster, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "ember._private.cli", *args, "--address", c.address],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "EMBER_AUTH_TOKEN": c.token})
    assert out.returncode == 0, out.stderr
    return out.stdout


def _nodes_of(pg) -> list[str]:
    return list(placement_group_table(pg)["bundles_to_node_id"].values())


def _free_cpus(expected: float = 4) -> float:
    deadline = time.monotonic() + 5
    while True:  # resource reports lag by up to half a second
        free = ember.available_resources().get("CPU", 0)
        if free == expected or time.monotonic() > deadline:
            return free
        time.sleep(0.1)


@pytest.mark.parametrize("strategy, distinct", [("STRICT_SPREAD", 2), ("SPREAD", 2), ("STRICT_PACK", 1), ("PACK", 1)])
def test_each_strategy_places_bundles_and_tasks_follow_them(cluster, strategy, distinct):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy=strategy)
    try:
        assert pg.wait(10), placement_group_table(pg)
        table = placement_group_table(pg)
        assert table["state"] == "CREATED" and table["strategy"] == strategy
        nodes = _nodes_of(pg)
        assert len(set(nodes)) == distinct
        assert [ember.get(_in(pg, i).remote()) for i in range(2)] == nodes
        assert ember.get(_in(pg).remote()) in nodes  # any bundle
    finally:
        remove_placement_group(pg)
    assert placement_group_table(pg)["state"] == "REMOVED"
    assert _free_cpus() == 4  # every bundle given back


def test_pack_spans_nodes_only_when_one_cannot_hold_it(cluster):
    pg = placement_group([{"CPU": 2}, {"CPU": 1}], strategy="PACK")
    try:
        assert pg.wait(10)
        assert len(set(_nodes_of(pg))) == 2
    finally:
        remove_placement_group(pg)


def test_reservation_is_all_or_nothing_and_waits_for_room(cluster):
    c, other = cluster

    @ember.remote(num_cpus=1)
    def hold(seconds: float) -> None:
        time.sleep(seconds)

    busy = [hold.remote(3) for _ in range(2)]  # one CPU busy on each node, or two on one
    # Placement uses the GCS's view of free CPUs: wait until both holds show in it.
    wait_until(lambda: ember.available_resources().get("CPU", 0) == 2, 10, "the holds running", interval=0.02)
    pg = placement_group([{"CPU": 2}, {"CPU": 2}], strategy="STRICT_SPREAD")
    try:
        assert not pg.wait(1.0)
        table = placement_group_table(pg)
        assert table["state"] == "PENDING" and table["bundles_to_node_id"] == {}
        assert "waiting" in table["pending_reason"] or "could not reserve" in table["pending_reason"]
        ember.get(busy)
        assert pg.wait(15)
        assert sorted(_nodes_of(pg)) == sorted([c.head_node.node_id.hex(), other.node_id.hex()])
        assert _free_cpus(expected=0) == 0  # both nodes' CPUs are the group's now
    finally:
        remove_placement_group(pg)
    assert _free_cpus() == 4


def test_an_infeasible_group_says_so_and_is_created_when_a_node_joins(cluster):
    c, _other = cluster
    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD", name="three")
    node = None
    try:
        assert not pg.wait(1.5)
        assert placement_group_table(pg)["pending_reason"] == "no set of alive nodes can ever hold it"
        assert get_placement_group("three") == pg
        listed = _cli(c, "list", "placement-groups")
        assert "three" in listed and "STRICT_SPREAD" in listed and "no set of alive nodes" in listed
        node = c.add_node(num_cpus=1)
        assert pg.wait(20)
        assert node.node_id.hex() in _nodes_of(pg)
    finally:
        remove_placement_group(pg)
        if node is not None:
            c.remove_node(node)
    with pytest.raises(ValueError, match="no placement group named"):
        get_placement_group("three")


def test_actors_run_in_their_bundle(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    try:
        assert pg.wait(10)

        @ember.remote(num_cpus=1)
        class Where:
            def node(self) -> str:
                return ember.get_runtime_context().get_node_id()

        actors = [Where.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, i)).remote() for i in (1, 0)]
        assert [ember.get(a.node.remote()) for a in actors] == list(reversed(_nodes_of(pg)))
        for a in actors:
            ember.kill(a)
    finally:
        remove_placement_group(pg)


def test_a_group_on_a_node_that_leaves_is_reserved_again(cluster):
    c, _other = cluster
    with added_nodes(c, {"num_cpus": 1, "resources": {"spot": 1}}) as (node,):
        pg = placement_group([{"CPU": 1}, {"CPU": 1, "spot": 1}], strategy="SPREAD")
        assert pg.wait(10) and _nodes_of(pg)[1] == node.node_id.hex()
        c.remove_node(node)
        wait_until(lambda: placement_group_table(pg)["state"] == "PENDING", 10, "the group pending again")
        assert "died" in placement_group_table(pg)["pending_reason"] or \
            placement_group_table(pg)["pending_reason"] == "no set of alive nodes can ever hold it"
        remove_placement_group(pg)
    assert _free_cpus() == 4


def test_bad_placement_groups_are_refused(cluster):
    with pytest.raises(ValueError, match="strategy"):
        placement_group([{"CPU": 1}], strategy="TIGHT")
    with pytest.raises(ValueError, match="bundle 0"):
        placement_group([{}])
    with pytest.raises(ValueError, match="bundles"):
        placement_group([])
    pg = placement_group([{"CPU": 1}])
    try:
        with pytest.raises(ValueError, match="bundle_index"):
            PlacementGroupSchedulingStrategy(pg, 3)
    finally:
        remove_placement_group(pg)


def test_bundles_no_group_holds_are_returned(cluster):
    """What a GCS leader that died between the two phases leaves behind: a
    bundle prepared on a raylet (here straight through the raylet's RPC, as
    that leader sent it) for a group the cluster does not have. The raylet
    reports it; the GCS has it returned and the CPU is free again."""
    from ember.v1 import common_pb2, raylet_pb2, raylet_pb2_grpc

    from ember_common import rpc

    c, _other = cluster
    head = next(n for n in ember.nodes() if n["NodeID"] == c.head_node.node_id.hex())
    stub = raylet_pb2_grpc.RayletStub(rpc.channel(f"{head['NodeManagerAddress']}:{head['NodeManagerPort']}", c.token))
    bundle = raylet_pb2.Bundle(placement_group_id=os.urandom(16), index=0,
                               resources=common_pb2.ResourceSet(amounts={"CPU": 1}))
    def free_here() -> float:
        return stub.GetNodeStats(raylet_pb2.GetNodeStatsRequest(), timeout=5).available.amounts["CPU"]

    before = free_here()
    reply = stub.PrepareBundles(raylet_pb2.BundlesRequest(bundles=[bundle]), timeout=5)
    assert reply.ok, reply.reason
    assert free_here() == before - 1
    deadline = time.monotonic() + 5  # a report every half second, then the GCS's ReturnBundles
    while free_here() != before:
        assert time.monotonic() < deadline, "the stray bundle was never returned"
        time.sleep(0.1)
    assert _free_cpus() == 4


@ember.remote(num_cpus=1)
def group_of_child() -> "str | None":
    from ember.util import get_current_placement_group

    pg = get_current_placement_group()
    return pg.id.hex() if pg is not None else None


@ember.remote(num_cpus=1)
def spawns_children() -> tuple:
    from ember.util import get_current_placement_group

    pg = get_current_placement_group()
    return (pg.id.hex() if pg is not None else None, ember.get_runtime_context().get_assigned_resources(),
            ember.get(group_of_child.remote()), ember.get(group_of_child.options(scheduling_strategy="DEFAULT").remote()))


def test_child_tasks_stay_in_a_capturing_group_unless_they_say_otherwise(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}])
    try:
        assert pg.wait(30)
        captured = PlacementGroupSchedulingStrategy(pg, 0, placement_group_capture_child_tasks=True)
        own, held, child, default_child = ember.get(spawns_children.options(scheduling_strategy=captured).remote(),
                                                    timeout=60)
        assert own == pg.id.hex() and held == {"CPU": 1.0}  # plain names, as Ray
        assert child == pg.id.hex() and default_child is None
        # Without capture the child runs outside; Ray's older options say the same.
        assert ember.get(_in(pg, 0, spawns_children).remote(), timeout=60)[2] is None
        old_style = spawns_children.options(placement_group=pg, placement_group_capture_child_tasks=True)
        assert ember.get(old_style.remote(), timeout=60)[2] == pg.id.hex()
        from ember.util import get_current_placement_group

        assert get_current_placement_group() is None
    finally:
        remove_placement_group(pg)
