"""`ember.cancel()` on this node: a task not yet running ends cancelled; a
forwarded one is cancelled by its peer; a running one is told to stop, or
its worker killed (force; a task on a thread of its own beside waiting
tasks is interrupted instead). Children go first (recursive)."""

from __future__ import annotations

from typing import Callable

from ember.v1 import raylet_pb2

from ember_raylet.task_manager import ASSIGNED, FORWARDED, QUEUED, WAITING, FinishTask, TaskEntry, TaskManager


class Cancellation:
    def __init__(self, tasks: TaskManager, finish: FinishTask, dispatch_after: Callable[[TaskEntry], None],
                 peer_batch: Callable[[bytes], raylet_pb2.ClientBatch],
                 worker_died: Callable[[bytes, str], None]) -> None:
        self._tasks = tasks
        self._finish = finish
        self._dispatch_after = dispatch_after
        self._peer_batch = peer_batch
        self._worker_died = worker_died

    def cancel(self, task_id: bytes, force: bool, recursive: bool, children_only: bool = False) -> None:
        if children_only:
            for child in self._tasks.children_of(task_id):
                self.cancel(child.spec.task_id, force, True)
            return
        task = self._tasks.tasks.get(task_id)
        if task is None:
            return  # finished already: cancel is a no-op, as in Ray
        if recursive:
            for child in self._tasks.children_of(task_id):
                self.cancel(child.spec.task_id, force, recursive)
        task.cancelled = True
        if task.state in (WAITING, QUEUED):
            self._finish(task, error=task.cancelled_failure())
            self._dispatch_after(task)
        elif task.state == FORWARDED:
            self._peer_batch(task.node).cancel.add(task_id=task_id, force=force, recursive=recursive)  # type: ignore[arg-type]
        elif task.state == ASSIGNED and task.worker is not None:
            worker = task.worker
            # Never kill an actor for one call, nor the tasks a thread-hosted
            # task runs beside (it is interrupted instead).
            if force and worker.actor_id is None and task_id not in worker.threads:
                worker.process.kill()
                self._worker_died(worker.worker_id, "killed by ember.cancel(force=True)")
            elif worker.session is not None:
                worker.session.outbox.cancel.append(task_id)
                worker.session.touch()
