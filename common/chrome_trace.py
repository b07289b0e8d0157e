"""Task rows as a Chrome trace (the JSON array format that chrome://tracing
and Perfetto load): one "process" per node, one "thread" row per worker, a
complete ("X") event per task attempt that ran, from its start to its end.
A nested task's event lies inside its parent's interval (on the parent's
row when it ran on a thread of the parent's worker, else on its own
worker's row); its args name the parent. Pure (tests/unit/test_chrome_trace.py)."""

from __future__ import annotations

from typing import Any, Iterable


def trace_events(rows: Iterable[dict[str, Any]], head_node_id: str = "") -> list[dict[str, Any]]:
    ran = [r for r in rows if r.get("start_time_ms") and r.get("end_time_ms") and r.get("node_id")]
    nodes = sorted({r["node_id"] for r in ran}, key=lambda n: (n != head_node_id, n))
    node_pid = {node_id: i + 1 for i, node_id in enumerate(nodes)}
    events: list[dict[str, Any]] = []
    for node_id, pid in node_pid.items():
        label = f"node {node_id[:8]}" + (" (head)" if node_id == head_node_id else "")
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": label}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0, "args": {"sort_index": pid}})
    workers = sorted({(r["node_id"], r["worker_pid"]) for r in ran})
    for node_id, worker_pid in workers:
        events.append({"name": "thread_name", "ph": "M", "pid": node_pid[node_id], "tid": worker_pid,
                       "args": {"name": f"worker pid {worker_pid}"}})
    for r in sorted(ran, key=lambda r: (r["start_time_ms"], -(r["end_time_ms"]))):
        start_us = r["start_time_ms"] * 1000
        events.append({
            "name": r["name"] or r["func_or_class_name"], "cat": r["type"].lower(), "ph": "X",
            "ts": start_us, "dur": max(1, r["end_time_ms"] * 1000 - start_us),
            "pid": node_pid[r["node_id"]], "tid": r["worker_pid"],
            "args": {"task_id": r["task_id"], "attempt_number": r["attempt_number"], "state": r["state"],
                     "parent_task_id": r["parent_task_id"], "actor_id": r["actor_id"], "job_id": r["job_id"],
                     "error_type": r["error_type"]},
        })
    return events
