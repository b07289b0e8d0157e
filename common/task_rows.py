"""Task rows from the task events of every node, in Ray's `TaskState`
shape (ray.util.state): one row per task attempt, keyed (task_id,
attempt_number), with Ray's JSON keys.

A node sees part of a task's life (the submitting raylet its submission, the
one that ran it its dispatch and run), so events of all nodes are merged
here. Pure functions of messages (tests/unit/test_task_rows.py).
"""

from __future__ import annotations

from typing import Any, Iterable

from ember.v1 import node_state_pb2

from ember_common import task_error_types

Kind = node_state_pb2.TaskEvent.Kind
_TYPES = {node_state_pb2.NORMAL_TASK: "NORMAL_TASK", node_state_pb2.ACTOR_CREATION_TASK: "ACTOR_CREATION_TASK",
          node_state_pb2.ACTOR_TASK: "ACTOR_TASK"}
# How far along a state is: a later event never moves a row back.
_ORDER = {"PENDING_ARGS_AVAIL": 0, "PENDING_NODE_ASSIGNMENT": 1, "SUBMITTED_TO_WORKER": 2, "RUNNING": 3,
          "FINISHED": 4, "FAILED": 4}
TERMINAL = ("FINISHED", "FAILED")


def _ms(seconds: float) -> int | None:
    return int(seconds * 1000) if seconds else None


def _new_row(task_id: bytes, attempt: int) -> dict[str, Any]:
    return {
        "task_id": task_id.hex(), "attempt_number": attempt, "name": "", "state": "NIL", "job_id": "",
        "actor_id": None, "type": "NORMAL_TASK", "func_or_class_name": "", "parent_task_id": "",
        "node_id": None, "worker_id": None, "worker_pid": None, "error_type": None, "error_message": None,
        "language": "PYTHON", "creation_time_ms": None, "start_time_ms": None, "end_time_ms": None, "events": [],
    }


def _advance(row: dict[str, Any], state: str, at: float) -> None:
    row["events"].append({"state": state, "created_ms": _ms(at)})
    if row["state"] not in TERMINAL and _ORDER[state] >= _ORDER.get(row["state"], -1):
        row["state"] = state


def merge(replies: Iterable[node_state_pb2.GetTaskEventsReply]) -> list[dict[str, Any]]:
    """Rows of every task attempt the nodes' events mention, oldest first.
    An attempt that a later attempt of the same task replaced without an
    end of its own failed (its worker or node died, or its actor restarted)."""
    rows: dict[tuple[bytes, int], dict[str, Any]] = {}
    events = [(reply.node_id, e) for reply in replies for e in reply.events]
    events.sort(key=lambda ne: ne[1].time)
    for node_id, e in events:
        key = (e.task_id, e.attempt_number)
        row = rows.get(key)
        if row is None:
            row = rows[key] = _new_row(e.task_id, e.attempt_number)
        # What the task is: its submission says (a creation task is typed so
        # only there); a run says it again, for when the submission was dropped.
        if e.name and (e.kind == Kind.SUBMITTED or not row["name"]):
            row["name"], row["func_or_class_name"] = e.name, e.func_or_class_name or e.name
            row["job_id"], row["type"] = e.job_id.hex(), _TYPES.get(e.type, "NORMAL_TASK")
            row["actor_id"] = e.actor_id.hex() if e.actor_id else None
            row["parent_task_id"] = e.parent_task_id.hex()
        if e.worker_pid:
            row["node_id"], row["worker_id"], row["worker_pid"] = node_id.hex(), e.worker_id.hex(), e.worker_pid
        kind = e.kind
        if kind == Kind.SUBMITTED:
            if row["creation_time_ms"] is None:
                row["creation_time_ms"] = _ms(e.time)
            _advance(row, "PENDING_ARGS_AVAIL" if e.pending_args else "PENDING_NODE_ASSIGNMENT", e.time)
        elif kind == Kind.DISPATCHED:
            _advance(row, "SUBMITTED_TO_WORKER", e.time)
        elif kind == Kind.RUNNING:
            if row["state"] not in TERMINAL:
                row["state"] = "RUNNING"
        elif kind == Kind.RAN:
            start = e.start_time or e.time
            row["start_time_ms"], row["end_time_ms"] = _ms(start), _ms(e.time)
            if row["creation_time_ms"] is None:
                row["creation_time_ms"] = _ms(start)
            _advance(row, "RUNNING", start)
            _end(row, e, e.time)
        elif kind == Kind.FAILED:
            _end(row, e, e.time)
    by_task: dict[bytes, int] = {}
    named: dict[bytes, dict[str, Any]] = {}
    for (task_id, attempt), row in rows.items():
        by_task[task_id] = max(by_task.get(task_id, 0), attempt)
        if row["name"]:
            named[task_id] = row
    for (task_id, attempt), row in rows.items():
        if attempt < by_task[task_id] and row["state"] not in TERMINAL:
            row["state"] = "FAILED"
            row["error_type"] = (task_error_types.ACTOR_DIED if row["type"] == "ACTOR_TASK"
                                 else task_error_types.WORKER_DIED)
            row["error_message"] = "the attempt ended without a result (retried)"
        if not row["name"]:  # a retry (or its submission event was dropped): as another attempt says
            known = named.get(task_id)
            if known is not None:
                for k in ("name", "func_or_class_name", "job_id", "type", "actor_id", "parent_task_id"):
                    row[k] = known[k]
    return sorted(rows.values(), key=lambda r: (r["creation_time_ms"] or r["start_time_ms"] or 0))


def _end(row: dict[str, Any], e: node_state_pb2.TaskEvent, at: float) -> None:
    if row["state"] in TERMINAL:
        return
    if e.error_type:
        row["error_type"], row["error_message"] = e.error_type, e.error_message or None
        row["state"] = "FAILED"
    else:
        row["state"] = "FINISHED"
    row["events"].append({"state": row["state"], "created_ms": _ms(at)})
    if row["end_time_ms"] is None:
        row["end_time_ms"] = _ms(at)
