"""get_runtime_context(): what the current process, task and actor are
(ids, namespace, the resources held, whether a cancel came), and
get_gpu_ids(), as in Ray."""

from __future__ import annotations

from typing import Any

from ember._private import runtime


def _require_worker(what: str) -> None:
    if runtime.task_context().task_id is None:
        raise RuntimeError(f"{what} is only available inside a task or actor, not in a driver")


class RuntimeContext:
    def get_job_id(self) -> str:
        return runtime.current_job_id().hex()

    def get_node_id(self) -> str:
        return runtime.client().node_id.hex()

    def get_worker_id(self) -> str:
        """This process's id: a worker's, or the driver's connection to its raylet."""
        c = runtime.client()
        return (c.worker_id or c.info.client_id).hex()

    def get_task_id(self) -> str | None:
        """The running task's id; None in a driver."""
        task_id = runtime.task_context().task_id
        return task_id.hex() if task_id else None

    def get_actor_id(self) -> str | None:
        """The current actor's id; None outside an actor."""
        actor_id = runtime.task_context().actor_id
        return actor_id.hex() if actor_id else None

    def get_actor_name(self) -> str | None:
        """The current actor's name ("" if unnamed); None outside an actor."""
        return runtime.task_context().actor_name if runtime.task_context().actor_id else None

    @property
    def current_actor(self) -> Any:
        """A handle to the current actor (inside one of its methods)."""
        ctx = runtime.task_context()
        if not ctx.actor_id:
            raise RuntimeError("current_actor is only available inside an actor")
        return ctx.actor_handle

    @property
    def was_current_actor_reconstructed(self) -> bool:
        """Whether the current actor was restarted (its constructor run again)."""
        ctx = runtime.task_context()
        if not ctx.actor_id:
            raise RuntimeError("was_current_actor_reconstructed is only available inside an actor")
        return ctx.actor_restarts > 0

    def is_canceled(self) -> bool:
        """Whether ember.cancel reached the running task: a running actor
        call is not interrupted, it checks this to stop (as in Ray)."""
        _require_worker("is_canceled()")
        if runtime.task_context().is_async_actor:
            raise RuntimeError("is_canceled() is not supported in an async actor (a cancel cancels its asyncio task)")
        return runtime.task_context().task_id in runtime.cancelled_tasks

    def get_assigned_resources(self) -> dict[str, float]:
        """What the running task holds (in an actor: what the actor holds),
        by plain names even inside a placement group: {"CPU": 1.0}."""
        _require_worker("get_assigned_resources()")
        return dict(runtime.task_context().resources)

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        return {"GPU": [str(i) for i in get_gpu_ids()]}

    @property
    def namespace(self) -> str:
        return runtime.current_namespace()

    @property
    def job_id(self) -> str:
        return self.get_job_id()

    @property
    def node_id(self) -> str:
        return self.get_node_id()

    @property
    def task_id(self) -> str | None:
        return self.get_task_id()

    @property
    def actor_id(self) -> str | None:
        return self.get_actor_id()

    @property
    def worker_id(self) -> str:
        return self.get_worker_id()


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext()


def get_gpu_ids() -> list[int]:
    """The GPUs the running task holds. Raylets do not hand out GPU ids
    (nor set CUDA_VISIBLE_DEVICES) yet, so this is empty everywhere."""
    return []
