"""Worker processes: started ahead of time, leased to one resource shape
while they have tasks, returned to the idle set when they run dry."""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import sys
import time
from typing import Callable, Protocol

from ember._private import ids
from ember_raylet.client_session import ClientSession
from ember_raylet.resources import Resources

log = logging.getLogger(__name__)


class Process(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def terminate(self) -> None: ...


class WorkerHandle:
    __slots__ = ("worker_id", "process", "session", "lease", "lease_key", "assigned", "blocked", "started_at",
                 "idle_since", "actor_id")

    def __init__(self, worker_id: bytes, process: Process) -> None:
        self.worker_id = worker_id
        self.process = process
        self.session: ClientSession | None = None
        self.lease: Resources | None = None  # resources held while it has tasks
        self.lease_key: tuple | None = None
        self.assigned: collections.deque[bytes] = collections.deque()  # in run order
        self.blocked = False
        self.started_at = time.monotonic()
        self.idle_since = self.started_at
        self.actor_id: bytes | None = None  # set while it hosts an actor


class WorkerPool:
    def __init__(self, spawn: Callable[[bytes], Process], max_workers: int) -> None:
        self._spawn = spawn
        self.max_workers = max_workers
        self.starting: dict[bytes, WorkerHandle] = {}
        self.workers: dict[bytes, WorkerHandle] = {}  # registered
        self.idle: list[WorkerHandle] = []
        self.leased: dict[tuple, list[WorkerHandle]] = collections.defaultdict(list)
        self.closed = False  # set at shutdown: start no more workers
        self.num_dedicated = 0  # workers hosting actors: not task capacity

    @property
    def size(self) -> int:
        """Workers that run tasks (starting or registered); actors' workers
        are not counted, so the pool refills when an actor takes one."""
        return len(self.starting) + len(self.workers) - self.num_dedicated

    def start(self) -> WorkerHandle | None:
        if self.closed or self.size >= self.max_workers:
            return None
        worker_id = ids.new_unique_id()
        handle = WorkerHandle(worker_id, self._spawn(worker_id))
        self.starting[worker_id] = handle
        return handle

    def register(self, worker_id: bytes, session: ClientSession) -> WorkerHandle | None:
        handle = self.starting.pop(worker_id, None)
        if handle is None:
            return None
        handle.session = session
        self.workers[worker_id] = handle
        handle.idle_since = time.monotonic()
        self.idle.append(handle)
        log.info("worker %s (pid %d) registered after %.2fs", worker_id.hex()[:8], handle.process.pid,
                 time.monotonic() - handle.started_at)
        return handle

    def lease(self, handle: WorkerHandle, shape: Resources, key: tuple) -> None:
        self.idle.remove(handle)
        handle.lease, handle.lease_key = shape, key
        self.leased[key].append(handle)

    def dedicate(self, handle: WorkerHandle, actor_id: bytes) -> None:
        """The leased `handle` now hosts an actor, for the actor's life: it
        keeps its lease and never gets other work."""
        if handle.lease_key is not None and handle in self.leased[handle.lease_key]:
            self.leased[handle.lease_key].remove(handle)
        handle.actor_id = actor_id
        self.num_dedicated += 1

    def release(self, handle: WorkerHandle) -> None:
        if handle.lease_key is not None:
            self.leased[handle.lease_key].remove(handle)
        handle.lease = handle.lease_key = None
        if handle.worker_id in self.workers:
            handle.idle_since = time.monotonic()
            self.idle.append(handle)

    def remove(self, worker_id: bytes) -> WorkerHandle | None:
        handle = self.starting.pop(worker_id, None) or self.workers.pop(worker_id, None)
        if handle is None:
            return None
        if handle in self.idle:
            self.idle.remove(handle)
        if handle.lease_key is not None and handle in self.leased[handle.lease_key]:
            self.leased[handle.lease_key].remove(handle)
        if handle.actor_id is not None:
            self.num_dedicated -= 1
        return handle

    def all(self) -> list[WorkerHandle]:
        return [*self.starting.values(), *self.workers.values()]


class ProcessSpawner:
    """Starts `python -m ember._private.worker` processes for a raylet."""

    def __init__(self, args: list[str], env: dict[str, str], log_dir: str) -> None:
        self._args = args
        self._env = env
        self._log_dir = log_dir

    def __call__(self, worker_id: bytes) -> subprocess.Popen[bytes]:
        hex_id = worker_id.hex()
        out = open(os.path.join(self._log_dir, f"worker-{hex_id[:12]}.log"), "ab")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "ember._private.worker", "--worker-id", hex_id,
                 "--parent-pid", str(os.getpid()), *self._args],
                env=self._env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                close_fds=True,
            )
        finally:
            out.close()
