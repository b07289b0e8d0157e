"""Placement groups without sockets: the bundle placement policy, the
GCS table's two phases against raylets' answers, and a raylet's bundles
turning into resources and back."""

import asyncio

from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember_gcs import placement_policy as policy
from ember_gcs.node_table import NodeTable
from ember_gcs.placement_group_table import PlacementGroupTable
from ember_gcs.storage import MemoryStorage
from tests.unit.test_node_manager import executed, make, spec, submit

A, B, C = b"a" * 16, b"b" * 16, b"c" * 16
Group = gcs_pb2.PlacementGroupInfo


def test_policy_per_strategy():
    two = [{"CPU": 1}, {"CPU": 1}]
    nodes = {A: {"CPU": 4}, B: {"CPU": 2}}
    assert policy.assign(two, policy.PACK, nodes) == [A, A]
    assert policy.assign(two, policy.STRICT_PACK, nodes) == [A, A]
    assert sorted(policy.assign(two, policy.SPREAD, nodes)) == [A, B]
    assert sorted(policy.assign(two, policy.STRICT_SPREAD, nodes)) == [A, B]
    three = [{"CPU": 1}] * 3
    assert policy.assign(three, policy.STRICT_SPREAD, nodes) is None
    assert sorted(policy.assign(three, policy.SPREAD, nodes)) == [A, A, B]
    big = [{"CPU": 3}, {"CPU": 2}]
    assert policy.assign(big, policy.STRICT_PACK, nodes) is None
    assert policy.assign(big, policy.PACK, nodes) == [A, B]
    assert policy.assign([{"GPU": 1}], policy.PACK, nodes) is None


class Raylets:
    """The raylet side as the table sees it: answers per node, calls recorded."""

    def __init__(self, refuse=()):
        self.refuse = set(refuse)
        self.calls = []

    async def prepare(self, node, bundles):
        self.calls.append(("prepare", node.node_id, [b.index for b in bundles]))
        return "no room" if node.node_id in self.refuse else None

    async def commit(self, node, bundles):
        self.calls.append(("commit", node.node_id, [b.index for b in bundles]))

    async def give_back(self, node, bundles):
        self.calls.append(("return", node.node_id, [b.index for b in bundles]))


def _table(raylets, cpus=(2, 2)):
    storage = MemoryStorage()
    nodes = NodeTable(storage, 10)
    for node_id, n in zip((A, B), cpus):
        info = gcs_pb2.NodeInfo(node_id=node_id, node_address="127.0.0.1", raylet_port=1)
        info.total.amounts["CPU"] = n
        asyncio.run(nodes.register(info))
    return PlacementGroupTable(storage, nodes, raylets), storage


def _group(strategy=Group.STRICT_SPREAD, n=2):
    g = Group(placement_group_id=C, strategy=strategy)
    for _ in range(n):
        g.bundles.append(common_pb2.ResourceSet(amounts={"CPU": 1}))
    return g


def test_two_phases_commit_only_when_every_node_prepared():
    raylets = Raylets()
    table, storage = _table(raylets)

    async def run():
        await table.create(_group())
        await table.schedule()

    asyncio.run(run())
    assert [c[0] for c in raylets.calls] == ["prepare", "prepare", "commit", "commit"]
    stored = Group.FromString(asyncio.run(storage.load("placement_groups"))[C])
    assert stored.state == Group.CREATED and sorted(stored.bundle_nodes) == [A, B]


def test_a_refused_prepare_returns_the_others_and_stays_pending():
    raylets = Raylets(refuse={B})
    table, _ = _table(raylets)

    async def run():
        await table.create(_group())
        await table.schedule()

    asyncio.run(run())
    assert ("return", A, [0]) in raylets.calls or ("return", A, [1]) in raylets.calls
    assert not [c for c in raylets.calls if c[0] == "commit"]
    group = table.get(C)
    assert group.state == Group.PENDING and "could not reserve" in group.pending_reason


def test_a_node_death_sends_its_groups_back_to_pending():
    raylets = Raylets()
    table, _ = _table(raylets)

    async def run():
        await table.create(_group())
        await table.schedule()
        await table.node_died(A)

    asyncio.run(run())
    assert table.get(C).state == Group.PENDING
    assert raylets.calls[-1][0:2] == ("return", B)  # the survivor gives its bundle back


def test_bundles_a_dead_leader_left_half_done_are_settled_from_reports():
    """A raylet reports bundles the table disagrees with: prepared for a
    group still pending or removed, prepared but never committed for one
    created there, or placed elsewhere; each is committed or returned,
    and matching reports cost no call."""
    raylets = Raylets()
    table, _ = _table(raylets)
    Held = gcs_pb2.HeldBundle
    other = b"d" * 16

    async def run():
        await table.create(_group())
        await table.schedule()  # created: one bundle on A, one on B
        a_index = list(table.get(C).bundle_nodes).index(A)
        raylets.calls.clear()
        table.settle(A, [Held(placement_group_id=C, index=a_index, committed=True)])
        assert not table._settling and not raylets.calls  # it matches

        await table.create(Group(placement_group_id=other, bundles=[common_pb2.ResourceSet(amounts={"CPU": 1})]))
        table.settle(A, [Held(placement_group_id=C, index=a_index, committed=False),  # created here, uncommitted
                         Held(placement_group_id=C, index=1 - a_index, committed=True),  # B's bundle
                         Held(placement_group_id=other, index=0),  # group still pending
                         Held(placement_group_id=b"e" * 16, index=3, committed=True)])  # unknown group
        await asyncio.gather(*table._settling.values())

    asyncio.run(run())
    a_index = list(table.get(C).bundle_nodes).index(A)
    assert raylets.calls[0] == ("commit", A, [a_index])
    assert raylets.calls[1][:2] == ("return", A) and sorted(raylets.calls[1][2]) == [0, 1 - a_index, 3]
    assert len(raylets.calls) == 2


def test_raylet_bundles_become_resources_and_go_back():
    nm, driver, (w1, w2), _ = make(cpus=2)
    bundle = raylet_pb2.Bundle(placement_group_id=C, index=0, resources=common_pb2.ResourceSet(amounts={"CPU": 1}))
    assert nm.prepare_bundles([bundle]) is None
    assert nm.available["CPU"] == 1
    too_big = raylet_pb2.Bundle(placement_group_id=C, index=1, resources=common_pb2.ResourceSet(amounts={"CPU": 2}))
    assert "needs" in nm.prepare_bundles([too_big])
    nm.commit_bundles([bundle])
    group_cpu = f"CPU_group_0_{C.hex()}"
    assert nm.total[group_cpu] == 1 and nm.total[f"bundle_group_{C.hex()}"] == 1000
    s = spec(cpus=0)
    s.resources.amounts[group_cpu] = 1
    submit(nm, driver, s)
    assert len(executed(w1) + executed(w2)) == 1
    nm.return_bundles([bundle])
    assert group_cpu not in nm.total and nm.available["CPU"] == 2
    nm.return_bundles([bundle])  # idempotent
    assert nm.available["CPU"] == 2
