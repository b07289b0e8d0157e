"""The autoscaler's rounds over the GCS tables in memory, without sockets: a
launch is stored before the provider is asked, a new leader over the same
storage launches nothing twice, failures back off and are given up, a node
that never registers times out, idle nodes are drained and stopped. The
provider here is a recording one (the interface's contract, in memory)."""

from __future__ import annotations

import asyncio
import time

from ember.v1 import autoscaler_pb2, gcs_pb2

from ember_autoscaler import config as cfg
from ember_autoscaler.autoscaler import Autoscaler
from ember_autoscaler.demand import REQUEST_KEY, REQUEST_NAMESPACE, DemandBoard
from ember_autoscaler.instance_table import InstanceTable
from ember_autoscaler.provider import INSTANCE_LABEL, NODE_TYPE_LABEL, Launched, LaunchError, LaunchRequest, NodeProvider
from ember_gcs.actor_table import ActorTable
from ember_gcs.job_table import JobTable
from ember_gcs.kv_table import KvTable
from ember_gcs.membership import ClusterMembership
from ember_gcs.node_table import NodeTable
from ember_gcs.placement_group_table import PlacementGroupTable
from ember_gcs.storage import MemoryStorage
from tests.unit.test_placement import Raylets

State = autoscaler_pb2.AutoscalerInstance.State
HEAD = b"h" * 16


class RecordingProvider(NodeProvider):
    name = "recording"

    def __init__(self, fail: str = "") -> None:
        self.created: list[LaunchRequest] = []
        self.terminated: list[str] = []
        self.stored_at_create: list[bool] = []
        self.fail = fail
        self.instances: InstanceTable | None = None

    async def create_node(self, request: LaunchRequest) -> Launched:
        assert self.instances is not None
        self.stored_at_create.append(self.instances.get(request.instance_id) is not None)
        self.created.append(request)
        if self.fail:
            raise LaunchError(self.fail)
        return Launched(provider_id=f"p-{request.instance_id}")

    async def terminate_node(self, provider_id: str, node_id: bytes) -> None:
        self.terminated.append(provider_id)

    async def non_terminated_nodes(self) -> list[str]:
        return [f"p-{r.instance_id}" for r in self.created]


class Gcs:
    """The GCS tables in memory, a head with 1 CPU, and an autoscaler."""

    def __init__(self, raw: dict, storage: MemoryStorage | None = None, provider: RecordingProvider | None = None,
                 evacuate_left: int = 0) -> None:
        self.storage = storage or MemoryStorage()
        self.nodes = NodeTable(self.storage, 10.0)
        self.actors = ActorTable(self.storage)
        self.kv = KvTable(self.storage)
        self.groups = PlacementGroupTable(self.storage, self.nodes, Raylets())
        self.membership = ClusterMembership(self.nodes, JobTable(self.storage), self.actors, self.groups)
        self.instances = InstanceTable(self.storage)
        self.board = DemandBoard()
        self.provider = provider or RecordingProvider()
        self.provider.instances = self.instances
        self.evacuate_left = evacuate_left
        self.config = cfg.parse(raw)
        self.autoscaler = Autoscaler(self.config, self.provider, self.instances, self.nodes, self.groups, self.kv,
                                     self.actors, self.membership, self.board, lambda: "127.0.0.1:1", self._evacuate)

    async def _evacuate(self, node_id: bytes, others: list) -> int:
        return self.evacuate_left

    async def load(self) -> None:
        """As a GCS does at start or takeover: every table from storage."""
        for table in (self.nodes, self.kv, self.actors, self.groups, self.instances):
            table.restore(await self.storage.load(table.table))

    async def add_node(self, node_id: bytes, total: dict, labels: dict | None = None) -> None:
        info = gcs_pb2.NodeInfo(node_id=node_id, node_address="127.0.0.1", raylet_port=1, labels=labels or {})
        info.total.amounts.update(total)
        await self.nodes.register(info)

    async def register_launched(self, request: LaunchRequest, node_id: bytes) -> None:
        await self.add_node(node_id, request.node_type.resources, request.labels)

    def queue(self, node_id: bytes, shape: dict, count: int) -> None:
        demand = autoscaler_pb2.ResourceDemand(count=count)
        demand.shape.amounts.update(shape)
        self.board.report(node_id, [demand])

    async def settle(self) -> None:
        """Let the launches and removals the last round started finish."""
        for _ in range(50):
            await asyncio.sleep(0)
        while self.autoscaler._busy:
            await asyncio.sleep(0.01)


