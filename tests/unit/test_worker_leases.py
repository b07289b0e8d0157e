"""Workers and their leases of this node's resources, on their part alone."""

from ember.v1 import raylet_pb2

from ember_common import ids
from ember_common.object_layout import FailureType
from ember_raylet.client_session import WORKER, ClientSession
from ember_raylet.task_manager import ASSIGNED
from ember_raylet.worker_leases import WorkerLeases
from ember_raylet.worker_pool import WorkerPool
from tests.unit.raylet_parts import Calls, State
from tests.unit.test_node_manager import FakeProcess


def parts(cpus=2, depth=2):
    state = State()
    pool = WorkerPool(lambda wid: FakeProcess(), max_workers=8)
    total, available = {"CPU": float(cpus)}, {"CPU": float(cpus)}
    actor_deaths = Calls()
    leases = WorkerLeases(pool, total, available, cpus, depth, state.tasks, state.finished, actor_deaths,
                          lambda session: [])
    leases.ensure_min_workers()
    sessions = []
    for wid in list(pool.starting):
        sessions.append(ClientSession(ids.new_unique_id(), WORKER, worker_id=wid))
        pool.register(wid, sessions[-1])
    return state, leases, pool, available, sessions


def test_idle_workers_are_leased_first_then_pipelined_up_to_the_depth():
    state, leases, pool, available, _ = parts(cpus=1, depth=2)
    first = leases.pick(state.task())
    assert first is not None and available == {"CPU": 0.0}
    first.assigned.append(b"t" * 16)
    assert leases.pick(state.task()) is first  # pipelined behind the first
    first.assigned.append(b"u" * 16)
    assert leases.pick(state.task()) is None  # full
    first.assigned.clear()
    leases.release(first)
    assert available == {"CPU": 1.0} and pool.idle == [first]


def test_a_blocked_worker_lends_its_resources_and_its_handed_back_tasks_queue_first():
    state, leases, _, available, (session,) = parts(cpus=1)
    task = state.task()
    worker = leases.pick(task)
    worker.assigned.append(task.spec.task_id)
    task.state = ASSIGNED
    leases.blocked(session, raylet_pb2.WorkerBlocked(blocked=True, returned_task_ids=[task.spec.task_id]))
    assert available == {"CPU": 1.0} and list(state.tasks.roots[task.key]) == [task.spec.task_id]
    leases.blocked(session, raylet_pb2.WorkerBlocked(blocked=False))
    assert available == {"CPU": 0.0}


def test_a_dead_workers_running_task_retries_and_those_behind_it_queue_again():
    state, leases, pool, available, (session,) = parts(cpus=1, depth=4)
    running, behind, doomed = state.task(retries=1), state.task(), state.task()
    worker = leases.pick(running)
    worker.assigned.extend([running.spec.task_id, behind.spec.task_id])
    assert leases.died(worker.worker_id, "exit 1") is worker
    assert running.retries_left == 0 and available == {"CPU": 1.0} and session.closed
    assert list(state.tasks.roots[running.key]) == [running.spec.task_id, behind.spec.task_id]
    assert pool.starting  # the minimum is kept
    assert leases.died(worker.worker_id, "again") is None  # not ours any more
    replacement = next(iter(pool.starting))
    pool.register(replacement, ClientSession(ids.new_unique_id(), WORKER, worker_id=replacement))
    second = leases.pick(doomed)
    second.assigned.append(doomed.spec.task_id)
    leases.died(second.worker_id, "exit 1")
    assert state.finished.failure(doomed.spec.task_id).type == FailureType.WORKER_CRASHED
