"""A node's death and a job's end across the GCS tables, without sockets:
the same consequences whether the raylet said goodbye or the health check
found it silent."""

import asyncio

from ember.v1 import common_pb2, gcs_pb2

from ember_common.errors import Unavailable
from ember_gcs.actor_table import ActorTable
from ember_gcs.job_table import JobTable
from ember_gcs.membership import ClusterMembership
from ember_gcs.node_table import NodeTable
from ember_gcs.placement_group_table import PlacementGroupTable
from ember_gcs.storage import MemoryStorage
from tests.unit.test_placement import Raylets

A, B = b"a" * 16, b"b" * 16
GROUP, DETACHED = b"g" * 16, b"d" * 16
Actor, Group = gcs_pb2.ActorInfo, gcs_pb2.PlacementGroupInfo
JOB = b"\0\0\0\1"


class Cluster:
    """Tables over memory, nodes A and B with 2 CPUs each."""

    def __init__(self, health_timeout_s=10.0, storage=None):
        storage = storage or MemoryStorage()
        self.raylets = Raylets()
        self.nodes = NodeTable(storage, health_timeout_s)
        self.jobs = JobTable(storage)
        self.actors = ActorTable(storage)
        self.groups = PlacementGroupTable(storage, self.nodes, self.raylets)
        self.membership = ClusterMembership(self.nodes, self.jobs, self.actors, self.groups)

    async def start(self):
        for node_id in (A, B):
            info = gcs_pb2.NodeInfo(node_id=node_id, node_address="127.0.0.1", raylet_port=1)
            info.total.amounts["CPU"] = 2
            await self.nodes.register(info)
        await self.jobs.add(gcs_pb2.AddJobRequest())

    async def actor(self, actor_id, node_id, owner, max_restarts=0):
        await self.actors.register(Actor(actor_id=actor_id, job_id=JOB, owner_node_id=owner,
                                         max_restarts=max_restarts))
        await self.actors.update(gcs_pb2.UpdateActorRequest(actor_id=actor_id, state=Actor.ALIVE, node_id=node_id))

    async def spread_group(self, group_id=GROUP, detached=False):
        bundles = [common_pb2.ResourceSet(amounts={"CPU": 1}) for _ in range(2)]
        await self.groups.create(Group(placement_group_id=group_id, job_id=JOB, strategy=Group.STRICT_SPREAD,
                                       bundles=bundles, detached=detached))
        await self.groups.schedule()
        assert self.groups.get(group_id).state == Group.CREATED


def _snapshot(cluster):
    """What the tables hold and what the raylets were asked, by value."""
    return ([a.SerializeToString() for a in cluster.actors.all()],
            [g.SerializeToString() for g in cluster.groups.all()], list(cluster.raylets.calls))


def _state(cluster, actor_id):
    return cluster.actors.get(actor_id).state


def test_a_raylet_leaving_takes_its_actors_and_bundles_with_it():
    cluster = Cluster()

    async def run():
        await cluster.start()
        await cluster.actor(b"1" * 16, A, owner=A)  # no restarts left: dies
        await cluster.actor(b"2" * 16, A, owner=B, max_restarts=1)  # lives on: its owner's raylet restarts it
        await cluster.actor(b"3" * 16, B, owner=A)  # elsewhere: untouched
        await cluster.spread_group()
        cluster.raylets.calls.clear()
        await cluster.membership.unregister_node(A, "raylet stopped")

    asyncio.run(run())
    assert [n.node_id for n in cluster.nodes.alive()] == [B]
    dead = cluster.actors.get(b"1" * 16)
    assert dead.state == Actor.DEAD and dead.death_cause == Actor.NODE_DIED
    assert _state(cluster, b"2" * 16) != Actor.DEAD  # left to its owner's raylet to restart
    assert _state(cluster, b"3" * 16) == Actor.ALIVE
    assert cluster.groups.get(GROUP).state == Group.PENDING
    assert [c[:2] for c in cluster.raylets.calls] == [("return", B)]  # the survivor gives its bundle back


