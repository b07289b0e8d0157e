"""A task's end on its part alone: returns ready, arguments unpinned unless
the lineage keeps them, and a dropped forwarded task cancelled at its peer."""

import collections

from ember.v1 import common_pb2, raylet_pb2

from ember_common import ids
from ember_common.object_layout import Failure, FailureType
from ember_raylet.actor_table import ActorTable
from ember_raylet.lineage import Lineage
from ember_raylet.task_completion import TaskCompletion
from ember_raylet.task_manager import FORWARDED
from tests.unit.raylet_parts import LOCAL, Calls, State


def parts():
    state = State()
    lineage, ready = Lineage(), Calls()
    counts: collections.Counter[bytes] = collections.Counter()
    batches: dict[bytes, raylet_pb2.ClientBatch] = {}
    completion = TaskCompletion(LOCAL, state.tasks, state.objects, ActorTable(), lineage, counts, ready,
                                lambda actor_id, returns: False,
                                lambda node_id: batches.setdefault(node_id, raylet_pb2.ClientBatch()))
    return state, completion, lineage, counts, batches


def test_returns_reach_the_submitter_and_the_arguments_go():
    state, completion, lineage, _, _ = parts()
    arg = state.put()
    task = state.task(deps=[arg.object_id])
    state.objects.pin(arg.object_id)
    state.objects.remove_holder(arg.object_id, state.driver)
    completion.finish(task, returns=[common_pb2.ObjectValue(object_id=ids.object_id_for(task.spec.task_id, 1))])
    assert task.spec.task_id not in state.tasks.tasks and arg.object_id not in state.objects
    assert state.driver.take().ready[-1].object_id == ids.object_id_for(task.spec.task_id, 1) and not lineage.entries


def test_a_return_stored_on_another_node_keeps_the_lineage_and_an_error_fills_every_return():
    state, completion, lineage, counts, _ = parts()
    arg = state.put()
    task = state.task(deps=[arg.object_id])
    task.state, task.node = FORWARDED, b"P" * 16
    counts[b"P" * 16] = 1
    state.objects.pin(arg.object_id)
    state.objects.remove_holder(arg.object_id, state.driver)
    completion.finish(task, returns=[common_pb2.ObjectValue(
        object_id=ids.object_id_for(task.spec.task_id, 1), stored_size=10, node_id=b"P" * 16)])
    assert task.spec.task_id in lineage.entries and arg.object_id in state.objects and counts[b"P" * 16] == 0
    failed = state.task()
    completion.finish(failed, error=Failure(FailureType.WORKER_CRASHED, "boom"))
    value = state.objects.get(ids.object_id_for(failed.spec.task_id, 1))
    assert value.is_error and value.data == Failure(FailureType.WORKER_CRASHED, "boom").encode()


def test_a_dropped_forwarded_task_is_cancelled_at_its_peer():
    state, completion, _, counts, batches = parts()
    task = state.task()
    task.state, task.node = FORWARDED, b"P" * 16
    counts[b"P" * 16] = 1
    completion.drop(task)
    assert [c.task_id for c in batches[b"P" * 16].cancel] == [task.spec.task_id] and counts[b"P" * 16] == 0
    assert task.spec.task_id not in state.tasks.tasks
