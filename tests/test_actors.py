"""Actors end to end on a real local cluster: state and order, concurrency,
handles passed around, names and lifetimes, kill/exit/restart with typed
errors, the ActorPool, and the GCS actor table as `ember list actors` shows it."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ember
from ember.exceptions import ActorDiedError
from ember.util import ActorPool
from tests.conftest import pid_gone

pytestmark = pytest.mark.usefixtures("cluster")
ROOT = pathlib.Path(__file__).resolve().parent.parent


@ember.remote
class Counter:
    def __init__(self, start: int = 0) -> None:
        self.n = start

    def inc(self, by: int = 1) -> int:
        self.n += by
        return self.n

    def value(self) -> int:
        return self.n

    def pid(self) -> int:
        return os.getpid()

    def fail(self) -> None:
        raise KeyError("no such thing")

    @ember.method(num_returns=2)
    def pair(self) -> tuple[int, int]:
        return self.n, -self.n

    def crash(self) -> None:
        os._exit(3)

    def nap(self, seconds: float) -> int:
        time.sleep(seconds)
        return self.n

    def crash_once(self, marker: str) -> str:
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(4)
        return "survived"

    def leave(self) -> None:
        ember.actor.exit_actor()

    def actor_id(self) -> str | None:
        return ember.get_runtime_context().get_actor_id()


def test_state_and_submission_order():
    c = Counter.remote(10)
    assert ember.get([c.inc.remote() for _ in range(200)]) == list(range(11, 211))
    assert ember.get(c.value.remote()) == 210
    a, b = c.pair.remote()
    assert ember.get([a, b]) == [210, -210]
    assert ember.get(c.inc.options(num_returns=1).remote(5)) == 215


def test_method_exception_fails_that_call_only():
    c = Counter.remote()
    with pytest.raises(KeyError) as info:
        ember.get(c.fail.remote())
    assert isinstance(info.value, ember.exceptions.TaskError) and "no such thing" in str(info.value)
    assert ember.get(c.inc.remote()) == 1


def test_handle_misuse_is_a_clear_error():
    c = Counter.remote()
    with pytest.raises(AttributeError, match="no method 'nope'"):
        c.nope.remote()
    with pytest.raises(TypeError, match="cannot be called directly"):
        c.inc()
    with pytest.raises(TypeError, match="cannot be instantiated directly"):
        Counter()
    with pytest.raises(ValueError, match="unknown option"):
        Counter.options(num_cpu=1)
    with pytest.raises(ValueError, match="max_concurrency"):
        Counter.options(max_concurrency=0)


def test_ref_arguments_wait_and_keep_order():
    @ember.remote
    def slow(x):
        time.sleep(0.3)
        return x

    c = Counter.remote()
    first = c.inc.remote(slow.remote(100))  # waits for its argument...
    second = c.inc.remote(1)                # ...and the next call waits behind it
    assert ember.get([first, second]) == [100, 101]


@ember.remote(max_concurrency=4)
class Rendezvous:
    def __init__(self) -> None:
        self.barrier = threading.Barrier(4)

    def meet(self) -> int:
        return self.barrier.wait(timeout=20)


def test_threaded_actor_runs_calls_concurrently():
    r = Rendezvous.remote()
    # Four calls can only pass a 4-party barrier if they run at the same time.
    assert sorted(ember.get([r.meet.remote() for _ in range(4)], timeout=30)) == [0, 1, 2, 3]


@ember.remote
class AsyncGate:
    def __init__(self) -> None:
        self.arrived = 0
        self.running = 0
        self.peak = 0

    async def gather(self, n: int) -> int:
        self.arrived += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            while self.arrived < n:
                await asyncio.sleep(0.01)
        finally:
            self.running -= 1
        return self.arrived

    async def work(self) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1

    def peak_concurrency(self) -> int:
        return self.peak


def test_async_actor_runs_coroutines_concurrently():
    gate = AsyncGate.remote()
    # 20 coroutines that each wait until all 20 arrived: only concurrent
    # execution on the actor's loop lets any of them finish.
    assert ember.get([gate.gather.remote(20) for _ in range(20)], timeout=30) == [20] * 20
    assert ember.get(gate.peak_concurrency.remote()) == 20


def test_async_actor_respects_max_concurrency():
    gate = AsyncGate.options(max_concurrency=3).remote()
    ember.get([gate.work.remote() for _ in range(12)], timeout=30)
    assert ember.get(gate.peak_concurrency.remote()) == 3


def test_handles_passed_to_tasks_and_actors():
    c = Counter.remote()

    @ember.remote
    def bump(handle, times):
        return ember.get([handle.inc.remote() for _ in range(times)])[-1]

    @ember.remote
    class Caller:
        def __init__(self, handle):
            self.handle = handle

        def bump(self):
            return ember.get(self.handle.inc.remote(100))

    assert ember.get(bump.remote(c, 5)) == 5
    caller = Caller.remote(c)
    assert ember.get(caller.bump.remote()) == 105
    assert ember.get(c.value.remote()) == 105


def test_runtime_context_has_the_actor_id():
    c = Counter.remote()
    assert ember.get(c.actor_id.remote()) == c._actor_id.hex()


def test_named_actors():
    a = Counter.options(name="shared-counter").remote(1)
    assert ember.get(ember.get_actor("shared-counter").inc.remote()) == 2
    with pytest.raises(ValueError, match="already exists"):
        Counter.options(name="shared-counter").remote()
    same = Counter.options(name="shared-counter", get_if_exists=True).remote()
    assert ember.get(same.inc.remote()) == 3
    other_ns = Counter.options(name="shared-counter", namespace="elsewhere").remote(50)
    assert ember.get(ember.get_actor("shared-counter", namespace="elsewhere").inc.remote()) == 51
    with pytest.raises(ValueError, match="no live actor named 'missing'"):
        ember.get_actor("missing")
    ember.kill(a)
    ember.kill(other_ns)
    deadline = time.monotonic() + 10
    while True:  # the name is freed once the GCS hears the actor died
        try:
            ember.get_actor("shared-counter")
        except ValueError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reborn = Counter.options(name="shared-counter").remote(7)
    assert ember.get(reborn.value.remote()) == 7
    ember.kill(reborn)


def test_kill_is_typed_and_final():
    c = Counter.options(max_restarts=3).remote()
    pid = ember.get(c.pid.remote())
    ember.kill(c)
    with pytest.raises(ActorDiedError, match="killed by ember.kill"):
        ember.get(c.inc.remote())
    assert pid_gone(pid)
    with pytest.raises(TypeError):
        ember.kill("not a handle")


def test_kill_with_restart_resets_state():
    c = Counter.options(max_restarts=1).remote(5)
    assert ember.get(c.inc.remote()) == 6
    pid = ember.get(c.pid.remote())
    ember.kill(c, no_restart=False)
    assert ember.get(c.inc.remote()) == 6  # the constructor ran again
    assert ember.get(c.pid.remote()) != pid


def test_a_call_sent_with_the_kill_runs_on_the_restarted_actor():
    # Kill and call leave in one flush (the sender was busy): the call must
    # still come after the kill, not die with the old worker.
    from ember._private import runtime

    c = Counter.options(max_restarts=1).remote(5)
    pid = ember.get(c.pid.remote())
    client = runtime.client()
    with client._send_lock:
        ember.kill(c, no_restart=False)
        ref = c.inc.remote()
    client._flush()
    assert ember.get(ref, timeout=30) == 6
    assert ember.get(c.pid.remote()) != pid


def test_crash_restarts_up_to_max_restarts_then_dies(tmp_path):
    c = Counter.options(max_restarts=2).remote()
    for _ in range(2):
        ember.get(c.inc.remote())
        with pytest.raises(ActorDiedError, match="died while running crash"):
            ember.get(c.crash.remote())
        assert ember.get(c.value.remote()) == 0  # restarted, state reset
    with pytest.raises(ActorDiedError, match="died while running crash"):
        ember.get(c.crash.remote())
    with pytest.raises(ActorDiedError, match=r"worker process \(pid \d+\) died.*after 2 restart"):
        ember.get(c.value.remote())


def test_interrupted_call_is_retried_with_max_task_retries(tmp_path):
    c = Counter.options(max_restarts=1, max_task_retries=1).remote()
    assert ember.get(c.crash_once.remote(str(tmp_path / "marker")), timeout=60) == "survived"


def test_exit_actor_ends_it_without_restart():
    c = Counter.options(max_restarts=5).remote()
    pid = ember.get(c.pid.remote())
    with pytest.raises(ActorDiedError, match="exit_actor"):
        ember.get(c.leave.remote())
    with pytest.raises(ActorDiedError, match="exit_actor"):
        ember.get(c.inc.remote())
    assert pid_gone(pid)
    with pytest.raises(TypeError, match="only be called from inside an actor"):
        ember.actor.exit_actor()


def test_constructor_error_is_typed():
    @ember.remote
    class Broken:
        def __init__(self):
            raise ValueError("bad config")

        def f(self):
            return 1

    b = Broken.remote()
    with pytest.raises(ActorDiedError, match="constructor raised: ValueError: bad config"):
        ember.get(b.f.remote())


def test_actor_with_no_handle_left_ends_after_its_calls():
    c = Counter.remote()
    pid = ember.get(c.pid.remote())
    ref = c.inc.remote()
    del c  # the pending call still runs
    assert ember.get(ref) == 1
    assert pid_gone(pid), "an actor nobody can reach must end"


def test_actor_pool():
    pool = ActorPool([Counter.remote(100), Counter.remote(200)])
    out = list(pool.map(lambda a, v: a.inc.remote(v), [1, 2, 3, 4]))
    assert len(out) == 4 and all(o > 100 for o in out)
    assert sorted(pool.map_unordered(lambda a, v: a.value.remote(), range(4)))[-1] > 200
    pool.submit(lambda a, v: a.inc.remote(v), 0)
    pool.submit(lambda a, v: a.inc.remote(v), 0)
    pool.submit(lambda a, v: a.inc.remote(v), 0)  # queued until an actor is free
    assert pool.has_next() and not pool.has_free()
    results = [pool.get_next(), pool.get_next(), pool.get_next()]
    assert len(results) == 3 and not pool.has_next()
    with pytest.raises(StopIteration):
        pool.get_next()


def test_actor_pool_get_next_after_results_came_out_of_order():
    pool = ActorPool([Counter.remote(), Counter.remote()])
    # The first finishes last: no result is left to be "next" in order.
    assert len(list(pool.map_unordered(lambda a, s: a.nap.remote(s), [0.5, 0.0]))) == 2
    pool.submit(lambda a, v: a.inc.remote(v), 5)
    assert pool.get_next() >= 5 and not pool.has_next()


def _driver(cluster: dict, code: str) -> subprocess.CompletedProcess[str]:
    token = (pathlib.Path(cluster["session_dir"]) / "token").read_text().strip()
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EMBER_AUTH_TOKEN": token}, cwd=ROOT)


def test_lifetimes_across_drivers(cluster):
    out = _driver(cluster, f"""
        import ember
        ember.init(address={cluster["gcs_address"]!r})
        @ember.remote
        class Box:
            def __init__(self, v): self.v = v
            def get(self): return self.v
            def pid(self):
                import os; return os.getpid()
        keeper = Box.options(name="keeper", lifetime="detached").remote("kept")
        owned = Box.options(name="owned").remote("mine")
        print(ember.get(keeper.pid.remote()), ember.get(owned.pid.remote()))
    """)
    assert out.returncode == 0, out.stderr
    keeper_pid, owned_pid = map(int, out.stdout.split())
    # The driver exited: its detached actor lives on, its owned one died.
    assert pid_gone(owned_pid)
    keeper = ember.get_actor("keeper")
    assert ember.get(keeper.get.remote()) == "kept"
    with pytest.raises(ValueError):
        ember.get_actor("owned")
    listed = subprocess.run(["ember", "list", "actors", "--all", "--json", "--address", cluster["gcs_address"]],
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, "EMBER_AUTH_TOKEN": _driver_token(cluster)})
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in map(json.loads, listed.stdout.splitlines()) if r["name"] in ("keeper", "owned")}
    assert rows["keeper"]["state"] == "ALIVE" and rows["keeper"]["detached"] and rows["keeper"]["pid"] == keeper_pid
    assert rows["owned"]["state"] == "DEAD" and rows["owned"]["death"].startswith("OWNER_DIED")
    ember.kill(keeper)
    assert pid_gone(keeper_pid)


def _driver_token(cluster: dict) -> str:
    return (pathlib.Path(cluster["session_dir"]) / "token").read_text().strip()


def test_list_actors_shows_restarts_and_causes(cluster):
    c = Counter.options(name="listed", max_restarts=1).remote()
    ember.get(c.inc.remote())
    with pytest.raises(ActorDiedError):
        ember.get(c.crash.remote())
    ember.get(c.inc.remote())  # restarted
    deadline = time.monotonic() + 10
    while True:
        out = subprocess.run(["ember", "list", "actors", "--address", cluster["gcs_address"]],
                             capture_output=True, text=True, timeout=30,
                             env={**os.environ, "EMBER_AUTH_TOKEN": _driver_token(cluster)})
        assert out.returncode == 0, out.stderr
        line = next((l for l in out.stdout.splitlines() if " listed " in l), "")
        if "ALIVE" in line and line.split()[-1] == "1":
            break
        assert time.monotonic() < deadline, out.stdout
        time.sleep(0.1)
    ember.kill(c)
