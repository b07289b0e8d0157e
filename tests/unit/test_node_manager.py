"""The raylet's logic without sockets or processes: client sessions are
outboxes and the worker pool spawns fake processes."""

import time

import pytest
from ember.v1 import common_pb2, raylet_pb2

from ember import exceptions
from ember._private import serialization
from ember_common import ids
from ember_common.errors import ProtocolError
from ember_raylet.client_session import DRIVER, WORKER, ClientSession
from ember_raylet.admission import Admission
from ember_raylet.node_manager import NodeManager
from ember_raylet.task_manager import QUEUED
from ember_raylet.worker_pool import WorkerPool

FN = b"f" * 32


class FakeProcess:
    _next = 1000

    def __init__(self):
        FakeProcess._next += 1
        self.pid = FakeProcess._next
        self.code = None

    def poll(self):
        return self.code

    def kill(self):
        self.code = -9

    terminate = kill


def make(cpus=2, **kw):
    deleted = []
    pool = WorkerPool(lambda wid: FakeProcess(), max_workers=8)
    nm = NodeManager(ids.new_unique_id(), {"CPU": cpus}, pool, min_workers=cpus, pipeline_depth=kw.get("depth", 4),
                     on_store_delete=deleted.extend, on_actor_lookup=kw.get("on_actor_lookup", lambda a, d: None),
                     admission=Admission(kw.get("max_queued", 1000), kw.get("max_inline", 1 << 20)))
    nm.ensure_min_workers()
    workers = []
    for wid in list(pool.starting):
        s = ClientSession(ids.new_unique_id(), WORKER, worker_id=wid)
        nm.connect(s)
        workers.append(s)
    driver = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\1")
    nm.connect(driver)
    return nm, driver, workers, deleted


def spec(deps=(), cpus=1.0, retries=0, returns=1, name="f"):
    s = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=FN, function_name=name, num_returns=returns,
                            dependencies=list(deps), max_retries=retries)
    if cpus:
        s.resources.amounts["CPU"] = cpus
    return s


def submit(nm, driver, *specs):
    nm.handle_batch(driver, raylet_pb2.ClientBatch(submit=list(specs)))


def executed(session):
    batch = session.take()
    return [e for e in batch.execute] if batch else []


def finish(nm, worker, task_id, value=b"v", is_error=False, app_error=False):
    ret = common_pb2.ObjectValue(object_id=ids.object_id_for(task_id, 1), data=value, is_error=is_error)
    nm.handle_batch(worker, raylet_pb2.ClientBatch(results=[raylet_pb2.TaskResult(task_id=task_id, returns=[ret], application_error=app_error)]))


def test_tasks_spread_over_idle_workers_then_pipeline():
    nm, driver, (w1, w2), _ = make(cpus=2)
    specs = [spec() for _ in range(4)]
    submit(nm, driver, *specs)
    got1, got2 = executed(w1), executed(w2)
    assert len(got1) + len(got2) == 4 and got1 and got2
    assert nm.available["CPU"] == 0


def test_result_reaches_submitter_and_frees_the_lease():
    nm, driver, (w1, w2), _ = make(cpus=2)
    s = spec()
    submit(nm, driver, s)
    worker = w1 if executed(w1) else w2
    finish(nm, worker, s.task_id, b"data")
    assert nm.available["CPU"] == 2
    ready = driver.take().ready
    assert [v.object_id for v in ready] == [ids.object_id_for(s.task_id, 1)]


def test_dependency_waits_then_arrives_with_the_task():
    nm, driver, (w1,), _ = make(cpus=1, depth=1)
    a = spec()
    b = spec(deps=[ids.object_id_for(a.task_id, 1)])
    submit(nm, driver, a, b)
    assert [e.spec.task_id for e in executed(w1)] == [a.task_id]
    finish(nm, w1, a.task_id, b"A")
    (e,) = executed(w1)
    assert e.spec.task_id == b.task_id and e.args[0].data == b"A"


def test_failed_dependency_propagates_without_running():
    nm, driver, (w1,), _ = make(cpus=1)
    a = spec()
    b = spec(deps=[ids.object_id_for(a.task_id, 1)])
    submit(nm, driver, a, b)
    executed(w1)
    finish(nm, w1, a.task_id, b"ERR", is_error=True)
    assert not executed(w1)  # b never ran
    ready = {v.object_id: v for v in driver.take().ready}
    assert ready[ids.object_id_for(b.task_id, 1)].is_error
    assert ready[ids.object_id_for(b.task_id, 1)].data == b"ERR"