ACCEL = {"provider": {"type": "local", "launch_backoff_s": 0.05, "max_launch_failures": 3, "launch_timeout_s": 0.3},
         "max_workers": 2, "idle_timeout_minutes": 0.001,
         "available_node_types": {"accel": {"resources": {"CPU": 1, "accel": 1}, "max_workers": 2}}}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_launch_is_stored_before_the_provider_is_asked_and_matched_by_its_label():
    async def body() -> None:
        gcs = Gcs(ACCEL)
        await gcs.add_node(HEAD, {"CPU": 1})
        gcs.queue(HEAD, {"accel": 1}, 1)
        decision = await gcs.autoscaler.step()
        assert decision.launches == {"accel": 1}
        await gcs.settle()
        assert gcs.provider.stored_at_create == [True]
        (request,) = gcs.provider.created
        assert request.labels[NODE_TYPE_LABEL] == "accel" and request.labels[INSTANCE_LABEL] == request.instance_id
        (inst,) = gcs.instances.all()
        assert inst.state == State.LAUNCHING and inst.provider_id == f"p-{request.instance_id}"
        await gcs.autoscaler.step()
        assert len(gcs.provider.created) == 1  # launching: counted as room, not launched again
        await gcs.register_launched(request, b"n" * 16)
        await gcs.autoscaler.step()
        (inst,) = gcs.instances.all()
        assert inst.state == State.RUNNING and inst.node_id == b"n" * 16

    run(body())


def test_a_new_leader_over_the_same_storage_launches_nothing_twice():
    async def body() -> None:
        first = Gcs(ACCEL)
        await first.add_node(HEAD, {"CPU": 1})
        first.queue(HEAD, {"accel": 1}, 2)
        await first.autoscaler.step()
        await first.settle()
        assert len(first.provider.created) == 2
        # The leader dies; a standby loads the tables and hears the same demand.
        second = Gcs(ACCEL, storage=first.storage)
        await second.load()
        second.queue(HEAD, {"accel": 1}, 2)
        for _ in range(3):
            await second.autoscaler.step()
        assert second.provider.created == []
        # The first leader's nodes register with the new one: matched, not relaunched.
        for i, request in enumerate(first.provider.created):
            await second.register_launched(request, bytes([i + 1]) * 16)
        await second.autoscaler.step()
        assert sorted(i.state for i in second.instances.all()) == [State.RUNNING, State.RUNNING]
        assert second.provider.created == []

    run(body())


def test_failed_launches_back_off_doubling_then_are_given_up():
    async def body() -> None:
        gcs = Gcs(ACCEL, provider=RecordingProvider(fail="no capacity"))
        await gcs.add_node(HEAD, {"CPU": 1})
        gcs.queue(HEAD, {"accel": 1}, 1)
        times = []
        deadline = time.monotonic() + 5
        while not gcs.autoscaler.status().node_types[0].gave_up:
            before = len(gcs.provider.created)
            await gcs.autoscaler.step()
            await gcs.settle()
            if len(gcs.provider.created) > before:
                times.append(time.monotonic())
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert len(times) == 3 and not gcs.instances.all()  # failed launches are not kept
        assert times[2] - times[1] >= 0.1 - 0.01 and times[1] - times[0] >= 0.05 - 0.01
        status = gcs.autoscaler.status()
        assert status.node_types[0].failed_launches == 3 and status.node_types[0].last_failure == "no capacity"
        for _ in range(5):
            await gcs.autoscaler.step()
        assert len(gcs.provider.created) == 3
        assert [u.reason for u in gcs.autoscaler.last.unmet] == ["launches of node type accel are backing off "
                                                                  "after failures"]

    run(body())


