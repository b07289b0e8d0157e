"""Actors hosted here, on their part alone: registration, calls to the
actor's worker in order, restarts, and death with its cause."""

from ember.v1 import gcs_pb2, raylet_pb2

from ember_common import ids
from ember_common.object_layout import FailureType
from ember_raylet.actor_table import ALIVE, DEAD, RESTARTING, Actor, ActorTable
from ember_raylet.client_session import WORKER, ClientSession
from ember_raylet.local_actors import LocalActors
from ember_raylet.worker_pool import WorkerHandle
from tests.unit.raylet_parts import LOCAL, Calls, State
from tests.unit.test_node_manager import FakeProcess


def parts():
    state = State()
    table, events, assigned, deaths = ActorTable(), Calls(), Calls(), Calls()
    actors = LocalActors(LOCAL, table, state.tasks, state.objects, {}, events, state.finished, assigned, deaths)
    return state, actors, table, events, assigned


def created(state, actors, table, **options):
    """An actor whose constructor ran on a worker of its own."""
    task = state.task(cpus=0, name="C.__init__")
    actor_id = ids.new_unique_id()
    task.spec.actor_id = actor_id
    task.spec.actor_creation.CopyFrom(raylet_pb2.ActorCreation(actor_id=actor_id, class_name="C", max_concurrency=1,
                                                               **options))
    actors.add(task)
    actor = table.actors[actor_id]
    actor.worker = WorkerHandle(ids.new_unique_id(), FakeProcess())
    actor.worker.session = ClientSession(ids.new_unique_id(), WORKER, worker_id=actor.worker.worker_id)
    actor.worker.actor_id = actor_id
    actors.task_done(task, raylet_pb2.TaskResult(task_id=task.spec.task_id))
    return actor


def test_an_actor_is_registered_then_alive_and_its_calls_go_in_order():
    state, actors, table, events, assigned = parts()
    actor = created(state, actors, table)
    assert isinstance(events[0], gcs_pb2.RegisterActorRequest) and events[-1].state == ALIVE
    calls = [state.task(cpus=0, actor_id=actor.actor_id, name=n) for n in "ab"]
    for call in calls:
        assert actors.queue_call(actor, call)
        actors.call_ready(call)
    assert [task for task, _ in assigned] == calls and actor.inflight == {c.spec.task_id for c in calls}


def test_a_crash_restarts_the_actor_and_retries_the_cut_off_call_if_it_may_be():
    state, actors, table, events, _ = parts()
    actor = created(state, actors, table, max_restarts=1, max_task_retries=1)
    call = state.task(cpus=0, actor_id=actor.actor_id, name="m")
    actors.queue_call(actor, call)
    actors.call_ready(call)
    worker = actor.worker
    worker.assigned.append(call.spec.task_id)
    actors.worker_died(worker, "exit 1")
    assert actor.state == RESTARTING and events[-1].state == RESTARTING
    assert list(actor.queue) == [call.spec.task_id] and call.retries_left == 0
    assert state.tasks.roots[("actor", actor.actor_id)]  # its constructor is queued again


def test_an_actor_ended_without_a_worker_is_dead_and_fails_its_calls():
    state, actors, table, events, _ = parts()
    actor = created(state, actors, table)
    actor.worker = None
    waiting = state.task(cpus=0, actor_id=actor.actor_id, name="m")
    actors.queue_call(actor, waiting)
    actors.end(actor, Actor.KILLED, "it was killed")
    assert actor.state == DEAD and events[-1].death_cause == Actor.KILLED
    assert state.finished.failure(waiting.spec.task_id).type == FailureType.ACTOR_DIED
    later = state.task(cpus=0, actor_id=actor.actor_id, name="m")
    assert not actors.queue_call(actor, later) and "killed" in state.finished.failure(later.spec.task_id).message
