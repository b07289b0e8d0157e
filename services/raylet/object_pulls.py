"""Objects made readable on this node: pulls of values stored on other
nodes into this node's store (for tasks and clients waiting on them), and
rebuilding lost values from their lineage when the only copy's node dies.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from ember.v1 import common_pb2

from ember_common.object_layout import Failure, FailureType
from ember_raylet.client_session import ClientSession
from ember_raylet.cluster_view import ClusterView
from ember_raylet.lineage import Lineage
from ember_raylet.object_directory import ObjectDirectory, error_value
from ember_raylet.task_manager import WAITING, FinishTask, TaskEntry, TaskManager

log = logging.getLogger(__name__)


class ObjectPulls:
    def __init__(self, objects: ObjectDirectory, tasks: TaskManager, view: ClusterView, lineage: Lineage,
                 on_pull: Callable[[bytes, bytes, int, str], None], finish: FinishTask,
                 ready: Callable[[list[bytes]], None], await_deps: Callable[[TaskEntry], None],
                 dispatch_after: Callable[[TaskEntry], None]) -> None:
        self._objects = objects
        self._tasks = tasks
        self._view = view
        self._lineage = lineage
        self._on_pull = on_pull
        self._finish = finish
        self._ready = ready
        self._await_deps = await_deps
        self._dispatch_after = dispatch_after
        # Pulls in flight: object id -> (tasks, sessions waiting for the local copy, source node).
        self.pulls: dict[bytes, tuple[list[bytes], list[ClientSession], bytes]] = {}

    def make_local(self, object_id: bytes, task_id: bytes | None = None, session: ClientSession | None = None) -> bool:
        """True if the object is readable here; else start (or join) a pull
        and wake the task or session when it is done."""
        if self._objects.is_local(object_id):
            return True
        waiters = self.pulls.get(object_id)
        if waiters is None:
            value = self._objects.get(object_id)
            assert value is not None
            source = self._objects.stored_on(value)
            assert source is not None
            waiters = self.pulls[object_id] = ([], [], source)
            task = self._tasks.tasks.get(task_id) if task_id is not None else None
            # (the pull is traced as part of the first task waiting for it)
            self._on_pull(object_id, source, value.stored_size, task.spec.traceparent if task is not None else "")
        if task_id is not None:
            waiters[0].append(task_id)
        if session is not None:
            waiters[1].append(session)
        return False

    def fetch(self, session: ClientSession, object_id: bytes) -> None:
        """A client wants the object's value readable here."""
        if object_id not in self._objects:
            _push(session, error_value(object_id, Failure(FailureType.OBJECT_LOST,
                f"object {object_id.hex()} is unknown to this node: it was freed (no reference was left) or never "
                "created")))
        elif not self._objects.is_ready(object_id):
            self._objects.subscribe(object_id, session)
        elif self.make_local(object_id, session=session):
            _push(session, self._objects.local_value(object_id))

    def unknown_objects(self, object_ids: Iterable[bytes]) -> list[bytes]:
        """Those of `object_ids` this raylet neither tracks nor is pulling."""
        return [object_id for object_id in object_ids
                if object_id not in self._objects and object_id not in self.pulls]

    def pull_done(self, object_id: bytes, error: str | None) -> None:
        """The store finished (or failed) pulling an object into this node."""
        objects = self._objects
        task_ids, sessions, source = self.pulls.pop(object_id, ([], [], b""))
        known = object_id in objects
        if error is None and not (known and objects.is_ready(object_id)):
            objects.delete_copy(object_id)  # freed, or reset for a rebuild: drop the copy
        if known and not objects.is_ready(object_id):
            self._wait_again(object_id, task_ids, sessions)  # reset meanwhile: a rebuild runs
        elif error is None and known:
            objects.mark_local_copy(object_id)
            value = objects.local_value(object_id)
            for session in sessions:
                if not session.closed:
                    _push(session, value)
            self._ready(task_ids)
        elif known and (source in self._view.lost or source not in self._view.nodes) and self.rebuild(object_id):
            self._wait_again(object_id, task_ids, sessions)  # its node is gone: wait for the rebuilt value
        else:
            lost = Failure(FailureType.OBJECT_LOST, f"object {object_id.hex()} could not be fetched to this node: "
                                                    f"{error or 'it was freed'}")
            for session in sessions:
                if not session.closed:
                    _push(session, error_value(object_id, lost))
            for task_id in task_ids:
                task = self._tasks.tasks.get(task_id)
                if task is not None and task.state == WAITING:
                    self._finish(task, error=lost)
                    self._dispatch_after(task)

    def _wait_again(self, object_id: bytes, task_ids: list[bytes], sessions: list[ClientSession]) -> None:
        """Waiters of a pull whose object went pending: wait for its value."""
        for task_id in task_ids:
            if not self._objects.wait_for(object_id, task_id):
                self._ready([task_id])
        for session in sessions:
            self._objects.subscribe(object_id, session)

    def rebuild(self, object_id: bytes) -> bool:
        """Run again the task that made a lost object (its lineage); False if
        there is none. Its lost arguments are rebuilt first, the same way."""
        entry = self._lineage.of_object(object_id)
        if entry is None:
            return False
        objects = self._objects
        if objects.is_ready(object_id):
            objects.reset(object_id)
        spec = entry.spec
        if spec.task_id in self._tasks.tasks:
            return True  # rebuilding already
        entry.rebuilds += 1
        log.warning("rebuilding %s (return of %s) from its lineage (rebuild %d)", object_id.hex()[:12],
                    spec.function_name, entry.rebuilds)
        spec.attempt_number += 1  # (a run of its own in the task events, as a retry's)
        task = TaskEntry(spec, entry.submitter)
        self._tasks.tasks[spec.task_id] = task
        for object_id_ in (*spec.dependencies, *spec.nested_refs):
            objects.pin(object_id_)  # its own, as a submission's (the lineage may let go meanwhile)
        for dep in spec.dependencies:
            value = objects.get(dep)
            if value is not None and not objects.is_local(dep) and objects.stored_on(value) in self._view.lost:
                self.rebuild(dep)
        self._await_deps(task)
        return True

    def node_lost(self, node_id: bytes, reason: str) -> None:
        """What a lost node owned or alone stored: failed, or rebuilt if it can be."""
        objects = self._objects
        pending, stored = objects.lost_node(node_id)
        for object_id in pending:  # values it was to send us
            self._ready(objects.set_ready(error_value(object_id, Failure(FailureType.OWNER_DIED,
                f"object {object_id.hex()} was owned by node {node_id.hex()}, which died: {reason}"))))
        for object_id, owned_there in stored:  # values only it had
            if not self.rebuild(object_id):
                objects.replace(error_value(object_id, Failure(
                    FailureType.OWNER_DIED if owned_there else FailureType.OBJECT_LOST,
                    f"object {object_id.hex()} was stored only on node {node_id.hex()}, which died ({reason}), "
                    "and cannot be rebuilt: it was put, not computed by a task of this node")))


def _push(session: ClientSession, value: common_pb2.ObjectValue) -> None:
    session.outbox.ready.append(value)
    session.touch()