def test_a_node_that_never_registers_is_a_failed_launch_and_is_stopped():
    async def body() -> None:
        gcs = Gcs(ACCEL)
        await gcs.add_node(HEAD, {"CPU": 1})
        gcs.queue(HEAD, {"accel": 1}, 1)
        await gcs.autoscaler.step()
        await gcs.settle()
        (request,) = gcs.provider.created
        gcs.board.report(HEAD, [])
        await asyncio.sleep(0.35)  # past launch_timeout_s
        await gcs.autoscaler.step()
        await gcs.settle()
        assert gcs.provider.terminated == [f"p-{request.instance_id}"] and not gcs.instances.all()
        assert gcs.autoscaler.status().node_types[0].failed_launches == 1

    run(body())


def test_idle_nodes_are_drained_then_stopped_and_kept_if_objects_cannot_move():
    async def body() -> None:
        gcs = Gcs(ACCEL, evacuate_left=1)
        await gcs.add_node(HEAD, {"CPU": 1})
        gcs.queue(HEAD, {"accel": 1}, 1)
        await gcs.autoscaler.step()
        await gcs.settle()
        (request,) = gcs.provider.created
        await gcs.register_launched(request, b"n" * 16)
        gcs.board.report(HEAD, [])
        await gcs.autoscaler.step()
        await asyncio.sleep(0.1)  # past the idle timeout (0.06 s)
        import ember_autoscaler.autoscaler as module

        module.DRAIN_TIMEOUT_S, saved = 0.05, module.DRAIN_TIMEOUT_S
        try:
            await gcs.autoscaler.step()
            await gcs.settle()
        finally:
            module.DRAIN_TIMEOUT_S = saved
        (inst,) = gcs.instances.all()
        assert inst.state == State.RUNNING and gcs.provider.terminated == []  # an object only there: kept
        assert any("could not be moved" in e for e in gcs.autoscaler.events)
        gcs.evacuate_left = 0
        await gcs.autoscaler.step()
        await asyncio.sleep(0.1)
        await gcs.autoscaler.step()
        await gcs.settle()
        assert gcs.provider.terminated == [f"p-{request.instance_id}"] and not gcs.instances.all()
        assert not any(n.alive for n in gcs.nodes.all() if n.node_id == b"n" * 16)

    run(body())


def test_a_request_in_the_kv_launches_and_a_bad_one_is_ignored():
    async def body() -> None:
        gcs = Gcs(ACCEL)
        await gcs.add_node(HEAD, {"CPU": 1})
        await gcs.kv.put(REQUEST_NAMESPACE, REQUEST_KEY, b"not json", True)
        assert (await gcs.autoscaler.step()).launches == {}
        await gcs.kv.put(REQUEST_NAMESPACE, REQUEST_KEY, b'{"bundles": [{"accel": 1}, {"accel": 1}]}', True)
        assert (await gcs.autoscaler.step()).launches == {"accel": 2}
        await gcs.settle()
        assert len(gcs.autoscaler.status().requested_bundles) == 2

    run(body())


def test_demand_reported_late_for_a_node_that_just_registered_launches_no_second_node():
    async def body() -> None:
        gcs = Gcs(ACCEL)
        await gcs.add_node(HEAD, {"CPU": 1})
        gcs.queue(HEAD, {"CPU": 1, "accel": 1}, 1)
        await gcs.autoscaler.step()
        await gcs.settle()
        (request,) = gcs.provider.created
        await gcs.register_launched(request, b"n" * 16)
        await gcs.autoscaler.step()  # registered: RUNNING
        # The work moved there and fills it, but the head's last report still lists it as queued.
        empty = gcs_pb2.NodeInfo().available
        await gcs.nodes.report(b"n" * 16, empty, [])
        await gcs.autoscaler.step()
        assert len(gcs.provider.created) == 1
        # Or it queues there (a worker starting), and both reports count it.
        await gcs.nodes.report(b"n" * 16, gcs.nodes.alive()[-1].total, [])
        gcs.queue(b"n" * 16, {"CPU": 1, "accel": 1}, 1)
        await gcs.autoscaler.step()
        assert len(gcs.provider.created) == 1

    run(body())
