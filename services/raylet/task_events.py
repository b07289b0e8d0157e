"""This node's task events: each task attempt's lifecycle (submitted,
dispatched to a worker, ran or failed), kept in bounded memory for
`ember list tasks`, the timeline and the dashboard.

Recording is one tuple appended to a deque (no message built, no RPC): the
per-task path pays a few attribute reads. The deque has a fixed length; when
it is full the oldest event goes and `dropped` counts it. Tuples become
TaskEvent messages only when a query asks (`snapshot`). Never holds a
TaskSpec (its arguments could be large): only the fields a row shows.
"""

from __future__ import annotations

import collections
import time
from typing import Any, Iterable

from ember.v1 import node_state_pb2

from ember_common import task_error_types
from ember_common.object_layout import Failure

Kind = node_state_pb2.TaskEvent.Kind
SUBMITTED, DISPATCHED, RAN, FAILED, RUNNING = Kind.SUBMITTED, Kind.DISPATCHED, Kind.RAN, Kind.FAILED, Kind.RUNNING
NORMAL_TASK, ACTOR_CREATION_TASK, ACTOR_TASK = (node_state_pb2.NORMAL_TASK, node_state_pb2.ACTOR_CREATION_TASK,
                                                node_state_pb2.ACTOR_TASK)

_DEFAULT_CAPACITY = 30000


class TaskEvents:
    """A bounded buffer of task event tuples, oldest first. Each tuple
    starts (kind, task_id, attempt_number, time); the rest depends on the
    kind (see the recording methods)."""

    def __init__(self, capacity: int = _DEFAULT_CAPACITY) -> None:
        self.capacity = max(1, capacity)
        self._events: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=self.capacity)
        self._append = self._events.append  # (bound once: the per-task path)
        self.recorded = 0  # events ever recorded

    def __len__(self) -> int:
        return len(self._events)

    @property
    def dropped(self) -> int:
        """Events pushed out for room."""
        return max(0, self.recorded - self.capacity)

    def submitted(self, spec: Any, pending_args: bool) -> tuple:
        """Returns what the task is, (name, job id, actor id, parent task id,
        type): for its RAN event (`ran(describe=...)`), not read again."""
        self.recorded += 1
        if spec.HasField("actor_creation"):
            kind = ACTOR_CREATION_TASK
        else:
            kind = ACTOR_TASK if spec.actor_id else NORMAL_TASK
        name, job_id, actor_id, parent_task_id = spec.function_name, spec.job_id, spec.actor_id, spec.parent_task_id
        self._append((SUBMITTED, spec.task_id, spec.attempt_number, time.time(), name, job_id, actor_id,
                      parent_task_id, kind, pending_args))
        return (name, job_id, actor_id, parent_task_id, kind)

    def dispatched(self, spec: Any, worker_id: bytes, pid: int) -> None:
        self.recorded += 1
        self._append((DISPATCHED, spec.task_id, spec.attempt_number, time.time(), worker_id, pid))

    def ran(self, spec: Any, start_time: float, worker_id: bytes, pid: int, error_type: str = "",
            error_message: str = "", *, describe: tuple | None = None, run_time: float = 0.0) -> None:
        """A worker here sent the task's result: it ran from `start_time`
        for `run_time` seconds (0: unknown, the end is now)."""
        self.recorded += 1
        # (What it is, again: its SUBMITTED event may have been dropped for room.)
        if describe is None:
            describe = (spec.function_name, spec.job_id, spec.actor_id, spec.parent_task_id,
                        ACTOR_TASK if spec.actor_id else NORMAL_TASK)
        end = start_time + run_time if run_time > 0 and start_time else time.time()
        self._append((RAN, spec.task_id, spec.attempt_number, end, start_time, worker_id, pid, error_type,
                      error_message, describe))

    def failed(self, spec: Any, error_type: str, error_message: str) -> None:
        self.recorded += 1
        self._append((FAILED, spec.task_id, spec.attempt_number, time.time(), error_type, error_message))

    def failure(self, spec: Any, error: Failure | None) -> None:
        """The task ended here without a worker's result: `error`, or (None)
        one of its arguments was an error."""
        if error is None:
            self.failed(spec, task_error_types.DEPENDENCY_ERROR, f"an argument of {spec.function_name} was an error")
        else:
            self.failed(spec, task_error_types.OF_FAILURE.get(error.type, error.type.name), error.message[:500])

    def direct_calls(self, events: Iterable[node_state_pb2.TaskEvent], worker_id: bytes, pid: int) -> None:
        """Events a worker sent of the direct actor calls it ran (kind RAN,
        with what the call is, since no raylet saw it submitted)."""
        for e in events:
            self.recorded += 1
            describe = (e.name, e.job_id, e.actor_id, e.parent_task_id, ACTOR_TASK)
            self._append((RAN, e.task_id, e.attempt_number, e.time, e.start_time, worker_id, pid, e.error_type,
                          e.error_message, describe))

    def snapshot(self, running: Iterable[tuple[bytes, int, bytes, int]] = ()) -> list[node_state_pb2.TaskEvent]:
        """The events as messages, oldest first, then a RUNNING event for
        each (task_id, attempt_number, worker_id, pid) in `running`: what
        runs on this node's workers now."""
        out = []
        TaskEvent = node_state_pb2.TaskEvent
        for event in list(self._events):
            kind, task_id, attempt, at = event[0], event[1], event[2], event[3]
            if kind == SUBMITTED:
                out.append(TaskEvent(kind=kind, task_id=task_id, attempt_number=attempt, time=at, name=event[4],
                                     func_or_class_name=event[4], job_id=event[5], actor_id=event[6],
                                     parent_task_id=event[7], type=event[8], pending_args=event[9]))
            elif kind == DISPATCHED:
                out.append(TaskEvent(kind=kind, task_id=task_id, attempt_number=attempt, time=at, worker_id=event[4],
                                     worker_pid=event[5]))
            elif kind == RAN:
                message = TaskEvent(kind=kind, task_id=task_id, attempt_number=attempt, time=at,
                                    start_time=event[4], worker_id=event[5], worker_pid=event[6],
                                    error_type=event[7], error_message=event[8])
                if event[9] is not None:  # (always, since what it is goes with every run)
                    name, job_id, actor_id, parent_task_id, type_ = event[9]
                    message.name = message.func_or_class_name = name
                    message.job_id, message.actor_id, message.parent_task_id, message.type = (
                        job_id, actor_id, parent_task_id, type_)
                out.append(message)
            else:
                out.append(TaskEvent(kind=kind, task_id=task_id, attempt_number=attempt, time=at,
                                     error_type=event[4], error_message=event[5]))
        now = time.time()
        for task_id, attempt, worker_id, pid in running:
            out.append(TaskEvent(kind=RUNNING, task_id=task_id, attempt_number=attempt, time=now,
                                 worker_id=worker_id, worker_pid=pid))
        return out
