"""get_runtime_context(): ids of the current job, node, task and actor."""

from __future__ import annotations

from ember._private import runtime


class RuntimeContext:
    def get_job_id(self) -> str:
        return runtime.current_job_id().hex()

    def get_node_id(self) -> str:
        return runtime.client().node_id.hex()

    def get_task_id(self) -> str | None:
        """The running task's id; None in a driver."""
        task_id = runtime.task_context.task_id
        return task_id.hex() if task_id else None

    def get_actor_id(self) -> str | None:
        """The current actor's id; None outside an actor."""
        actor_id = runtime.task_context.actor_id
        return actor_id.hex() if actor_id else None

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


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext()