def test_worker_death_retries_then_fails_typed():
    nm, driver, (w1,), _ = make(cpus=1)
    s = spec(retries=1)
    submit(nm, driver, s)
    executed(w1)
    nm.disconnect(w1)  # first death: retried on a new worker
    assert nm.tasks.tasks[s.task_id].retries_left == 0
    (wid,) = list(nm.pool.starting)
    w2 = ClientSession(ids.new_unique_id(), WORKER, worker_id=wid)
    nm.connect(w2)
    assert executed(w2)[0].spec.task_id == s.task_id
    nm.disconnect(w2)  # second death: no retries left
    (value,) = driver.take().ready
    err, is_error = serialization.deserialize(value.data)
    assert is_error and isinstance(err, exceptions.WorkerCrashedError)


def test_refs_free_objects_and_store_copies():
    nm, driver, _, deleted = make()
    small = common_pb2.ObjectValue(object_id=ids.new_put_id(), data=b"x")
    big = common_pb2.ObjectValue(object_id=ids.new_put_id(), stored_size=10**6)
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[small, big]))
    assert len(nm.objects) == 2
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[small.object_id, big.object_id]))
    assert len(nm.objects) == 0 and deleted == [big.object_id]


def test_pending_task_pins_its_arguments():
    nm, driver, (w1,), _ = make(cpus=1, depth=1)
    blocker = spec()
    arg = common_pb2.ObjectValue(object_id=ids.new_put_id(), data=b"x")
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[arg]))
    s = spec(deps=[arg.object_id])
    submit(nm, driver, blocker, s)
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[arg.object_id]))
    assert arg.object_id in nm.objects  # still pinned by the queued task
    executed(w1)
    finish(nm, w1, blocker.task_id)
    finish(nm, w1, s.task_id)
    assert arg.object_id not in nm.objects


def test_nested_refs_pinned_by_containing_object():
    nm, driver, _, _ = make()
    inner = common_pb2.ObjectValue(object_id=ids.new_put_id(), data=b"i")
    outer = common_pb2.ObjectValue(object_id=ids.new_put_id(), data=b"o", nested_ids=[inner.object_id])
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[inner, outer], remove_refs=[inner.object_id]))
    assert inner.object_id in nm.objects
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[outer.object_id]))
    assert len(nm.objects) == 0


def test_blocked_worker_releases_cpu_and_hands_back_queue():
    nm, driver, (w1,), _ = make(cpus=1, depth=4)
    a, b = spec(), spec()
    submit(nm, driver, a, b)
    assert len(executed(w1)) == 2
    nm.handle_batch(w1, raylet_pb2.ClientBatch(blocked=raylet_pb2.WorkerBlocked(blocked=True, returned_task_ids=[b.task_id])))
    # b runs at once beside a, which waits, on a thread of its own with a's lent CPU.
    (again,) = executed(w1)
    assert again.spec.task_id == b.task_id and again.own_thread
    assert nm.available["CPU"] == 0 and not nm.pool.starting
    finish(nm, w1, b.task_id)
    assert nm.available["CPU"] == 1
    nm.handle_batch(w1, raylet_pb2.ClientBatch(blocked=raylet_pb2.WorkerBlocked(blocked=False)))
    assert nm.available["CPU"] == 0


