"""Answers of the NodeState service (ember list|timeline|logs): this node's
task events, its workers and its log files, read from the node manager's
state and the session's log directory. No sockets here."""

from __future__ import annotations

import os
import pathlib

from ember.v1 import node_state_pb2

from ember_raylet.log_files import LogDirectory, is_node_file
from ember_raylet.node_manager import NodeManager
from ember_raylet.worker_pool import WorkerHandle


def worker_log_name(worker_id: bytes) -> str:
    """The log file (stdout and stderr) of a worker this raylet started (worker_pool's name for it)."""
    return f"worker-{worker_id.hex()[:12]}.log"


class NodeState:
    def __init__(self, nm: NodeManager, log_dir: str | os.PathLike[str], is_head: bool) -> None:
        self._nm = nm
        self.logs = LogDirectory(log_dir)
        self._is_head = is_head
        self._short_id = nm.node_id.hex()[:8]

    def task_events(self) -> node_state_pb2.GetTaskEventsReply:
        reply = node_state_pb2.GetTaskEventsReply(node_id=self._nm.node_id)
        events = self._nm.task_events
        if events is not None:
            reply.events.extend(events.snapshot(self._running()))
            reply.dropped = events.dropped
        return reply

    def _running(self) -> list[tuple[bytes, int, bytes, int]]:
        """(task_id, attempt_number, worker_id, pid) of what runs on this
        node's workers now: each worker's first assigned task (they run in
        order) and its tasks on threads of their own."""
        out = []
        tasks = self._nm.tasks.tasks
        for worker in self._nm.pool.workers.values():
            pid = worker.process.pid
            running = list(worker.assigned) if worker.actor_id is not None else worker.assigned and [worker.assigned[0]]
            for task_id in (*running, *worker.threads):
                task = tasks.get(task_id)
                if task is not None:
                    out.append((task_id, task.spec.attempt_number, worker.worker_id, pid))
        return out

    def workers(self) -> node_state_pb2.ListWorkersReply:
        reply = node_state_pb2.ListWorkersReply(node_id=self._nm.node_id)
        pool = self._nm.pool
        for handle in pool.all():
            reply.workers.append(_describe(handle, alive=True))
        for handle, ended, reason in pool.exited:
            info = _describe(handle, alive=False)
            info.end_time, info.exit_detail = ended, reason
            reply.workers.append(info)
        return reply

    def log_files(self) -> node_state_pb2.ListLogsReply:
        pool = self._nm.pool
        pids = {worker_log_name(h.worker_id): (h.process.pid, h.worker_id)
                for h in (*pool.all(), *(h for h, _, _ in pool.exited))}
        pids[f"raylet-{self._short_id}.log"] = (os.getpid(), b"")
        pids[f"raylet-{self._short_id}.out"] = (os.getpid(), b"")
        reply = node_state_pb2.ListLogsReply(node_id=self._nm.node_id)
        for f in self.logs.files():
            if is_node_file(f.name, self._short_id, pids, self._is_head):
                pid, worker_id = pids.get(f.name, (0, b""))
                reply.files.add(name=f.name, size=f.size, mtime=f.mtime, pid=pid, worker_id=worker_id)
        return reply

    def log_path(self, name: str) -> pathlib.Path:
        return self.logs.resolve(name)


def _describe(handle: WorkerHandle, alive: bool) -> node_state_pb2.WorkerInfo:
    return node_state_pb2.WorkerInfo(worker_id=handle.worker_id, pid=handle.process.pid, alive=alive,
                                     actor_id=handle.actor_id or b"", start_time=handle.start_time,
                                     log_file=worker_log_name(handle.worker_id))


