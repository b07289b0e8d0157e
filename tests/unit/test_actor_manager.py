"""The raylet's actor logic without sockets or processes: creation takes a
worker of its own, calls queue in order, deaths restart or end the actor
with a cause, and every change is reported for the GCS."""

import pytest
from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember import exceptions
from ember._private import serialization
from ember_common import ids
from ember_common.errors import ProtocolError
from ember_raylet.client_session import DRIVER, WORKER, ClientSession
from ember_raylet.node_manager import NodeManager
from ember_raylet.worker_pool import WorkerPool
from tests.unit.test_node_manager import FN, FakeProcess, executed

Actor = gcs_pb2.ActorInfo


class Node:
    def __init__(self, cpus=2):
        self.events = []
        self.looked_up = []
        self.pool = WorkerPool(lambda wid: FakeProcess(), max_workers=8)
        self.nm = NodeManager(ids.new_unique_id(), {"CPU": cpus}, self.pool, min_workers=cpus, pipeline_depth=4,
                              on_actor_event=self.events.append,
                              on_actor_lookup=lambda actor_id, delay: self.looked_up.append(actor_id))
        self.workers = {}
        self.connect_workers()
        self.driver = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\1", pid=42)
        self.nm.connect(self.driver)

    def connect_workers(self):
        self.nm.ensure_min_workers()
        for wid in list(self.pool.starting):
            s = ClientSession(ids.new_unique_id(), WORKER, worker_id=wid)
            self.workers[wid] = s
            self.nm.connect(s)

    def create(self, **options):
        actor_id = ids.new_unique_id()
        s = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=FN, function_name="C.__init__",
                                num_returns=1, actor_id=actor_id)
        s.actor_creation.CopyFrom(raylet_pb2.ActorCreation(actor_id=actor_id, class_name="C", max_concurrency=1,
                                                           **options))
        self.nm.handle_batch(self.driver, raylet_pb2.ClientBatch(submit=[s]))
        return s

    def call(self, actor_id, method="m"):
        s = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=FN, function_name=method, num_returns=1,
                                actor_id=actor_id, method_name=method)
        self.nm.handle_batch(self.driver, raylet_pb2.ClientBatch(submit=[s]))
        return s

    def host(self, creation):
        """The worker session the actor's creation was sent to."""
        for wid, session in self.workers.items():
            got = executed(session)
            if got:
                assert [e.spec.task_id for e in got] == [creation.task_id]
                return wid, session
        raise AssertionError("creation was not sent to any worker")

    def finish(self, session, task_id, app_error=False, actor_exit=False, message=""):
        ret = common_pb2.ObjectValue(object_id=ids.object_id_for(task_id, 1), data=b"v", is_error=app_error)
        self.nm.handle_batch(session, raylet_pb2.ClientBatch(results=[raylet_pb2.TaskResult(
            task_id=task_id, returns=[ret], application_error=app_error, actor_exit=actor_exit,
            error_message=message)]))

    def error_of(self, task_id):
        value = self.nm.objects.get(ids.object_id_for(task_id, 1))
        assert value is not None and value.is_error
        error, _ = serialization.deserialize(value.data)
        return error

    def states(self):
        return [(type(e).__name__, e.state if isinstance(e, gcs_pb2.UpdateActorRequest) else None) for e in self.events]


def test_creation_dedicates_a_worker_and_the_pool_refills():
    node = Node(cpus=2)
    creation = node.create()
    wid, host = node.host(creation)
    assert node.pool.workers[wid].actor_id == creation.actor_id
    assert node.pool.size == 2 - 1 + 1  # one more task worker is starting
    assert len(node.pool.starting) == 1
    assert node.nm.available["CPU"] == 2  # a default actor holds no CPU
    assert isinstance(node.events[0], gcs_pb2.RegisterActorRequest)


def test_calls_queue_until_alive_then_run_in_order_on_the_host():
    node = Node()
    creation = node.create()
    calls = [node.call(creation.actor_id) for _ in range(3)]
    wid, host = node.host(creation)
    assert executed(host) == []  # not alive yet
    node.finish(host, creation.task_id)
    assert [e.spec.task_id for e in executed(host)] == [c.task_id for c in calls]
    assert node.states()[-1] == ("UpdateActorRequest", Actor.ALIVE)
    for c in calls:
        node.finish(host, c.task_id)
    assert not node.nm.actors.actors[creation.actor_id].inflight


