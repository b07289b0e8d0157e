"""A task's end on this node: its returns (or its error, for each) become
ready, and its arguments are unpinned, unless something still needs them:
the lineage (a return stored on another node may have to be rebuilt) or an
actor's restarts (its constructor runs again). Or its drop, unfinished
(its submitter is gone)."""

from __future__ import annotations

import logging
from typing import Callable

from ember.v1 import common_pb2, raylet_pb2

from ember_common import ids
from ember_common.object_layout import Failure
from ember_raylet.actor_table import DEAD, ActorTable
from ember_raylet.lineage import Lineage
from ember_raylet.metrics import DEPENDENCY_ERROR, RayletMetrics
from ember_raylet.object_directory import ObjectDirectory
from ember_raylet.task_events import TaskEvents
from ember_raylet.task_manager import ASSIGNED, FORWARDED, QUEUED, TaskEntry, TaskManager

log = logging.getLogger(__name__)


class TaskCompletion:
    def __init__(self, node_id: bytes, tasks: TaskManager, objects: ObjectDirectory, actors: ActorTable,
                 lineage: Lineage, forward_count: dict[bytes, int], ready: Callable[[list[bytes]], None],
                 remote_creation_finished: Callable[[bytes, list[common_pb2.ObjectValue]], bool],
                 peer_batch: Callable[[bytes], raylet_pb2.ClientBatch], metrics: RayletMetrics | None = None,
                 task_events: TaskEvents | None = None) -> None:
        self._node_id = node_id
        self._tasks = tasks
        self._objects = objects
        self._actors = actors
        self._lineage = lineage
        self._forward_count = forward_count  # unfinished tasks forwarded, per node
        self._ready = ready  # wake the tasks waiting on values now set
        # An actor creation that ran on another node ended: True if its
        # arguments stay pinned there for restarts.
        self._remote_creation_finished = remote_creation_finished
        self._peer_batch = peer_batch
        self._metrics = metrics or RayletMetrics()
        self._task_events = task_events

    def finish(self, task: TaskEntry, returns: list[common_pb2.ObjectValue] | None = None,
               error: Failure | None = None, failed_dep: common_pb2.ObjectValue | None = None) -> None:
        spec = task.spec
        objects = self._objects
        self._tasks.tasks.pop(spec.task_id, None)
        if task.state == FORWARDED and not spec.actor_id:
            self._forward_count[task.node] -= 1  # type: ignore[index]
        actor = self._actors.get(spec.actor_id) if spec.actor_id else None
        if actor is not None and not spec.HasField("actor_creation"):
            actor.inflight.discard(spec.task_id)
            if task.state != ASSIGNED and spec.task_id in actor.queue:
                actor.queue.remove(spec.task_id)
        elif task.state == QUEUED:
            self._tasks.remove_queued(task)
        if returns is None:  # it failed without running to its end here (a worker's results count in task_done)
            self._metrics.tasks_failed[DEPENDENCY_ERROR if failed_dep is not None else error.type.value] += 1  # type: ignore[union-attr]
            if self._task_events is not None:
                self._task_events.failure(spec, error if failed_dep is None else None)
            err_data = failed_dep.data if failed_dep is not None else error.encode()  # type: ignore[union-attr]
            returns = [
                common_pb2.ObjectValue(object_id=ids.object_id_for(spec.task_id, i + 1), data=err_data, is_error=True)
                for i in range(spec.num_returns)
            ]
        own: list[common_pb2.ObjectValue] = []
        yielded: list[common_pb2.ObjectValue] = []  # a dynamic generator's values: pinned by its one return
        for value in returns:
            if ids.task_id_of(value.object_id) != spec.task_id:
                log.warning("dropping return %s that does not belong to task %s", value.object_id.hex(), spec.task_id.hex())
                continue
            (yielded if ids.index_of(value.object_id) > spec.num_returns else own).append(value)
        if yielded and spec.generator == raylet_pb2.TaskSpec.DYNAMIC:
            objects.add_unheld(v.object_id for v in yielded)
        for value in own:
            self._ready(objects.set_ready(value))
        for value in yielded:
            self._ready(objects.set_ready(value))
        if yielded:
            objects.release_unused(v.object_id for v in yielded)  # (its one return was dropped already)
        if actor is not None and spec.HasField("actor_creation") and actor.state != DEAD:
            return  # a restart runs the constructor again: its arguments stay pinned
        lineage = self._lineage.entries.get(spec.task_id)
        if lineage is not None and lineage.rebuilds:
            objects.unpin(spec.dependencies)  # a rebuild's own pins; the lineage keeps its own
            objects.unpin(spec.nested_refs)
            return
        if spec.HasField("actor_creation") and self._remote_creation_finished(spec.actor_id, returns):
            return  # started on another node: its arguments stay pinned for restarts there
        if not spec.actor_id and error is None and failed_dep is None:
            stored_elsewhere = {v.object_id for v in returns if v.object_id in objects
                                and objects.stored_on(v) not in (None, self._node_id)}
            if stored_elsewhere:
                # Kept to rebuild them if their node dies: the arguments stay pinned.
                self._lineage.record(spec, task.submitter, stored_elsewhere)
                objects.watch(stored_elsewhere)
                return
        objects.unpin(spec.dependencies)
        objects.unpin(spec.nested_refs)

    def drop(self, task: TaskEntry) -> None:
        """Forget a task that has not run (its submitter is gone)."""
        spec = task.spec
        actor = self._actors.get(spec.actor_id) if spec.actor_id else None
        if actor is not None and spec.task_id in actor.queue:
            actor.queue.remove(spec.task_id)
        self._tasks.remove_queued(task)
        self._tasks.tasks.pop(spec.task_id, None)
        if task.state == FORWARDED:  # its peer need not finish it
            if not spec.actor_id:
                self._forward_count[task.node] -= 1  # type: ignore[index]
            self._peer_batch(task.node).cancel.add(task_id=spec.task_id)  # type: ignore[arg-type]
        self._objects.unpin(spec.dependencies)
        self._objects.unpin(spec.nested_refs)
