"""Tasks that submit tasks and wait for them, to any depth, on a cluster of
2 CPUs: the waited-on tasks run on threads of the waiting worker, so the
pool stays at its size and nothing deadlocks."""

from __future__ import annotations

import pathlib

import pytest

import ember
from ember import exceptions
from tests.conftest import ember_processes, shm_files, wait_gone
from tests.helpers import driver_output, wait_until


@pytest.fixture(scope="module")
def small_cluster():
    """2 CPUs, drivers warned once 20 tasks run nested on one node."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EMBER_NESTED_TASKS_WARNING", "20")
    info = ember.init(num_cpus=2)
    mp.undo()
    yield info
    ember.shutdown()
    assert not wait_gone(info["session_dir"])
    assert not shm_files(f"ember-{pathlib.Path(info['session_dir']).name[-6:]}")


@ember.remote
def fib(n):
    return n if n < 2 else sum(ember.get([fib.remote(n - 1), fib.remote(n - 2)]))


@ember.remote
def chain(depth):
    """Its own task id, and those of the tasks it waited on, deepest last."""
    me = ember.get_runtime_context().get_task_id()
    return [me] if depth == 0 else [me, *ember.get(chain.remote(depth - 1))]


@ember.remote
def spin_until_cancelled(path):
    pathlib.Path(path).write_text("started")
    try:
        while True:
            pass
    except exceptions.TaskCancelledError:
        pathlib.Path(path).write_text("cancelled")
        raise


@ember.remote
def wait_for_child(path):
    return ember.get(spin_until_cancelled.remote(path))


def worker_processes(info) -> list:
    return [p for p in ember_processes(info["session_dir"]) if "ember._private.worker" in " ".join(p.cmdline())]


def test_fib_15_on_two_cpus_keeps_the_pool_at_its_size(small_cluster):
    with driver_output() as output:
        assert ember.get(fib.remote(15), timeout=120) == 610
        # 1973 tasks, most waiting at some point: a zygote and 2 workers, no more.
        assert len(worker_processes(small_cluster)) <= 3
        # The drivers heard why once, as a line of the raylet's.
        output.wait_for(lambda out, err: "run nested inside tasks" in err, "the nested-tasks warning")
        assert ember.get(fib.remote(12), timeout=60) == 144
    assert output.err.count("run nested inside tasks") == 1


def test_each_nested_task_sees_its_own_runtime_context(small_cluster):
    ids = ember.get(chain.remote(6), timeout=60)
    assert len(ids) == 7 and len(set(ids)) == 7


def test_cancelling_a_parent_cancels_the_child_on_its_thread(small_cluster, tmp_path):
    marker = tmp_path / "child"
    parent = wait_for_child.remote(str(marker))
    wait_until(lambda: marker.exists(), what="the child to start")
    ember.cancel(parent)  # recursive, as Ray's default
    with pytest.raises(exceptions.TaskCancelledError):
        ember.get(parent, timeout=30)
    wait_until(lambda: marker.read_text() == "cancelled", what="the child to be interrupted")
    # Both CPUs are free again.
    assert ember.get(fib.remote(8), timeout=60) == 21