def test_tasks_pipelined_behind_a_long_task_are_asked_back_once_a_cpu_is_free():
    nm, driver, (w1, w2), _ = make(cpus=2, depth=4)
    specs = [spec(name=f"t{i}") for i in range(6)]
    submit(nm, driver, *specs)
    got = {w: [e.spec.task_id for e in executed(w)] for w in (w1, w2)}
    assert sorted(map(len, got.values())) == [3, 3]
    slow, fast = (w1, w2) if got[w1][0] == specs[0].task_id else (w2, w1)
    for task_id in got[fast]:  # the other worker's tasks are quick
        finish(nm, fast, task_id)
    assert nm.available["CPU"] == 1
    handle = nm.pool.workers[slow.worker_id]
    nm.reclaim_stalled(time.monotonic())  # its first task has not run long yet
    assert not slow.take()
    handle.head_since -= 1.0  # now it has
    nm.reclaim_stalled(time.monotonic())
    assert list(slow.take().reclaim) == got[slow][1:]
    nm.reclaim_stalled(time.monotonic())  # asked once per first task
    assert not slow.take()
    # The worker had started one of them meanwhile: it gives back the other.
    nm.handle_batch(slow, raylet_pb2.ClientBatch(reclaimed=[got[slow][2]]))
    assert [e.spec.task_id for e in executed(fast)] == [got[slow][2]]
    assert list(handle.assigned) == got[slow][:2]
    # Both CPUs busy with tasks that run long: a new task is pipelined
    # behind neither; it waits for a worker to be free.
    finish(nm, slow, got[slow][0])  # (the next one is first now)
    handle.head_since -= 1.0
    nm.pool.workers[fast.worker_id].head_since -= 1.0
    late = spec(name="late")
    submit(nm, driver, late)
    assert not slow.take() and not fast.take()
    finish(nm, fast, got[slow][2])
    assert [e.spec.task_id for e in executed(fast)] == [late.task_id]
    # A reclaimed id that is not (or no longer) this worker's is ignored.
    nm.handle_batch(slow, raylet_pb2.ClientBatch(reclaimed=[late.task_id, ids.new_unique_id()]))
    assert list(handle.assigned) == got[slow][1:2]


def test_infeasible_task_warns_the_submitter():
    nm, driver, _, _ = make(cpus=2)
    s = spec(cpus=64)
    submit(nm, driver, s)
    assert "64" in driver.take().warnings[0]
    assert nm.infeasible_shapes() == [{"CPU": 64.0}]


def test_cancel_queued_task():
    nm, driver, (w1,), _ = make(cpus=1, depth=1)
    a, b = spec(), spec()
    submit(nm, driver, a, b)
    executed(w1)
    driver.take()
    nm.handle_batch(driver, raylet_pb2.ClientBatch(cancel=[raylet_pb2.CancelTask(task_id=b.task_id)]))
    (value,) = driver.take().ready
    err, _ = serialization.deserialize(value.data)
    assert isinstance(err, exceptions.TaskCancelledError)


@pytest.mark.parametrize("bad", [
    raylet_pb2.ClientBatch(submit=[raylet_pb2.TaskSpec(task_id=b"short", function_id=FN, num_returns=1)]),
    raylet_pb2.ClientBatch(submit=[raylet_pb2.TaskSpec(task_id=b"t" * 16, function_id=b"x", num_returns=1)]),
    raylet_pb2.ClientBatch(subscribe=[b"bad-id"]),
    raylet_pb2.ClientBatch(puts=[common_pb2.ObjectValue(object_id=b"bad", data=b"")]),
])
def test_malformed_batches_are_protocol_errors(bad):
    nm, driver, _, _ = make()
    with pytest.raises(ProtocolError):
        nm.handle_batch(driver, bad)


def test_unknown_object_subscription_answers_object_lost():
    nm, driver, _, _ = make()
    nm.handle_batch(driver, raylet_pb2.ClientBatch(subscribe=[ids.new_put_id()]))
    (value,) = driver.take().ready
    err, _ = serialization.deserialize(value.data)
    assert isinstance(err, exceptions.ObjectLostError)


def test_tasks_from_tasks_go_before_new_top_level_work():
    nm, driver, (w1,), _ = make(cpus=1, depth=1)
    parent, root2 = spec(name="parent"), spec(name="root2")
    submit(nm, driver, parent, root2)
    assert [e.spec.function_name for e in executed(w1)] == ["parent"]
    child = spec(name="child")
    child.parent_task_id = parent.task_id
    nm.handle_batch(w1, raylet_pb2.ClientBatch(submit=[child]))
    nm.handle_batch(w1, raylet_pb2.ClientBatch(blocked=raylet_pb2.WorkerBlocked(blocked=True)))
    assert [e.spec.function_name for e in executed(w1)] == ["child"]  # on the parent's freed CPU


