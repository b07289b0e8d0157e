"""Tasks this raylet owns, from submission to their last return: waiting for
arguments, queued per resource shape, assigned to a worker or forwarded to
another node's raylet, retried."""

from __future__ import annotations

import collections
import enum
import time
from typing import Protocol

from ember.v1 import common_pb2, raylet_pb2

from ember_common.object_layout import Failure, FailureType
from ember_raylet import resources
from ember_raylet.client_session import ClientSession
from ember_raylet.resources import Resources



_INTERNED: dict[tuple, tuple[Resources, tuple]] = {}  # key -> (shape, key), see TaskEntry
_MAX_INTERNED = 10_000


class TaskState(enum.IntEnum):
    WAITING = 1  # for its arguments
    QUEUED = 2  # in a queue of this node (a shape's, an actor's, or infeasible)
    ASSIGNED = 3  # sent to a worker here
    FORWARDED = 4  # sent to another node's raylet


WAITING, QUEUED, ASSIGNED, FORWARDED = TaskState.WAITING, TaskState.QUEUED, TaskState.ASSIGNED, TaskState.FORWARDED


class TaskEntry:
    __slots__ = ("spec", "submitter", "state", "missing", "worker", "retries_left", "cancelled", "shape", "key",
                 "node", "returns", "pinned", "remote_only", "submitted_at", "env", "describe", "span_leased")

    def __init__(self, spec: raylet_pb2.TaskSpec, submitter: ClientSession) -> None:
        self.spec = spec
        self.submitter = submitter
        self.state = WAITING
        self.missing = 0
        self.worker = None  # WorkerHandle while ASSIGNED
        self.node: bytes | None = None  # the node it was forwarded to, while FORWARDED
        self.returns: dict[bytes, object] = {}  # returns a forwarded task sent back so far
        self.pinned = False  # its scheduling strategy chose this node: never spilled
        self.remote_only = False  # this node cannot run it (resources or labels): it waits to be spilled
        self.retries_left = spec.max_retries
        self.cancelled = False
        shape: Resources = dict(spec.resources.amounts)
        key = resources.key(shape)
        # Tasks asking for node labels queue apart: this node may not serve them.
        if spec.label_selector:
            key += tuple(sorted(spec.label_selector.items()))
        # Tasks of a runtime environment queue apart too: only its workers run them.
        self.env: str = spec.runtime_env
        if self.env:
            key += (("runtime_env", self.env),)
        # One shape dict and key per kind of task, not per task (~0.3 KB each;
        # never changed in place). Interned while there are few kinds.
        interned = _INTERNED.get(key)
        if interned is None and len(_INTERNED) < _MAX_INTERNED:
            interned = _INTERNED[key] = (shape, key)
        self.shape, self.key = interned or (shape, key)
        self.submitted_at = time.monotonic()  # its arrival here (scheduling latency)
        self.describe: tuple | None = None  # what its task events say it is (TaskEvents.submitted)
        # Its schedule span is recorded (once an attempt: a task handed back
        # or asked back and dispatched again has had its span).
        self.span_leased = False

    def cancelled_failure(self) -> Failure:
        return Failure(FailureType.TASK_CANCELLED, f"task {self.spec.function_name} was cancelled")

    def take_retry(self) -> bool:
        """Whether the task may run again after a failure, spending one retry
        if so. A cancelled task never runs again; a negative count never ends."""
        if self.cancelled or self.retries_left == 0:
            return False
        self.retries_left -= 1
        self.spec.attempt_number += 1  # (task events tell the attempts apart)
        self.span_leased = False
        return True


class FinishTask(Protocol):
    """The node manager's end of a task: its returns (or `error`, or the
    failed argument `failed_dep`, for every return) become ready."""

    def __call__(self, task: TaskEntry, returns: list[common_pb2.ObjectValue] | None = None,
                 error: Failure | None = None, failed_dep: common_pb2.ObjectValue | None = None) -> None: ...


class TaskManager:
    """Queues per resource shape, in two tiers: tasks submitted from inside
    tasks come first, because a running (likely blocked) task waits on them;
    new top-level work only gets what they leave."""

    def __init__(self) -> None:
        self.tasks: dict[bytes, TaskEntry] = {}
        self.nested: dict[tuple, collections.deque[bytes]] = collections.defaultdict(collections.deque)
        self.roots: dict[tuple, collections.deque[bytes]] = collections.defaultdict(collections.deque)
        self.infeasible: dict[tuple, list[bytes]] = collections.defaultdict(list)

    def __len__(self) -> int:
        return len(self.tasks)

    def queues(self) -> list[tuple[tuple, collections.deque[bytes]]]:
        """The queues in the order the scheduler serves them."""
        return [*self.nested.items(), *self.roots.items()]

    def enqueue(self, task: TaskEntry, front: bool = False) -> None:
        task.state = QUEUED
        task.worker = None
        q = (self.nested if task.spec.parent_task_id else self.roots)[task.key]
        q.appendleft(task.spec.task_id) if front else q.append(task.spec.task_id)

    def num_queued(self) -> int:
        return sum(len(q) for _, q in self.queues()) + sum(len(v) for v in self.infeasible.values())

    def num_assigned(self) -> int:
        return sum(1 for t in self.tasks.values() if t.state == ASSIGNED)

    def forwarded_to(self, node_id: bytes) -> list[TaskEntry]:
        return [t for t in self.tasks.values() if t.state == FORWARDED and t.node == node_id]

    def children_of(self, task_id: bytes) -> list[TaskEntry]:
        return [t for t in self.tasks.values() if t.spec.parent_task_id == task_id]

    def drop_queues(self, key: tuple) -> None:
        """Forget the (empty) queues of a one-off key, e.g. an actor's."""
        for tier in (self.nested, self.roots, self.infeasible):
            if not tier.get(key, True):
                del tier[key]

    def remove_queued(self, task: TaskEntry) -> None:
        for q in (self.nested.get(task.key), self.roots.get(task.key), self.infeasible.get(task.key)):
            if q is not None and task.spec.task_id in q:
                q.remove(task.spec.task_id)
