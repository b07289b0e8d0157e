"""Pulls and lineage rebuilds, on their part alone."""

from ember.v1 import common_pb2

from ember_common import ids
from ember_common.object_layout import FailureType
from ember_raylet.lineage import Lineage
from ember_raylet.object_pulls import ObjectPulls
from tests.unit.raylet_parts import Calls, State, node


def parts(*peers):
    state = State(*peers)
    pulls, ready, awaited, after = Calls(), Calls(), Calls(), Calls()
    lineage = Lineage()
    part = ObjectPulls(state.objects, state.tasks, state.view, lineage, pulls, state.finished, ready, awaited, after)
    return state, part, lineage, pulls, ready, awaited


def test_a_pull_goes_in_the_trace_of_the_task_that_waits_for_it():
    peer = node()
    state, part, _, pulls, _, _ = parts(peer)
    value = state.put(stored_on=peer.node_id)
    task = state.task(deps=[value.object_id])
    task.spec.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert not part.make_local(value.object_id, task_id=task.spec.task_id)
    assert not part.make_local(value.object_id, task_id=state.task(deps=[value.object_id]).spec.task_id)
    assert pulls == [(value.object_id, peer.node_id, 1 << 20, task.spec.traceparent)]  # one pull, the first's


def test_one_pull_serves_every_waiter_and_its_copy_is_local_after():
    peer = node()
    state, part, _, pulls, ready, _ = parts(peer)
    value = state.put(stored_on=peer.node_id)
    task = state.task(deps=[value.object_id])
    assert not part.make_local(value.object_id, task_id=task.spec.task_id)
    part.fetch(state.driver, value.object_id)  # joins the pull
    assert pulls == [(value.object_id, peer.node_id, 1 << 20, "")]  # (an untraced task: no context)
    stranger = ids.new_put_id()
    assert part.unknown_objects([value.object_id, stranger]) == [stranger]
    part.pull_done(value.object_id, None)
    assert ready == [[task.spec.task_id]] and state.objects.is_local(value.object_id)
    (got,) = state.driver.take().ready[-1:]
    assert got.object_id == value.object_id and got.node_id == b"L" * 16  # the local copy
    assert part.make_local(value.object_id)


def test_a_failed_pull_fails_its_waiters():
    peer = node()
    state, part, _, _, _, _ = parts(peer)
    value = state.put(stored_on=peer.node_id)
    task = state.task(deps=[value.object_id])
    task.missing = 1
    part.make_local(value.object_id, task_id=task.spec.task_id)
    part.pull_done(value.object_id, "connection refused")
    error = state.finished.failure(task.spec.task_id)
    assert error.type == FailureType.OBJECT_LOST and "connection refused" in error.message


def test_a_lost_nodes_values_are_rebuilt_from_lineage_or_lost():
    peer = node()
    state, part, lineage, _, _, awaited = parts(peer)
    maker = state.task()
    made = common_pb2.ObjectValue(object_id=ids.object_id_for(maker.spec.task_id, 1), stored_size=10,
                                  node_id=peer.node_id)
    state.objects.set_ready(made)
    state.tasks.tasks.pop(maker.spec.task_id)  # it finished
    lineage.record(maker.spec, state.driver, {made.object_id})
    put = state.put(stored_on=peer.node_id)
    state.view.remove(peer.node_id)
    part.node_lost(peer.node_id, "it died")
    assert [t.spec.task_id for t in awaited] == [maker.spec.task_id] and not state.objects.is_ready(made.object_id)
    assert lineage.entries[maker.spec.task_id].rebuilds == 1
    assert state.objects.get(put.object_id).is_error  # put, not computed: cannot be rebuilt
