"""Worker processes: started ahead of time, leased to one resource shape
while they have tasks, returned to the idle set when they run dry."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from typing import Callable, Protocol

from ember_common import ids
from ember_raylet.client_session import ClientSession
from ember_raylet.resources import Resources

log = logging.getLogger(__name__)


class Process(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def terminate(self) -> None: ...


class ThreadLease:
    """A task a worker runs on a thread of its own, beside its tasks that
    wait in get/wait, holding resources of its own (`shape`) unless it
    waits too (`blocked`: lent out)."""

    __slots__ = ("shape", "blocked")

    def __init__(self, shape: Resources) -> None:
        self.shape = shape
        self.blocked = False


# Exited workers remembered (ember list workers, ember logs --pid).
_EXITED_KEPT = 1000


class WorkerHandle:
    __slots__ = ("worker_id", "process", "session", "lease", "lease_key", "assigned", "blocked", "started_at",
                 "idle_since", "actor_id", "threads", "env", "start_time", "head_since", "reclaimed_head")

    def __init__(self, worker_id: bytes, process: Process, env: str = "") -> None:
        self.worker_id = worker_id
        self.process = process
        self.env = env  # its runtime environment (TaskSpec.runtime_env; "" the default)
        self.session: ClientSession | None = None
        self.lease: Resources | None = None  # resources held while it has tasks
        self.lease_key: tuple | None = None
        self.assigned: collections.deque[bytes] = collections.deque()  # in run order
        self.blocked = False
        self.started_at = time.monotonic()
        self.start_time = time.time()  # (ember list workers)
        self.idle_since = self.started_at
        self.actor_id: bytes | None = None  # set while it hosts an actor
        self.threads: dict[bytes, ThreadLease] = {}  # task id -> its lease, for tasks on threads of their own
        # When the first of `assigned` became first (about when it started),
        # and the first one at which the tasks behind it were asked back.
        self.head_since = self.started_at
        self.reclaimed_head: bytes | None = None

    def waits_only(self) -> bool:
        """Whether every task it runs waits in get/wait (none uses its CPU)."""
        return self.blocked and all(t.blocked for t in self.threads.values())


class WorkerPool:
    """Workers of the default environment are the pool proper (`idle`,
    `size`, refilled to a minimum); workers started in a runtime
    environment only ever run tasks of that environment (`idle_env`), are
    counted apart and are retired once idle."""

    def __init__(self, spawn: Callable[[bytes], Process], max_workers: int,
                 spawn_env: Callable[[bytes, str], Process] | None = None) -> None:
        self._spawn = spawn
        self._spawn_env = spawn_env
        self.max_workers = max_workers
        self.starting: dict[bytes, WorkerHandle] = {}
        self.workers: dict[bytes, WorkerHandle] = {}  # registered
        self.idle: list[WorkerHandle] = []  # of the default environment
        self.idle_env: dict[str, list[WorkerHandle]] = {}  # of each other environment
        self.num_env = 0  # workers of other environments (not hosting actors)
        self.leased: dict[tuple, list[WorkerHandle]] = collections.defaultdict(list)
        self.closed = False  # set at shutdown: start no more workers
        self.spawn_ready = True  # False while the spawner warms up: start none yet
        self.num_dedicated = 0  # workers hosting actors: not task capacity
        self.num_started = 0  # since the raylet started (metrics)
        # Workers gone, newest last, for `ember list workers` and their logs:
        # (handle, unix time it went, why). Bounded: the oldest are forgotten.
        self.exited: collections.deque[tuple[WorkerHandle, float, str]] = collections.deque(maxlen=_EXITED_KEPT)

    @property
    def size(self) -> int:
        """Workers that run tasks (starting or registered); actors' workers
        are not counted, so the pool refills when an actor takes one."""
        return len(self.starting) + len(self.workers) - self.num_dedicated - self.num_env

    def start(self, env: str = "") -> WorkerHandle | None:
        if self.closed or not self.spawn_ready:
            return None
        worker_id = ids.new_unique_id()
        if env:
            if self._spawn_env is None or self.num_env >= self.max_workers:
                return None
            try:
                process = self._spawn_env(worker_id, env)
            except Exception:  # (its environment went away: the spawner forgot it, so it is built again)
                log.exception("starting a worker in a runtime environment failed")
                return None
            handle = WorkerHandle(worker_id, process, env)
            self.num_env += 1
        else:
            if self.size >= self.max_workers:
                return None
            handle = WorkerHandle(worker_id, self._spawn(worker_id))
        self.starting[worker_id] = handle
        self.num_started += 1
        return handle

    def idle_list(self, env: str) -> list[WorkerHandle]:
        return self.idle_env.setdefault(env, []) if env else self.idle

    def num_starting(self, env: str) -> int:
        return sum(1 for handle in self.starting.values() if handle.env == env)

    def register(self, worker_id: bytes, session: ClientSession) -> WorkerHandle | None:
        handle = self.starting.pop(worker_id, None)
        if handle is None:
            return None
        handle.session = session
        self.workers[worker_id] = handle
        handle.idle_since = time.monotonic()
        self.idle_list(handle.env).append(handle)
        log.info("worker %s (pid %d) registered after %.2fs", worker_id.hex()[:8], handle.process.pid,
                 time.monotonic() - handle.started_at)
        return handle

    def lease(self, handle: WorkerHandle, shape: Resources, key: tuple) -> None:
        self.idle_list(handle.env).remove(handle)
        handle.lease, handle.lease_key = shape, key
        self.leased[key].append(handle)

    def dedicate(self, handle: WorkerHandle, actor_id: bytes) -> None:
        """The leased `handle` now hosts an actor, for the actor's life: it
        keeps its lease and never gets other work."""
        if handle.lease_key is not None and handle in self.leased[handle.lease_key]:
            self.leased[handle.lease_key].remove(handle)
        handle.actor_id = actor_id
        self.num_dedicated += 1
        if handle.env:
            self.num_env -= 1

    def release(self, handle: WorkerHandle) -> None:
        if handle.lease_key is not None:
            self.leased[handle.lease_key].remove(handle)
        handle.lease = handle.lease_key = None
        if handle.worker_id in self.workers:
            handle.idle_since = time.monotonic()
            self.idle_list(handle.env).append(handle)

    def remove(self, worker_id: bytes, reason: str = "") -> WorkerHandle | None:
        handle = self.starting.pop(worker_id, None) or self.workers.pop(worker_id, None)
        if handle is None:
            return None
        self.exited.append((handle, time.time(), reason))
        idle = self.idle_list(handle.env)
        if handle in idle:
            idle.remove(handle)
        if handle.env and not idle:
            del self.idle_env[handle.env]
        if handle.lease_key is not None and handle in self.leased[handle.lease_key]:
            self.leased[handle.lease_key].remove(handle)
        if handle.actor_id is not None:
            self.num_dedicated -= 1
        elif handle.env:
            self.num_env -= 1
        return handle

    def envs_in_use(self) -> set[str]:
        return {handle.env for handle in (*self.starting.values(), *self.workers.values()) if handle.env}

    def all(self) -> list[WorkerHandle]:
        return [*self.starting.values(), *self.workers.values()]


class ProcessSpawner:
    """Starts `python -m ember._private.worker` processes for a raylet."""

    def __init__(self, args: list[str], env: dict[str, str], log_dir: str) -> None:
        self._args = args
        self._env = env
        self._log_dir = log_dir

    def __call__(self, worker_id: bytes, python: str = sys.executable, cwd: str | None = None,
                 extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A worker process; `python`, `cwd` and `extra_env` start it in a runtime environment."""
        hex_id = worker_id.hex()
        out = open(os.path.join(self._log_dir, f"worker-{hex_id[:12]}.log"), "ab")
        try:
            return subprocess.Popen(
                [python, "-m", "ember._private.worker", "--worker-id", hex_id,
                 "--parent-pid", str(os.getpid()), *self._args],
                env={**self._env, **(extra_env or {})}, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, close_fds=True,
            )
        finally:
            out.close()

    async def start(self) -> None:
        return None

    def close(self) -> None:
        return None