def test_nested_tasks_to_any_depth_keep_the_pool_at_its_size():
    """Each level waits for the next: every waiting task's CPU goes to the
    task it waits on, on a thread of the waiting worker (no new process)."""
    nm, driver, (w1,), _ = make(cpus=1, depth=1)
    parent = spec(name="level0")
    submit(nm, driver, parent)
    executed(w1)
    nm.handle_batch(w1, raylet_pb2.ClientBatch(blocked=raylet_pb2.WorkerBlocked(blocked=True)))
    chain = [parent]
    for depth in range(1, 20):
        child = spec(name=f"level{depth}")
        child.parent_task_id = chain[-1].task_id
        nm.handle_batch(w1, raylet_pb2.ClientBatch(submit=[child]))
        (run,) = executed(w1)
        assert run.spec.task_id == child.task_id and run.own_thread
        nm.handle_batch(w1, raylet_pb2.ClientBatch(threads_blocked=[
            raylet_pb2.WorkerBlocked(blocked=True, task_id=child.task_id)]))
        chain.append(child)
    assert nm.pool.size == 1 and not nm.pool.starting and nm.available["CPU"] == 1
    for task in reversed(chain[1:]):  # unwinding: each wakes, finishes, its parent wakes
        nm.handle_batch(w1, raylet_pb2.ClientBatch(threads_blocked=[
            raylet_pb2.WorkerBlocked(blocked=False, task_id=task.task_id)]))
        finish(nm, w1, task.task_id)
    nm.handle_batch(w1, raylet_pb2.ClientBatch(blocked=raylet_pb2.WorkerBlocked(blocked=False)))
    assert nm.available["CPU"] == 0
    finish(nm, w1, parent.task_id)
    assert nm.available["CPU"] == 1 and nm.workers.num_threads == 0


def test_actor_creation_never_runs_on_a_waiting_workers_thread():
    nm, driver, (w1,), _ = make(cpus=1, depth=1)
    parent = spec(name="parent")
    submit(nm, driver, parent)
    executed(w1)
    nm.handle_batch(w1, raylet_pb2.ClientBatch(blocked=raylet_pb2.WorkerBlocked(blocked=True)))
    creation = spec(name="Actor.__init__")
    creation.actor_id = ids.new_unique_id()
    creation.actor_creation.CopyFrom(raylet_pb2.ActorCreation(actor_id=creation.actor_id, class_name="Actor",
                                                              max_concurrency=1))
    nm.handle_batch(w1, raylet_pb2.ClientBatch(submit=[creation]))
    assert not executed(w1)
    assert nm.pool.starting  # a process of its own


def test_a_dead_worker_retries_the_tasks_on_its_threads():
    nm, driver, (w1,), _ = make(cpus=1, depth=1)
    parent = spec(name="parent")
    submit(nm, driver, parent)
    executed(w1)
    nm.handle_batch(w1, raylet_pb2.ClientBatch(blocked=raylet_pb2.WorkerBlocked(blocked=True)))
    child = spec(name="child", retries=1)
    child.parent_task_id = parent.task_id
    nm.handle_batch(w1, raylet_pb2.ClientBatch(submit=[child]))
    assert executed(w1)[0].own_thread
    nm.worker_died(w1.worker_id, "killed")
    assert nm.workers.num_threads == 0
    retried = nm.tasks.tasks[child.task_id]  # not failed: queued again, for a new worker
    assert retried.state == QUEUED and retried.retries_left == 0 and nm.pool.starting


def test_idle_workers_beyond_the_minimum_are_retired():
    nm, driver, (w1,), _ = make(cpus=1)
    for _ in range(2):
        handle = nm.pool.start()
        nm.connect(ClientSession(ids.new_unique_id(), WORKER, worker_id=handle.worker_id))
    assert len(nm.pool.workers) == 3
    now = max(w.idle_since for w in nm.pool.workers.values())
    assert nm.retire_idle_workers(now + 1, idle_timeout_s=5) == []
    retired = nm.retire_idle_workers(now + 10, idle_timeout_s=5)
    assert len(retired) == 2 and len(nm.pool.workers) == 1  # the minimum stays
    for worker in retired:
        nm.disconnect(worker.session)  # their connections close: no retry, no respawn
    assert not nm.pool.starting


def _window(session):
    batch = session.take()
    return batch.backpressure if batch is not None and batch.HasField("backpressure") else None


