"""Remote tasks end to end through real services and worker processes."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import ember
from ember import exceptions
from tests import helpers
from tests.helpers import driver_output, wait_until

pytestmark = pytest.mark.usefixtures("cluster")


@ember.remote
def double(x):
    return x * 2


@ember.remote
def add(a, b):
    return a + b


@ember.remote(num_returns=3)
def three(x):
    return x, x + 1, x + 2


@ember.remote
def fail(msg):
    helpers.raise_my_error(msg)


@ember.remote
def context_ids():
    ctx = ember.get_runtime_context()
    return ctx.get_task_id(), ctx.get_job_id(), ctx.get_node_id(), ctx.get_actor_id()


def test_basic_and_many():
    assert ember.get(double.remote(21)) == 42
    assert ember.get([double.remote(i) for i in range(100)]) == [i * 2 for i in range(100)]


def test_ten_thousand_small_tasks():
    refs = [double.remote(i) for i in range(10_000)]
    assert sum(ember.get(refs)) == 2 * sum(range(10_000))


def test_options_and_num_returns():
    a, b, c = three.remote(1)
    assert ember.get([a, b, c]) == [1, 2, 3]
    r = double.options(num_cpus=0.5, name="half").remote(5)
    assert ember.get(r) == 10


def test_wrong_num_returns_is_an_error():
    bad = three.options(num_returns=2)
    r1, r2 = bad.remote(1)
    with pytest.raises(ValueError, match="num_returns=2"):
        ember.get(r1)


def test_unknown_option_rejected():
    with pytest.raises(ValueError, match="unknown option 'bogus'"):
        double.options(bogus=1)
    with pytest.raises(ValueError, match="num_cpus"):
        double.options(num_cpus=-1)


def test_direct_call_rejected():
    with pytest.raises(TypeError, match=r"\.remote"):
        double(1)


def test_refs_as_arguments_wait_for_readiness():
    slow = ember.remote(helpers.sleep_then).remote(0.3, 5)
    assert ember.get(add.remote(slow, 1)) == 6


def test_nested_refs_stay_refs():
    @ember.remote
    def inspect(items, mapping):
        return [type(items[0]).__name__, ember.get(items[0]), ember.get(mapping["k"])]

    r1, r2 = double.remote(1), double.remote(2)
    assert ember.get(inspect.remote([r1], {"k": r2})) == ["ObjectRef", 2, 4]


def test_task_returning_a_ref():
    @ember.remote
    def make_ref():
        return ember.put("inside")

    inner = ember.get(make_ref.remote())
    assert isinstance(inner, ember.ObjectRef)
    assert ember.get(inner) == "inside"


def test_nested_tasks():
    @ember.remote
    def fan_out(n):
        return sum(ember.get([double.remote(i) for i in range(n)]))

    assert ember.get([fan_out.remote(10) for _ in range(4)]) == [90] * 4


def test_deep_nesting_does_not_deadlock():
    @ember.remote
    def depth(n):
        return 0 if n == 0 else 1 + ember.get(depth.remote(n - 1))

    assert ember.get(depth.remote(6), timeout=60) == 6


def test_exception_is_typed_and_carries_traceback():
    with pytest.raises(helpers.MyError) as info:
        ember.get(fail.remote("boom"))
    err = info.value
    assert isinstance(err, exceptions.TaskError)
    assert "boom" in str(err) and "raise_my_error" in err.traceback_str
    assert err.cause.args == ("boom",)


def test_failed_dependency_propagates():
    with pytest.raises(helpers.MyError):
        ember.get(add.remote(fail.remote("dep"), 1))


def test_get_timeout():
    r = ember.remote(helpers.sleep_then).remote(2, 1)
    t = time.monotonic()
    with pytest.raises(exceptions.GetTimeoutError):
        ember.get(r, timeout=0.2)
    assert time.monotonic() - t < 1.5
    with pytest.raises(TimeoutError):  # also a builtin TimeoutError, as in Ray
        ember.get(r, timeout=0)


def test_put_get_roundtrip_and_bad_input():
    value = {"a": [1, 2, 3], "b": "x" * 1000}
    assert ember.get(ember.put(value)) == value
    with pytest.raises(TypeError, match="ObjectRef"):
        ember.put(ember.put(1))
    with pytest.raises(TypeError):
        ember.get("not a ref")
    with pytest.raises(TypeError, match="cannot serialize"):
        ember.put(threading.Lock())


def test_unpicklable_argument_fails_cleanly_and_cluster_lives_on():
    with pytest.raises(TypeError, match=r"cannot send argument 1 of double\(\)"):
        double.remote(threading.Lock())
    assert ember.get(double.remote(2)) == 4


def test_large_values_through_the_store_zero_copy():
    a = np.arange(100_000_000 // 8, dtype=np.float64)
    ref = ember.put(a)
    b = ember.get(ref)
    assert not b.flags.writeable
    assert np.array_equal(a[:1000], b[:1000]) and b[-1] == a[-1]
    # The array's memory is a mapping of the store's shared-memory file.
    address = b.ctypes.data
    with open("/proc/self/maps") as maps:
        mapped = [line for line in maps if "/dev/shm/ember-" in line]
    assert any(int(line.split("-")[0], 16) <= address < int(line.split()[0].split("-")[1], 16) for line in mapped)
    with pytest.raises(ValueError):
        b[0] = 1


def test_a_freed_objects_memory_is_reused_once_nobody_reads_it():
    """A get keeps its view cached (pinned); the last ref going lets go of
    it, so the store can reuse its touched memory for the next object of
    that size (fresh shared-memory pages cost more than the copy)."""
    from ember._private import runtime
    from ember.v1 import objectstore_pb2

    client = runtime.client()
    stats = lambda: client.store.Stats(objectstore_pb2.StatsRequest(), timeout=10)  # noqa: E731
    size = 23_456_789
    ref = ember.put(np.ones(size, dtype=np.uint8))
    arr = ember.get(ref)
    (where,) = client.store.Locate(objectstore_pb2.LocateRequest(object_ids=[ref.binary()]), timeout=10).entries
    del arr, ref
    wait_until(lambda: not client.store.Locate(objectstore_pb2.LocateRequest(object_ids=[where.object_id]),
                                               timeout=10).entries[0].found, what="the object freed")
    wait_until(lambda: stats().num_pinned == 0, what="the driver's pin released")
    resident = stats().resident_bytes
    again = ember.put(np.zeros(size, dtype=np.uint8))
    assert stats().resident_bytes - resident < size // 2  # written into touched memory, not fresh pages
    assert ember.get(again)[-1] == 0

def test_large_argument_and_result():
    @ember.remote
    def total(arr):
        return float(arr.sum())

    @ember.remote
    def big(n):
        return np.ones(n)

    a = np.ones(5_000_000)
    assert ember.get(total.remote(a)) == 5_000_000.0  # passed by value, stored
    assert ember.get(total.remote(ember.put(a))) == 5_000_000.0
    assert ember.get(big.remote(3_000_000)).sum() == 3_000_000


def test_wait():
    fast = [double.remote(i) for i in range(5)]
    slow = ember.remote(helpers.sleep_then).remote(3, 0)
    ready, not_ready = ember.wait(fast + [slow], num_returns=5, timeout=10)
    assert set(ready) == set(fast) and not_ready == [slow]
    ready, not_ready = ember.wait([slow], timeout=0.1)
    assert ready == [] and not_ready == [slow]
    with pytest.raises(ValueError):
        ember.wait(fast, num_returns=10)
    with pytest.raises(TypeError):
        ember.wait(fast[0])


def test_wait_on_many_refs_counts_what_arrives_while_it_waits(tmp_path):
    # From 64 ids on, a wait watches the missing ones shrink as values
    # arrive instead of looking at every id on each wake-up.
    gate = tmp_path / "gate"

    @ember.remote(num_returns=20)
    def gated():
        while not gate.exists():
            time.sleep(0.01)
        return list(range(20))

    slow = gated.remote()  # one task (one CPU) holding 20 refs back
    fast = [double.remote(i) for i in range(80)]
    refs = fast + slow
    ready, not_ready = ember.wait(refs, num_returns=80, timeout=30)
    assert set(ready) == set(fast) and set(not_ready) == set(slow)
    ready, not_ready = ember.wait(refs, num_returns=85, timeout=0.3)  # times out with what is there
    assert set(ready) == set(fast) and set(not_ready) == set(slow)
    threading.Timer(0.3, gate.touch).start()  # the slow ones arrive while the next wait waits
    ready, not_ready = ember.wait(slow + fast, num_returns=100, timeout=30)
    assert set(ready) == set(slow + fast) and not_ready == []
    assert ember.get(slow + fast + slow[:3]) == list(range(20)) + [2 * i for i in range(80)] + [0, 1, 2]


def test_cancel_queued_and_running(tmp_path):
    sleeper = ember.remote(helpers.touch_then_sleep)
    running = sleeper.remote(str(tmp_path / "1"), 30, 1)
    wait_until((tmp_path / "1").exists, 10, "the task to start")
    ember.cancel(running, force=True)
    with pytest.raises(exceptions.TaskCancelledError):
        ember.get(running, timeout=10)
    # Non-forced cancel interrupts Python code running in the task.
    @ember.remote
    def spin(started):
        pathlib.Path(started).touch()
        while True:
            sum(range(1000))

    r = spin.remote(str(tmp_path / "spin"))
    wait_until((tmp_path / "spin").exists, 10, "the task to start")
    ember.cancel(r)
    with pytest.raises(exceptions.TaskCancelledError):
        ember.get(r, timeout=10)
    # ...and a blocking call in it (as Ray's KeyboardInterrupt does).
    asleep = sleeper.remote(str(tmp_path / "2"), 30, 2)
    wait_until((tmp_path / "2").exists, 10, "the task to start")
    ember.cancel(asleep)
    with pytest.raises(exceptions.TaskCancelledError):
        ember.get(asleep, timeout=10)
    assert ember.get(double.remote(1)) == 2


def test_a_cancel_that_comes_while_the_worker_sets_a_task_up_cancels_it(tmp_path):
    # The worker is decoding the argument (as it may be fetching the
    # function): the task's code has not started and cannot be interrupted
    # yet, so the cancel must wait for it to start, not be dropped.
    ref = double.remote(helpers.SlowToDecode(str(tmp_path / "decoding"), 2))
    wait_until((tmp_path / "decoding").exists, 10, "the worker to decode the argument")
    ember.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        ember.get(ref, timeout=10)
    assert ember.get(double.remote(1)) == 2


def test_worker_crash_is_retried_then_typed():
    crash = ember.remote(helpers.crash_process)
    with pytest.raises(exceptions.WorkerCrashedError, match="max_retries=1"):
        ember.get(crash.options(max_retries=1).remote(), timeout=60)


def test_retry_exceptions():
    marker = f"/tmp/ember-test-retry-{os.getpid()}"

    @ember.remote(max_retries=2, retry_exceptions=True)
    def flaky():
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("first try fails")
        return "ok"

    try:
        assert ember.get(flaky.remote()) == "ok"
    finally:
        os.unlink(marker)


def test_runtime_context():
    task_id, job_id, node_id, actor_id = ember.get(context_ids.remote())
    ctx = ember.get_runtime_context()
    assert ctx.get_task_id() is None and task_id and len(task_id) == 32
    assert job_id == ctx.get_job_id() and node_id == ctx.get_node_id() and actor_id is None


def test_cluster_views():
    (node,) = ember.nodes()
    assert node["Alive"] and node["Resources"]["CPU"] == 2
    assert set(node) >= {"NodeID", "Alive", "NodeManagerAddress", "Resources"}
    assert ember.cluster_resources()["CPU"] == 2
    wait_until(lambda: ember.available_resources().get("CPU") == 2, what="both CPUs free again")


def test_infeasible_task_warns():
    with driver_output() as output:
        r = double.options(num_cpus=64).remote(1)
        output.wait_for(lambda out, err: "no node has that much" in err, "the warning that no node fits")
    assert not ember.wait([r], timeout=0)[0]
    ember.cancel(r)


def test_init_twice_and_reinit_ok():
    with pytest.raises(RuntimeError, match="already"):
        ember.init()
    assert ember.init(ignore_reinit_error=True)["node_id"]
    assert ember.is_initialized()


def test_unknown_function_is_a_clear_task_error():
    from ember_common import ids
    from ember._private import runtime
    from ember.v1 import raylet_pb2

    c = runtime.client()
    spec = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=b"\1" * 32, function_name="ghost",
                               num_returns=1, max_retries=0, job_id=runtime.current_job_id())
    c.submit(spec)
    ref = ember.ObjectRef(ids.object_id_for(spec.task_id, 1), c)
    with pytest.raises(exceptions.TaskError, match="not in the function table"):
        ember.get(ref, timeout=30)


def test_task_output_reaches_the_driver(cluster):
    @ember.remote
    def chatty(n):
        import sys

        print(f"hello {n} from a task")
        print("to stderr", file=sys.stderr)
        return n

    with driver_output() as output:
        assert ember.get(chatty.remote(7)) == 7
        out, err = output.wait_for(lambda out, err: "hello 7 from a task" in out and "to stderr" in err,
                                   "the task's lines")
    (line,) = [line for line in out.splitlines() if "hello 7 from a task" in line]
    assert re.match(r"\((\S+\.)?chatty pid=\d+\) hello 7 from a task$", line), line


def test_workers_running_small_tasks_never_load_grpc():
    """Workers reach only their raylet (local socket); functions and job
    metadata come through it, so an idle worker stays small and quick to start."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, pathlib, ember
        ember.init(num_cpus=2)
        @ember.remote
        def pid():
            return os.getpid()
        pids = set(ember.get([pid.remote() for _ in range(20)]))
        print(sorted(p for p in pids if "cygrpc" in pathlib.Path(f"/proc/{p}/maps").read_text()), len(pids))
        ember.shutdown()
    """)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded, n = out.stdout.rsplit(" ", 1)
    assert loaded == "[]" and int(n) >= 1, out.stdout


def test_nodes_offer_memory_and_object_store_memory_as_ray_sizes_them():
    from ember_common import node_memory

    total = ember.cluster_resources()
    assert total["object_store_memory"] > 0 and total["memory"] > 0
    # Ray's rule: the store's share of what was available, the rest is memory.
    assert total["memory"] + total["object_store_memory"] <= node_memory.available_bytes() * 1.1
    assert ember.get(double.options(num_cpus=1, memory=min(2 * 1024**3, total["memory"] // 2)).remote(21),
                     timeout=30) == 42
    too_big = double.options(memory=total["memory"] * 2).remote(1)
    ready, _ = ember.wait([too_big], timeout=1)
    assert not ready  # infeasible, as any request no node can hold
    ember.cancel(too_big)
    with pytest.raises(ValueError, match="not implemented for tasks"):
        double.options(object_store_memory=1)
