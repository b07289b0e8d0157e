"""What a task or actor learns of itself (get_runtime_context(), get_gpu_ids,
current_actor), __ray_ready__, @ember.method options, and ember.cancel on
actor calls, with Ray 2.60's semantics."""

from __future__ import annotations

import asyncio
import pathlib
import time

import pytest

import ember
from ember import exceptions
from tests.helpers import wait_until

pytestmark = pytest.mark.usefixtures("cluster")


def _context() -> dict:
    ctx = ember.get_runtime_context()
    return {"resources": ctx.get_assigned_resources(), "gpus": ember.get_gpu_ids(),
            "accelerators": ctx.get_accelerator_ids(), "actor_name": ctx.get_actor_name(),
            "namespace": ctx.namespace, "task_id": ctx.get_task_id(), "worker_id": ctx.get_worker_id(),
            "canceled": ctx.is_canceled()}


@ember.remote
def task_context() -> dict:
    return _context()


@ember.remote
class Probe:
    def context(self) -> dict:
        out = _context()
        ctx = ember.get_runtime_context()
        out["actor_id"] = ctx.get_actor_id()
        out["reconstructed"] = ctx.was_current_actor_reconstructed
        out["me"] = ctx.current_actor
        return out

    def spin_until_canceled(self, started: str) -> str:
        pathlib.Path(started).touch()
        while not ember.get_runtime_context().is_canceled():
            time.sleep(0.01)
        return "saw the cancel"

    @ember.method(num_returns=2, concurrency_group="io")
    def pair(self) -> tuple:
        return 1, 2


def test_a_task_sees_what_it_holds_and_who_it_is():
    got = ember.get(task_context.options(num_cpus=1, memory=10**6).remote())
    assert got["resources"] == {"CPU": 1.0, "memory": 1e6}
    assert got["gpus"] == [] and got["accelerators"] == {"GPU": []}
    assert got["actor_name"] is None and got["canceled"] is False
    assert got["namespace"] == ember.get_runtime_context().namespace
    assert len(got["task_id"]) == 32 and len(got["worker_id"]) == 32
    ctx = ember.get_runtime_context()
    assert ctx.get_actor_name() is None and ember.get_gpu_ids() == []
    assert ctx.get_worker_id() != got["worker_id"]
    with pytest.raises(RuntimeError):
        ctx.is_canceled()  # (a driver: as Ray)
    with pytest.raises(RuntimeError):
        ctx.get_assigned_resources()


def test_an_actor_sees_its_name_resources_and_own_handle():
    named = Probe.options(name="probe", num_cpus=1).remote()
    unnamed = Probe.remote()
    got = ember.get(named.context.remote())
    assert got["actor_name"] == "probe" and got["resources"] == {"CPU": 1.0}
    assert got["reconstructed"] is False and got["me"] == named
    other = ember.get(unnamed.context.remote())
    assert other["actor_name"] == "" and other["resources"] == {}  # a default actor holds no CPU (Ray)
    assert ember.get(got["me"].pair.remote()[1]) == 2  # the own handle calls the actor
    assert ember.get(list(named.pair.remote())) == [1, 2]
    ember.kill(named)


def test_ray_ready_is_true_once_created_and_actor_died_if_creation_failed():
    @ember.remote
    class Broken:
        def __init__(self) -> None:
            raise ValueError("no")

    assert ember.get(Probe.remote().__ray_ready__.remote(), timeout=30) is True
    with pytest.raises(exceptions.ActorDiedError):
        ember.get(Broken.remote().__ray_ready__.remote(), timeout=30)


@pytest.mark.parametrize("max_concurrency", [1, 2])
def test_cancel_flags_a_running_sync_call_and_fails_it(tmp_path, max_concurrency):
    p = Probe.options(max_concurrency=max_concurrency).remote()
    ember.get(p.__ray_ready__.remote())
    started = tmp_path / "started"
    running = p.spin_until_canceled.remote(str(started))
    queued = p.context.remote()
    wait_until(started.exists, 30, "the call to start")
    with pytest.raises(ValueError, match="force=True"):
        ember.cancel(running, force=True)
    if max_concurrency == 1:
        ember.cancel(queued)  # not started: removed
        with pytest.raises(exceptions.TaskCancelledError):
            ember.get(queued, timeout=30)
    ember.cancel(running)
    # The call saw the flag and returned; its value is dropped, as in Ray.
    with pytest.raises(exceptions.TaskCancelledError):
        ember.get(running, timeout=30)
    assert ember.get(p.context.remote(), timeout=30)["canceled"] is False  # the actor lives on


@ember.remote
class Sleeper:
    async def nap(self, started: str) -> str:
        pathlib.Path(started).touch()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "woke"

    async def was_cancelled(self) -> bool:
        return getattr(self, "cancelled", False)

    async def is_canceled(self) -> str:
        try:
            ember.get_runtime_context().is_canceled()
        except RuntimeError as e:
            return str(e)
        return "no error"


def test_cancel_of_an_async_call_cancels_its_asyncio_task(tmp_path):
    s = Sleeper.remote()
    started = tmp_path / "started"
    ref = s.nap.remote(str(started))
    wait_until(started.exists, 30, "the call to start")
    ember.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        ember.get(ref, timeout=30)
    assert ember.get(s.was_cancelled.remote()) is True
    assert "async actor" in ember.get(s.is_canceled.remote())


@ember.remote
def catches_the_cancel(started: str) -> bool:
    pathlib.Path(started).touch()
    try:
        time.sleep(60)
    except exceptions.TaskCancelledError:
        return ember.get_runtime_context().is_canceled()
    return False


def test_a_task_that_catches_the_cancel_sees_is_canceled(tmp_path):
    started = tmp_path / "started"
    ref = catches_the_cancel.remote(str(started))
    wait_until(started.exists, 30, "the task to start")
    ember.cancel(ref)
    assert ember.get(ref, timeout=30) is True  # a task's value stands (Ray)


def test_cloudpickle_is_reexported():
    import cloudpickle

    import ember.cloudpickle as cp

    assert cp is cloudpickle and ember.cloudpickle is cloudpickle
    assert cp.loads(cp.dumps(lambda x: x + 1))(1) == 2
