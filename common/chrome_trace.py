"""Task rows as a Chrome trace (the JSON array format that chrome://tracing
and Perfetto load): one "process" per node, one "thread" row per worker, a
complete ("X") event per task attempt that ran, from its start to its end.

A nested task's event lies inside its parent's interval (on the parent's
row when it ran on a thread of the parent's worker, else on its own
worker's row), and a flow arrow ("s" -> "f") goes from the parent to it.
Calls that overlap on one worker without nesting (an actor's concurrent
calls) would draw wrongly on one row: they go to extra rows of that worker,
"worker pid N (2)", .... Pure (tests/unit/test_task_events.py)."""

from __future__ import annotations

from typing import Any, Iterable

# Extra rows of a worker: tid = pid + lane * this (above any Linux pid, 2^22).
_LANE_STRIDE = 1 << 22


def _lanes(rows: list[dict[str, Any]]) -> dict[str, int]:
    """task_id + attempt -> lane, per worker: each lane's events nest."""
    lane_of: dict[str, int] = {}
    open_: dict[tuple[str, int], list[list[int]]] = {}  # (node, pid) -> per lane, the ends of open intervals
    for r in rows:  # (by start, longest first)
        stacks = open_.setdefault((r["node_id"], r["worker_pid"]), [])
        start, end = r["start_time_ms"], r["end_time_ms"]
        for lane, stack in enumerate(stacks):
            while stack and stack[-1] <= start:
                stack.pop()
            if not stack or end <= stack[-1]:
                stack.append(end)
                break
        else:
            lane = len(stacks)
            stacks.append([end])
        lane_of[f"{r['task_id']}:{r['attempt_number']}"] = lane
    return lane_of


def trace_events(rows: Iterable[dict[str, Any]], head_node_id: str = "") -> list[dict[str, Any]]:
    ran = sorted((r for r in rows if r.get("start_time_ms") and r.get("end_time_ms") and r.get("node_id")),
                 key=lambda r: (r["start_time_ms"], -r["end_time_ms"]))
    nodes = sorted({r["node_id"] for r in ran}, key=lambda n: (n != head_node_id, n))
    node_pid = {node_id: i + 1 for i, node_id in enumerate(nodes)}
    lanes = _lanes(ran)
    events: list[dict[str, Any]] = []
    for node_id, pid in node_pid.items():
        label = f"node {node_id[:8]}" + (" (head)" if node_id == head_node_id else "")
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": label}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0, "args": {"sort_index": pid}})
    threads = sorted({(r["node_id"], r["worker_pid"], lanes[f"{r['task_id']}:{r['attempt_number']}"]) for r in ran})
    for node_id, worker_pid, lane in threads:
        events.append({"name": "thread_name", "ph": "M", "pid": node_pid[node_id], "tid": worker_pid + lane * _LANE_STRIDE,
                       "args": {"name": f"worker pid {worker_pid}" + (f" ({lane + 1})" if lane else "")}})
    placed: dict[str, dict[str, Any]] = {}  # task id -> its (last) event
    for r in ran:
        start_us = r["start_time_ms"] * 1000
        event = {
            "name": r["name"] or r["func_or_class_name"], "cat": r["type"].lower(), "ph": "X",
            "ts": start_us, "dur": max(1, r["end_time_ms"] * 1000 - start_us),
            "pid": node_pid[r["node_id"]],
            "tid": r["worker_pid"] + lanes[f"{r['task_id']}:{r['attempt_number']}"] * _LANE_STRIDE,
            "args": {"task_id": r["task_id"], "attempt_number": r["attempt_number"], "state": r["state"],
                     "parent_task_id": r["parent_task_id"], "actor_id": r["actor_id"], "job_id": r["job_id"],
                     "error_type": r["error_type"]},
        }
        events.append(event)
        placed[r["task_id"]] = event
    flow_id = 0
    for event in [e for e in events if e["ph"] == "X"]:
        parent = placed.get(event["args"]["parent_task_id"])
        if parent is None:
            continue
        flow_id += 1
        # The arrow leaves the parent inside its slice (where it waited for the child).
        at = min(max(event["ts"], parent["ts"]), parent["ts"] + parent["dur"])
        events.append({"name": "nested task", "cat": "nested", "ph": "s", "id": flow_id, "pid": parent["pid"],
                       "tid": parent["tid"], "ts": at})
        events.append({"name": "nested task", "cat": "nested", "ph": "f", "bp": "e", "id": flow_id,
                       "pid": event["pid"], "tid": event["tid"], "ts": event["ts"]})
    return events