def test_crash_restarts_and_retries_per_max_task_retries():
    node = Node()
    creation = node.create(max_restarts=1, max_task_retries=1)
    wid, host = node.host(creation)
    node.finish(host, creation.task_id)
    call = node.call(creation.actor_id)
    executed(host)
    node.nm.worker_died(wid, "process exited with code 4")
    assert node.states()[-1] == ("UpdateActorRequest", Actor.RESTARTING)
    node.connect_workers()
    wid2, host2 = node.host(creation)  # the constructor runs again
    node.finish(host2, creation.task_id)
    assert [e.spec.task_id for e in executed(host2)] == [call.task_id]  # the cut-off call, retried
    node.nm.worker_died(wid2, "process exited with code 4")  # no restarts left
    err = node.error_of(call.task_id)
    assert isinstance(err, exceptions.ActorDiedError) and "after 1 restart" in str(err)
    update = node.events[-1]
    assert update.state == Actor.DEAD and update.death_cause == Actor.WORKER_DIED and update.num_restarts == 1
    later = node.call(creation.actor_id)
    assert "is dead" in str(node.error_of(later.task_id))


def test_constructor_error_ends_the_actor_with_its_message():
    node = Node()
    creation = node.create(max_restarts=3)
    call = node.call(creation.actor_id)
    wid, host = node.host(creation)
    node.finish(host, creation.task_id, app_error=True, message="ValueError: bad")
    assert node.pool.workers.get(wid) is None  # its worker was ended
    update = node.events[-1]
    assert update.death_cause == Actor.CREATION_FAILED and "ValueError: bad" in update.death_message
    assert "ValueError: bad" in str(node.error_of(call.task_id))


def test_owner_exit_ends_owned_actors_but_not_detached_ones():
    node = Node(cpus=3)
    owned = node.create()
    detached = node.create(detached=True, name="d")
    node.nm.disconnect(node.driver)
    causes = {e.actor_id: e.death_cause for e in node.events if isinstance(e, gcs_pb2.UpdateActorRequest)}
    assert causes[owned.actor_id] == Actor.OWNER_DIED
    assert detached.actor_id not in causes
    assert node.nm.actors.actors[detached.actor_id].state != Actor.DEAD


def test_out_of_scope_waits_for_pending_calls():
    node = Node()
    creation = node.create(scoped=True)
    wid, host = node.host(creation)
    node.finish(host, creation.task_id)
    call = node.call(creation.actor_id)
    executed(host)
    ready = ids.object_id_for(creation.task_id, 1)
    node.nm.handle_batch(node.driver, raylet_pb2.ClientBatch(remove_refs=[ready]))
    assert node.nm.actors.actors[creation.actor_id].state == Actor.ALIVE  # a call is running
    node.finish(host, call.task_id)
    assert node.events[-1].death_cause == Actor.OUT_OF_SCOPE


def test_kill_and_exit():
    node = Node(cpus=3)
    a = node.create(max_restarts=5)
    node.nm.handle_batch(node.driver, raylet_pb2.ClientBatch(kill_actors=[raylet_pb2.KillActor(
        actor_id=a.actor_id, no_restart=True)]))
    assert node.events[-1].death_cause == Actor.KILLED  # killed before it was even placed
    b = node.create(max_restarts=5)
    wid, host = node.host(b)
    node.finish(host, b.task_id)
    call = node.call(b.actor_id)
    executed(host)
    node.finish(host, call.task_id, actor_exit=True)
    assert node.events[-1].death_cause == Actor.EXITED


def test_an_actor_created_for_another_node_tells_it_when_it_ends():
    from ember_raylet.client_session import RAYLET

    node = Node(cpus=2)
    creator = ClientSession(ids.new_unique_id(), RAYLET, node_id=ids.new_unique_id())
    node.nm.connect(creator)
    actor_id = ids.new_unique_id()
    s = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=FN, function_name="C.__init__", num_returns=1,
                            actor_id=actor_id)
    s.actor_creation.CopyFrom(raylet_pb2.ActorCreation(actor_id=actor_id, class_name="C", max_concurrency=1,
                                                       max_restarts=5))
    node.nm.handle_batch(creator, raylet_pb2.ClientBatch(submit=[s]))
    wid, host = node.host(s)
    node.finish(host, s.task_id)
    creator.take()
    call = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=FN, function_name="m", num_returns=1,
                               actor_id=actor_id, method_name="m")
    node.nm.handle_batch(creator, raylet_pb2.ClientBatch(submit=[call]))
    executed(host)
    node.finish(host, call.task_id, actor_exit=True)
    (ended,) = creator.take().actors_ended
    assert ended.actor_id == actor_id and "exit_actor" in ended.message


def test_unknown_actor_and_malformed_calls():
    node = Node()
    actor_id = ids.new_unique_id()
    call = node.call(actor_id)
    assert node.looked_up == [actor_id]  # not hosted here: the GCS is asked where it is
    node.nm.actor_located(actor_id, None)
    assert "unknown to the cluster" in str(node.error_of(call.task_id))
    bad = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=FN, num_returns=1, actor_id=b"short",
                              method_name="m")
    with pytest.raises(ProtocolError, match="actor_id"):
        node.nm.handle_batch(node.driver, raylet_pb2.ClientBatch(submit=[bad]))