class ForkedProcess:
    """A worker forked by the zygote: not our child, so it is watched and
    signalled through a pidfd (immune to pid reuse); its exit code comes
    from the zygote."""

    def __init__(self, pid: int, zygote: "ZygoteSpawner") -> None:
        self.pid = pid
        self._zygote = zygote
        # The zygote process that forked it: only that one reports its exit
        # (a zygote started again after a crash knows nothing of it).
        self._parent = zygote._zygote
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None  # already gone
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self._pidfd is not None and not select.select([self._pidfd], [], [], 0)[0]:
            return None  # running
        self._zygote.read_exits()
        code = self._zygote.exit_codes.pop(self.pid, None)
        if code is None:
            if self._parent is not None and self._parent.poll() is None:
                return None  # exited; the zygote's report (with the code) is on its way
            code = -1  # nobody can tell the code any more
        self.returncode = code
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return self.returncode

    def _signal(self, sig: int) -> None:
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if self._pidfd is None or select.select([self._pidfd], [], [], 0.05)[0]:
                time.sleep(0.01)  # exited, its report not read yet: do not spin
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("worker", timeout or 0)
        return code


class ZygoteSpawner:
    """Forks workers from one pre-imported zygote process
    (`ember._private.worker_zygote`): a worker starts in a few ms instead of
    ~250, and shares the zygote's imported code. Falls back to starting a
    zygote again if it died."""

    def __init__(self, args: list[str], env: dict[str, str], log_dir: str) -> None:
        self._args = args
        self._env = env
        self._log_dir = log_dir
        self._zygote: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._ready = False
        self.exit_codes: dict[int, int] = {}

    async def start(self) -> None:
        """Start the zygote and wait (without blocking the loop) until it
        has imported the worker code, so the first forks are quick."""
        zygote = self._ensure_zygote()
        started = time.monotonic()
        deadline = started + 30
        while not self._ready:
            self._lines()
            if zygote.poll() is not None:
                raise RuntimeError(f"the worker zygote exited with code {zygote.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("the worker zygote was not ready within 30 s")
            await asyncio.sleep(0.005)
        log.info("worker zygote (pid %d) ready after %.2fs", zygote.pid, time.monotonic() - started)

    def _ensure_zygote(self) -> subprocess.Popen[bytes]:
        if self._zygote is None or self._zygote.poll() is not None:
            log_path = os.path.join(self._log_dir, "worker-zygote.log")
            with open(log_path, "ab") as err:
                # The workers' flags on the zygote's command line too: forked
                # workers show its command line, and tools find a session's
                # processes by the session directory in it.
                self._zygote = subprocess.Popen(
                    [sys.executable, "-m", "ember._private.worker_zygote", *self._args], env=self._env,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, close_fds=True,
                )
            os.set_blocking(self._zygote.stdout.fileno(), False)  # type: ignore[union-attr]
            self._buffer = b""
            self._ready = False
        return self._zygote

    def __call__(self, worker_id: bytes) -> ForkedProcess:
        zygote = self._ensure_zygote()
        hex_id = worker_id.hex()
        request = {"argv": ["--worker-id", hex_id, *self._args],
                   "log": os.path.join(self._log_dir, f"worker-{hex_id[:12]}.log")}
        assert zygote.stdin is not None
        zygote.stdin.write(json.dumps(request).encode() + b"\n")
        zygote.stdin.flush()
        # The pid comes back within milliseconds (a fork); the first request
        # also waits for the zygote's imports (~0.2 s, once).
        deadline = time.monotonic() + 30
        while True:
            for line in self._lines():
                if line.startswith("pid "):
                    return ForkedProcess(int(line.split()[1]), self)
            if zygote.poll() is not None:
                raise RuntimeError(f"the worker zygote exited with code {zygote.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("the worker zygote did not answer within 30 s")
            select.select([zygote.stdout], [], [], 0.5)

    def read_exits(self) -> None:
        """Collect the exit codes the zygote reported so far."""
        if self._zygote is not None:
            for line in self._lines():
                log.warning("worker zygote: unexpected %r", line)

    def _lines(self) -> list[str]:
        """Complete lines from the zygote; exit reports are recorded here."""
        assert self._zygote is not None and self._zygote.stdout is not None
        try:
            chunk = self._zygote.stdout.read()
        except (BlockingIOError, ValueError):
            chunk = None
        if chunk:
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        out = []
        for raw in lines:
            line = raw.decode()
            if line.startswith("exit "):
                _, pid, code = line.split()
                self.exit_codes[int(pid)] = int(code)
            elif line == "ready":
                self._ready = True
            else:
                out.append(line)
        return out

    def close(self) -> None:
        if self._zygote is not None and self._zygote.poll() is None:
            assert self._zygote.stdin is not None
            self._zygote.stdin.close()  # EOF: the zygote exits
            try:
                self._zygote.wait(2)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
