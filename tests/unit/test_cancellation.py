"""Cancellation by task state: unplaced tasks end cancelled, forwarded ones
are cancelled by their peer, running ones are told (or killed, if forced);
children first."""

from ember.v1 import raylet_pb2

from ember_common import ids
from ember_common.object_layout import FailureType
from ember_raylet.cancellation import Cancellation
from ember_raylet.client_session import WORKER, ClientSession
from ember_raylet.task_manager import ASSIGNED, FORWARDED
from ember_raylet.worker_pool import WorkerHandle
from tests.unit.raylet_parts import Calls, State
from tests.unit.test_node_manager import FakeProcess


def parts():
    state = State()
    peers: dict[bytes, raylet_pb2.ClientBatch] = {}
    died, after = Calls(), Calls()
    cancellation = Cancellation(state.tasks, state.finished, after,
                                lambda node_id: peers.setdefault(node_id, raylet_pb2.ClientBatch()), died)
    return state, cancellation, peers, died, after


def running(state, task, actor_id=None):
    worker = WorkerHandle(ids.new_unique_id(), FakeProcess())
    worker.session = ClientSession(ids.new_unique_id(), WORKER, worker_id=worker.worker_id)
    worker.actor_id = actor_id
    task.state, task.worker = ASSIGNED, worker
    return worker


def test_a_waiting_task_and_its_children_end_cancelled():
    state, cancellation, _, _, after = parts()
    parent, child = state.task(name="parent"), state.task(name="child")
    child.spec.parent_task_id = parent.spec.task_id
    cancellation.cancel(parent.spec.task_id, force=False, recursive=True)
    assert state.finished.failure(child.spec.task_id).type == FailureType.TASK_CANCELLED
    assert state.finished.failure(parent.spec.task_id).type == FailureType.TASK_CANCELLED
    assert [t.spec.function_name for t in after] == ["child", "parent"]  # the calls behind them may go
    cancellation.cancel(parent.spec.task_id, force=False, recursive=True)  # finished: a no-op
    assert len(after) == 2


def test_a_forwarded_task_is_cancelled_by_its_peer():
    state, cancellation, peers, _, _ = parts()
    task = state.task()
    task.state, task.node = FORWARDED, b"P" * 16
    cancellation.cancel(task.spec.task_id, force=True, recursive=False)
    (sent,) = peers[b"P" * 16].cancel
    assert sent.task_id == task.spec.task_id and sent.force and not state.finished.ended


def test_a_running_task_is_told_to_stop_or_its_worker_killed_but_never_an_actors():
    state, cancellation, _, died, _ = parts()
    polite, forced, actor_call = state.task(), state.task(), state.task()
    told = running(state, polite)
    killed = running(state, forced)
    actor_worker = running(state, actor_call, actor_id=ids.new_unique_id())
    cancellation.cancel(polite.spec.task_id, force=False, recursive=False)
    cancellation.cancel(forced.spec.task_id, force=True, recursive=False)
    cancellation.cancel(actor_call.spec.task_id, force=True, recursive=False)
    assert list(told.session.take().cancel) == [polite.spec.task_id]
    assert killed.process.poll() is not None and died == [(killed.worker_id, "killed by ember.cancel(force=True)")]
    assert actor_worker.process.poll() is None and list(actor_worker.session.take().cancel) == [actor_call.spec.task_id]
    assert polite.cancelled and forced.cancelled and not state.finished.ended  # they end when their workers say so
