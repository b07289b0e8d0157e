"""The tasks page's waterfall: recent task attempts that ran, one row per
worker (node, pid), and the critical path through them. Pure functions of
state rows (tests/unit/test_dashboard_waterfall.py).

Task events say which task submitted which (parent_task_id) but not which
task's output another took as an argument, so the critical path is found
from times: back from the attempt that ended last, each step goes to what
it waited for last — its latest-ending child that ended within its run (a
nested task it got), else the latest attempt of its job that ended
before it started (an argument it waited for, the task its submitter got
just before submitting it, or the one whose worker it waited for). Where
a driver runs tasks one after another or a task waits on a chain, that
is the chain that set the end time; with more tasks than workers it also
follows the waits for a free worker.
"""

from __future__ import annotations

import bisect
from typing import Any, Iterable

# Keys of a task row the page draws (Ray's names).
_KEYS = ("task_id", "attempt_number", "name", "state", "job_id", "type", "actor_id", "parent_task_id", "node_id",
         "worker_id", "worker_pid", "error_type", "creation_time_ms", "start_time_ms", "end_time_ms")


def recent_runs(rows: Iterable[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The `limit` attempts that started last (oldest first), with the keys
    the page draws; running ones (no end yet) included."""
    ran = [r for r in rows if r.get("start_time_ms") is not None and r.get("worker_pid")]
    ran.sort(key=lambda r: r["start_time_ms"])
    return [{k: r.get(k) for k in _KEYS} for r in ran[-limit:]] if limit > 0 else []


def critical_path(runs: list[dict[str, Any]]) -> list[str]:
    """Task ids (with attempt, "id:attempt") on the critical path, first to last."""
    done = [r for r in runs if r.get("end_time_ms") is not None and r.get("start_time_ms") is not None]
    if not done:
        return []
    key = _key
    children: dict[str, list[dict[str, Any]]] = {}
    by_job: dict[str, list[dict[str, Any]]] = {}
    for r in done:
        if r.get("parent_task_id"):
            children.setdefault(r["parent_task_id"], []).append(r)
        by_job.setdefault(r.get("job_id") or "", []).append(r)
    ends: dict[str, list[int]] = {}
    for job, tasks in by_job.items():
        tasks.sort(key=lambda r: r["end_time_ms"])
        ends[job] = [r["end_time_ms"] for r in tasks]
    current = max(done, key=lambda r: r["end_time_ms"])
    path, seen = [], set()
    while current is not None and key(current) not in seen:
        seen.add(key(current))
        path.append(current)
        start, end = current["start_time_ms"], current["end_time_ms"]
        kids = [c for c in children.get(current["task_id"], ()) if start <= c["end_time_ms"] <= end
                and key(c) not in seen]
        if kids:
            current = max(kids, key=lambda r: r["end_time_ms"])
            continue
        job = current.get("job_id") or ""
        tasks, job_ends = by_job[job], ends[job]
        i = bisect.bisect_right(job_ends, start) - 1
        current = None
        while i >= 0:
            if key(tasks[i]) not in seen:
                current = tasks[i]
                break
            i -= 1
    path.reverse()
    return [key(r) for r in path]


def _key(row: dict[str, Any]) -> str:
    return f"{row['task_id']}:{row['attempt_number']}"


def waterfall(rows: Iterable[dict[str, Any]], limit: int) -> dict[str, Any]:
    runs = recent_runs(rows, limit)
    return {"tasks": runs, "critical_path": critical_path(runs)}