def test_a_repeated_goodbye_changes_nothing_more():
    cluster = Cluster()

    async def run():
        await cluster.start()
        await cluster.actor(b"2" * 16, A, owner=B, max_restarts=1)
        await cluster.spread_group()
        await cluster.membership.unregister_node(A, "raylet stopped")
        before = _snapshot(cluster)
        await cluster.membership.unregister_node(A, "raylet stopped")
        return before

    assert asyncio.run(run()) == _snapshot(cluster)
    assert cluster.nodes.all()[0].death_reason == "raylet stopped"


def test_nodes_found_silent_die_with_the_same_consequences():
    cluster = Cluster(health_timeout_s=0)  # every node is silent at the first check

    async def run():
        await cluster.start()
        await cluster.actor(b"2" * 16, A, owner=B, max_restarts=1)  # its owner's node dies too
        await cluster.spread_group()
        await cluster.membership.check_health()

    asyncio.run(run())
    assert cluster.nodes.alive() == []
    assert all("health check" in n.death_reason for n in cluster.nodes.all())
    restarted = cluster.actors.get(b"2" * 16)
    assert restarted.state == Actor.DEAD and restarted.death_cause == Actor.NODE_DIED
    assert cluster.groups.get(GROUP).state == Group.PENDING


def test_a_report_answers_the_live_nodes_and_settles_bundles_no_group_holds():
    cluster = Cluster()

    async def run():
        await cluster.start()
        await cluster.membership.unregister_node(B, "raylet stopped")
        stray = gcs_pb2.HeldBundle(placement_group_id=GROUP, index=0, committed=True)
        reply = await cluster.membership.report(A, common_pb2.ResourceSet(amounts={"CPU": 1}), [],
                                                common_pb2.ResourceSet(), [stray])
        while not cluster.raylets.calls:  # settled in the background
            await asyncio.sleep(0)
        return gcs_pb2.ReportResourcesReply.FromString(reply).nodes

    alive = asyncio.run(run())
    assert [n.node_id for n in alive] == [A] and alive[0].available.amounts["CPU"] == 1
    assert cluster.raylets.calls == [("return", A, [0])]


def test_a_finished_job_takes_its_groups_but_not_the_detached_ones():
    cluster = Cluster()

    async def run():
        await cluster.start()
        await cluster.spread_group()
        await cluster.groups.create(Group(placement_group_id=DETACHED, job_id=JOB, detached=True,
                                          bundles=[common_pb2.ResourceSet(amounts={"CPU": 1})]))
        await cluster.membership.finish_job(JOB)

    asyncio.run(run())
    assert cluster.jobs.all()[0].is_dead
    assert cluster.groups.get(GROUP).state == Group.REMOVED
    assert cluster.groups.get(DETACHED).state == Group.PENDING


class _FlakyStorage(MemoryStorage):
    """Memory storage whose writes to one table fail while `down` (an etcd
    outage seen by that table alone)."""

    def __init__(self, table):
        super().__init__()
        self.table, self.down = table, False

    async def put(self, table, key, value):
        if self.down and table == self.table:
            raise Unavailable("etcd is away")
        await super().put(table, key, value)


def test_a_death_whose_consequences_failed_is_settled_at_the_next_check():
    storage = _FlakyStorage(ActorTable.table)
    cluster = Cluster(health_timeout_s=0, storage=storage)

    async def run():
        await cluster.start()
        await cluster.actor(b"2" * 16, A, owner=B)
        await cluster.actor(b"3" * 16, B, owner=A)
        storage.down = True
        await cluster.membership.check_health()  # both nodes dead; no actor can be updated
        stuck = [cluster.actors.get(a).state for a in (b"2" * 16, b"3" * 16)]
        storage.down = False
        await cluster.membership.check_health()  # names no node again, yet settles both
        return stuck

    assert asyncio.run(run()) == [Actor.ALIVE, Actor.ALIVE]
    assert cluster.nodes.alive() == []
    assert [cluster.actors.get(a).state for a in (b"2" * 16, b"3" * 16)] == [Actor.DEAD, Actor.DEAD]
