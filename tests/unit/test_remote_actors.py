"""Actors other nodes host, on the remote-actors part alone: looked up,
called in order, killed, restarted elsewhere when their node dies."""

from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember_common import ids
from ember_common.object_layout import FailureType
from ember_raylet.actor_table import ActorEntry, ActorTable
from ember_raylet.client_session import RAYLET, ClientSession
from ember_raylet.remote_actors import RemoteActors
from ember_raylet.task_manager import QUEUED, WAITING
from tests.unit.raylet_parts import Calls, State, node

ALIVE, DEAD = gcs_pb2.ActorInfo.ALIVE, gcs_pb2.ActorInfo.DEAD


def parts(*peers):
    state = State(*peers)
    lookups, forwarded = Calls(), Calls()
    batches: dict[bytes, raylet_pb2.ClientBatch] = {}
    internal = ClientSession(b"", RAYLET)
    local = ActorTable()
    remote = RemoteActors(state.view, state.tasks, state.objects, local, internal, lookups, forwarded,
                          lambda node_id: batches.setdefault(node_id, raylet_pb2.ClientBatch()), state.finished)
    return state, remote, local, lookups, forwarded, batches


def call(state, actor_id, name):
    return state.task(cpus=0, actor_id=actor_id, name=name)


def test_calls_wait_for_the_lookup_then_go_in_order_up_to_one_still_waiting():
    host = node()
    state, remote, _, lookups, forwarded, _ = parts(host)
    actor_id = ids.new_unique_id()
    calls = [call(state, actor_id, name) for name in "abc"]
    for task in calls:
        remote.queue_call(task)
    assert lookups == [(actor_id, 0.0)] and not forwarded  # asked once
    calls[1].state = WAITING  # (its argument is pending)
    for task in (calls[0], calls[2]):
        task.state = QUEUED
    remote.located(actor_id, gcs_pb2.ActorInfo(actor_id=actor_id, state=ALIVE, node_id=host.node_id))
    assert forwarded == [(calls[0], host.node_id)]
    remote.call_ready(calls[1])
    assert forwarded[1:] == [(calls[1], host.node_id), (calls[2], host.node_id)]


def test_a_starting_actor_is_asked_for_again_and_a_dead_one_fails_its_calls():
    host = node()
    state, remote, _, lookups, _, _ = parts(host)
    actor_id = ids.new_unique_id()
    task = call(state, actor_id, "m")
    remote.queue_call(task)
    remote.located(actor_id, gcs_pb2.ActorInfo(actor_id=actor_id, state=gcs_pb2.ActorInfo.PENDING_CREATION))
    assert lookups[-1] == (actor_id, 0.25) and not state.finished.ended
    remote.located(actor_id, gcs_pb2.ActorInfo(actor_id=actor_id, class_name="C", state=DEAD, death_message="gone"))
    error = state.finished.failure(task.spec.task_id)
    assert error.type == FailureType.ACTOR_DIED and "gone" in error.message


def test_a_kill_before_the_host_is_known_is_sent_once_it_is():
    host = node()
    _, remote, _, _, _, batches = parts(host)
    actor_id = ids.new_unique_id()
    remote.kill(actor_id, gcs_pb2.ActorInfo.KILLED, "ember.kill()")
    assert not batches
    remote.located(actor_id, gcs_pb2.ActorInfo(actor_id=actor_id, state=ALIVE, node_id=host.node_id))
    (kill,) = batches[host.node_id].kill_actors
    assert kill.actor_id == actor_id and kill.no_restart


def test_an_actor_we_created_elsewhere_restarts_on_another_node_when_its_node_dies():
    first, second = node(), node()
    state, remote, local, _, forwarded, _ = parts(first, second)
    actor_id = ids.new_unique_id()
    creation = state.task(cpus=1, name="C.__init__")
    creation.spec.actor_id = actor_id
    creation.spec.actor_creation.CopyFrom(raylet_pb2.ActorCreation(actor_id=actor_id, class_name="C", max_restarts=1,
                                                                   max_task_retries=1))
    local.add(ActorEntry(creation.spec, state.driver))
    remote.create_elsewhere(creation, first.node_id)
    assert actor_id not in local.actors and forwarded == [(creation, first.node_id)]
    running = call(state, actor_id, "m")
    remote.queue_call(running)
    remote.call_ready(running)
    assert running.retries_left == 1 and forwarded[-1] == (running, first.node_id)
    state.view.remove(first.node_id)
    restarting = remote.node_lost(first.node_id, "it died")
    retried: dict[bytes, list[bytes]] = {}
    remote.call_lost(creation, first.node_id, "it died", restarting, retried)
    remote.call_lost(running, first.node_id, "it died", restarting, retried)
    remote.restart_lost(restarting, retried, "its node died")
    (restart, target), (again, target_) = forwarded[2:]
    assert restart.spec.actor_creation.num_restarts == 1 and target == target_ == second.node_id
    assert again is running and running.retries_left == 0
    # Its constructor fails there: dead for good, and later calls fail.
    failed = common_pb2.ObjectValue(object_id=ids.object_id_for(creation.spec.task_id, 1), is_error=True)
    assert remote.creation_finished(actor_id, [failed])
    later = call(state, actor_id, "m")
    remote.queue_call(later)
    remote.call_ready(later)
    assert "failed to start" in state.finished.failure(later.spec.task_id).message