def test_a_driver_is_held_at_max_queued_tasks_and_given_room_under_ninety_percent():
    nm, driver, (w1,), _ = make(cpus=1, depth=1, max_queued=10)
    submit(nm, driver, *[spec() for _ in range(9)])
    assert _window(driver) is None  # 9 kept: under the limit
    nm.handle_batch(w1, raylet_pb2.ClientBatch(submit=[spec()]))  # 10, but from a worker: never held
    batch = w1.take()
    assert not batch.HasField("backpressure") and _window(driver) is None
    running = [batch.execute[0].spec.task_id]
    submit(nm, driver, spec())
    window = _window(driver)
    # Held: no allowance past the 10 tasks it sent.
    assert window.hold_submissions and window.submit_allowance == 10
    assert window.queued_tasks == 11 and window.max_queued_tasks == 10
    for kept in (10, 9):  # not yet under 90% of the limit
        finish(nm, w1, running.pop())
        running.append(executed(w1)[0].spec.task_id)
        assert _window(driver) is None, kept
    finish(nm, w1, running.pop())  # 8 kept: room for 2 more
    running.append(executed(w1)[0].spec.task_id)
    window = _window(driver)
    assert window.hold_submissions and window.submit_allowance == 12 and window.queued_tasks == 8
    finish(nm, w1, running.pop())  # the allowance is not used up: nothing more to say
    running.append(executed(w1)[0].spec.task_id)
    assert _window(driver) is None
    submit(nm, driver, spec(), spec())  # used up (9 kept): more once under 9 again
    assert _window(driver) is None
    finish(nm, w1, running.pop())
    window = _window(driver)
    assert window.hold_submissions and window.submit_allowance == 12 + 2 and window.queued_tasks == 8
    assert nm.admission.holds_total == 1 and list(nm.admission.held) == [driver.client_id]


def test_held_drivers_share_the_room():
    nm, d1, (w1,), _ = make(cpus=1, depth=1, max_queued=10)
    d2 = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\2")
    nm.connect(d2)
    d2.take()
    submit(nm, d1, *[spec() for _ in range(5)])
    submit(nm, d2, *[spec() for _ in range(5)])  # 10: d2 held
    submit(nm, d1, spec())  # 11: d1 held too
    assert _window(d1).submit_allowance == 6 and _window(d2).submit_allowance == 5
    for _ in range(3):  # 8 kept: 2 of room, one each
        finish(nm, w1, executed(w1)[0].spec.task_id)
    assert _window(d1).submit_allowance == 7 and _window(d2).submit_allowance == 6


def test_a_held_driver_that_disconnects_is_forgotten():
    nm, driver, _workers, _ = make(cpus=1, max_queued=2)
    submit(nm, driver, spec(), spec())
    assert _window(driver).hold_submissions
    nm.disconnect(driver)
    assert not nm.admission.held


def test_memory_candidates_are_the_workers_running_work():
    nm, driver, (w1, w2), _ = make(cpus=2, depth=1)
    retriable, final = spec(retries=2, name="retriable"), spec(name="final")
    submit(nm, driver, retriable, final)
    candidates = {c.description: c for c in nm.memory_candidates()}
    assert set(candidates) == {"retriable", "final"}
    assert candidates["retriable"].retriable and not candidates["final"].retriable
    ran_retriable = w1 if [e.spec.task_id for e in executed(w1)] == [retriable.task_id] else w2
    assert candidates["retriable"].worker_id == ran_retriable.worker_id


def test_past_max_inline_bytes_every_client_writes_small_values_to_the_store_until_under_ninety_percent():
    nm, driver, (w1, w2), _ = make(cpus=2, max_inline=1000)
    for session in (driver, w1, w2):
        session.take()
    puts = [common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"x" * 400)
            for _ in range(3)]
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=puts[:2], add_refs=[p.object_id for p in puts[:2]]))
    assert all(_window(s) is None for s in (driver, w1, w2))  # 800 bytes: under 1000
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=puts[2:], add_refs=[puts[2].object_id]))
    windows = [_window(s) for s in (driver, w1, w2)]  # 1200: every client is told
    assert all(w.store_small_values and w.inline_bytes == 1200 and not w.hold_submissions for w in windows)
    late = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\2")
    nm.connect(late)  # a client that connects meanwhile is told at once
    assert _window(late).store_small_values
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[puts[0].object_id]))  # 800: under 90%
    windows = [_window(s) for s in (driver, w1, w2, late)]
    assert all(not w.store_small_values and w.inline_bytes == 800 for w in windows)


def test_max_queued_tasks_defaults_to_two_thousand_or_what_a_twentieth_of_memory_holds():
    from ember_raylet.admission import default_max_queued_tasks

    assert default_max_queued_tasks(24 << 30) == 2_000
    assert default_max_queued_tasks(0) == 2_000  # (memory unknown)
    assert default_max_queued_tasks(150 << 20) == (150 << 20) // 20 // 5000  # (1,572)
    assert default_max_queued_tasks(1 << 20) == 1_000
