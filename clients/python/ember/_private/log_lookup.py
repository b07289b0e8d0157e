"""Which log file `ember logs` / ember.util.state.get_log means: a node's
file by name, or the log of the worker with a pid, of an actor, or of the
worker that ran a task (from the task events)."""

from __future__ import annotations

from typing import Any

from ember.v1 import gcs_pb2

from ember_common.state_client import StateClient
from ember_common.state_query import StateQueryError


def _node(state: StateClient, node_id: str | None) -> gcs_pb2.NodeInfo:
    nodes = state.node_infos()
    if node_id is None:
        head = [n for n in nodes if n.is_head and n.alive]
        if not head:
            raise StateQueryError("no alive head node; give --node-id")
        return head[0]
    found = [n for n in nodes if n.node_id.hex().startswith(node_id.lower())]
    if len(found) != 1:
        raise StateQueryError(f"node id {node_id!r} matches {len(found)} nodes" if found
                              else f"no node with id {node_id!r}")
    if not found[0].alive:
        raise StateQueryError(f"node {node_id} is dead: its logs cannot be read through it")
    return found[0]


def _by_pid(state: StateClient, pid: int, node_id: str | None) -> tuple[gcs_pb2.NodeInfo, str]:
    for node, files in state.log_files(node_id):
        for f in files:
            if f.pid == pid and f.name.startswith("worker-"):
                return node, f.name
    raise StateQueryError(f"no worker log with pid {pid}" + (f" on node {node_id}" if node_id else ""))


def find(state: StateClient, node_id: str | None = None, filename: str | None = None, pid: int | None = None,
         actor_id: str | None = None, task_id: str | None = None) -> tuple[gcs_pb2.NodeInfo, str]:
    """(node, file name) of the log asked for; StateQueryError if none."""
    given = [x for x in (filename, pid, actor_id, task_id) if x is not None]
    if len(given) != 1:
        raise StateQueryError("name one log: a file name (with --node-id), --pid, --actor-id or --task-id")
    if filename is not None:
        return _node(state, node_id), filename
    if pid is not None:
        return _by_pid(state, pid, node_id)
    if actor_id is not None:
        actor: Any = next((a for a in state.actors() if a["actor_id"] == actor_id.lower()), None)
        if actor is None:
            raise StateQueryError(f"no actor with id {actor_id!r}")
        if not actor["pid"]:
            raise StateQueryError(f"actor {actor_id} has no worker yet (state {actor['state']})")
        return _by_pid(state, actor["pid"], actor["node_id"])
    rows = [r for r in state.tasks() if r["task_id"] == str(task_id).lower()]
    if not rows:
        raise StateQueryError(f"no task with id {task_id!r} in the nodes' task events")
    latest = max(rows, key=lambda r: r["attempt_number"])
    if not latest["worker_pid"]:
        raise StateQueryError(f"task {task_id} has not run on a worker yet (state {latest['state']})")
    return _by_pid(state, latest["worker_pid"], latest["node_id"])
