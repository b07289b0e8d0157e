"""This node's resources leased to its workers: which worker takes a task
(an idle one, whose lease holds the task's resources, else pipelining onto
a leased worker of the same shape, else a thread of its own in a worker
whose tasks all wait in get/wait), leases given back, a blocked worker's
resources lent out meanwhile, a dead worker's tasks retried or failed, and
idle workers beyond the minimum retired. The processes are `worker_pool`'s.

Why threads for nested tasks: a task blocked in `get` on tasks it submitted
lends its CPU, and the tasks it waits on need a worker. Starting a process
for each (as Ray does) grows the pool with the recursion; capping it
deadlocks once every worker waits. A worker whose tasks all wait has a free
interpreter, so the waited-on tasks run there, each on a thread with its
own lease: the pool stays at its size, at the cost of a thread per waiting
task instead of a process (docs/architecture.md, "Nested tasks").
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Callable, Iterable

from ember.v1 import raylet_pb2

from ember_common.object_layout import Failure, FailureType
from ember_raylet import resources
from ember_raylet.client_session import ClientSession
from ember_raylet.resources import Resources
from ember_raylet.task_manager import ASSIGNED, FinishTask, TaskEntry, TaskManager
from ember_raylet.worker_pool import ThreadLease, WorkerHandle, WorkerPool

log = logging.getLogger(__name__)

# A worker's first task that has run this long is taken to be a long one:
# nothing more is pipelined behind it, and what was is asked back once its
# resources are free elsewhere (NodeManager.reclaim_stalled).
STALLED_AFTER_S = 0.1

class WorkerLeases:
    def __init__(self, pool: WorkerPool, total: Resources, available: Resources, min_workers: int,
                 pipeline_depth: int, tasks: TaskManager, finish: FinishTask,
                 actor_worker_died: Callable[[WorkerHandle, str], None],
                 hosts_actors: Callable[[ClientSession], object],
                 warn: Callable[[bytes, str], None] = lambda job_id, message: None,
                 many_threads: int = 200) -> None:
        self._pool = pool
        self._total = total  # this node's (the node manager's dicts, changed in place)
        self._available = available
        self._min_workers = min_workers
        self._pipeline_depth = pipeline_depth
        self._tasks = tasks
        self._finish = finish
        self._actor_worker_died = actor_worker_died
        self._hosts_actors = hosts_actors  # truthy if the session owns live actors: never retired
        self._warn = warn  # (job id, message) for the job's drivers
        self._waiting: set[WorkerHandle] = set()  # task workers whose main task waits in get/wait
        self.num_threads = 0  # tasks running on threads of their own
        self._many_threads = many_threads  # tasks on threads at which drivers are warned (once)
        self._warned_threads = False

    def pick(self, task: TaskEntry) -> WorkerHandle | None:
        """A worker to take the task now, leased for it if it was idle."""
        if task.remote_only:
            return None
        pool, shape = self._pool, task.shape
        idle = pool.idle_env.get(task.env) if task.env else pool.idle
        if idle and resources.fits(shape, self._available):
            worker = idle[-1]
            pool.lease(worker, shape, task.key)
            resources.subtract(self._available, shape)
            return worker
        thread_ok = not task.env and not task.spec.HasField("actor_creation")  # an actor needs a process of its own
        room = (pool.num_env if task.env else pool.size) < pool.max_workers  # (for another worker)
        if shape and room and resources.fits(shape, self._available):
            # Its resources are free: it runs on a waiting worker's thread or
            # waits for the worker the scheduler starts for it, never behind
            # a running task of unknown length (a fast task queued behind a
            # slow one while a CPU idles).
            return self._thread_host(task) if self._waiting and thread_ok else None
        best = None
        stalled_since = None
        for worker in pool.leased.get(task.key, ()):
            if not worker.blocked and len(worker.assigned) < self._pipeline_depth:
                if best is None or len(worker.assigned) < len(best.assigned):
                    if stalled_since is None:
                        stalled_since = time.monotonic() - STALLED_AFTER_S
                    if worker.head_since > stalled_since:  # (never behind a task that runs long)
                        best = worker
        if best is None and self._waiting and thread_ok and resources.fits(shape, self._available):
            best = self._thread_host(task)
        return best

    def stalled_pipelines(self, now: float) -> list[tuple[WorkerHandle, list[bytes]]]:
        """Workers whose first task has run STALLED_AFTER_S or longer with
        tasks pipelined behind it that could start now (their resources are
        free), each with those tasks: to be asked back, once per first task."""
        out = []
        stalled_since = now - STALLED_AFTER_S
        for workers in self._pool.leased.values():
            for worker in workers:
                assigned = worker.assigned
                if (len(assigned) > 1 and worker.head_since <= stalled_since and worker.actor_id is None
                        and not worker.blocked and worker.reclaimed_head != assigned[0]
                        and worker.lease is not None and resources.fits(worker.lease, self._available)):
                    worker.reclaimed_head = assigned[0]
                    out.append((worker, list(itertools.islice(assigned, 1, None))))
        return out

    def reclaimed(self, session: ClientSession, task_ids: Iterable[bytes]) -> None:
        """A worker gave back tasks it had not started (asked by
        stalled_pipelines): they queue again at the front, in order."""
        worker = self._pool.workers.get(session.worker_id)
        if worker is not None:
            self._requeue(worker, task_ids)

    def _requeue(self, worker: WorkerHandle, task_ids: Iterable[bytes]) -> None:
        # (An actor's calls are its own: never handed back.)
        for task_id in reversed(list(task_ids) if worker.actor_id is None else ()):
            task = self._tasks.tasks.get(task_id)
            if task is not None and task_id in worker.assigned and task.state == ASSIGNED:
                worker.assigned.remove(task_id)
                self._tasks.enqueue(task, front=True)

    def _thread_host(self, task: TaskEntry) -> WorkerHandle | None:
        """A worker whose tasks all wait, to run `task` on a thread of its
        own (the one with fewest such threads: they may all wake at once)."""
        host = None
        for worker in self._waiting:
            if worker.waits_only() and not worker.env and (host is None or len(worker.threads) < len(host.threads)):
                host = worker
        if host is None:
            return None
        host.threads[task.spec.task_id] = ThreadLease(task.shape)
        resources.subtract(self._available, task.shape)
        self.num_threads += 1
        if self.num_threads >= self._many_threads and not self._warned_threads:
            self._warned_threads = True
            message = (f"{self.num_threads} tasks on this node run nested inside tasks that wait for them in "
                       "ember.get()/ember.wait() (recursion such as fib calling fib.remote and getting the "
                       f"results): each waiting task keeps a thread alive in one of the {self._pool.size} "
                       "workers. Deep or wide recursion holds them all; consider fewer, larger tasks or "
                       "returning refs instead of getting them")
            log.warning(message)
            self._warn(task.spec.job_id, message)
        return host

    def thread_done(self, worker: WorkerHandle, task_id: bytes) -> bool:
        """A task on a thread of its own ended: its resources come back.
        False if it was not one."""
        lease = worker.threads.pop(task_id, None)
        if lease is None:
            return False
        self.num_threads -= 1
        if not lease.blocked:
            resources.add(self._available, lease.shape)
        return True

    def thread_blocked(self, session: ClientSession, blocked: raylet_pb2.WorkerBlocked) -> None:
        """A task on a thread of its own waits in get/wait (its resources
        lent out), or is back (taking them again, maybe oversubscribing)."""
        worker = self._pool.workers.get(session.worker_id)
        lease = worker.threads.get(blocked.task_id) if worker is not None else None
        if lease is None or lease.blocked == blocked.blocked:
            return
        lease.blocked = blocked.blocked
        if blocked.blocked:
            resources.add(self._available, lease.shape)
        else:
            resources.subtract(self._available, lease.shape)

    def release(self, worker: WorkerHandle) -> None:
        """The worker has nothing left to run: its lease is given back."""
        available = self._available
        if worker.lease is not None and not worker.blocked:
            resources.add(available, worker.lease)
            for name in worker.lease:
                if name not in self._total:  # a bundle returned while the task ran
                    available.pop(name, None)
        worker.blocked = False
        self._waiting.discard(worker)
        self._pool.release(worker)

    def blocked(self, session: ClientSession, blocked: raylet_pb2.WorkerBlocked) -> None:
        """A worker waits on (or stopped waiting on) objects: its resources
        are lent out meanwhile, and the tasks it hands back queue again."""
        worker = self._pool.workers.get(session.worker_id)
        if worker is None:
            return
        self._requeue(worker, blocked.returned_task_ids)  # (to the front of their queues, in order)
        if worker.lease is None:
            return
        if blocked.blocked and not worker.blocked:
            worker.blocked = True
            resources.add(self._available, worker.lease)
            if worker.actor_id is None:
                self._waiting.add(worker)
        elif not blocked.blocked and worker.blocked:
            worker.blocked = False
            self._waiting.discard(worker)
            resources.subtract(self._available, worker.lease)  # may oversubscribe briefly

    def died(self, worker_id: bytes, reason: str,
             failure_type: FailureType = FailureType.WORKER_CRASHED) -> WorkerHandle | None:
        """A worker is gone: its lease back, its running task retried or
        failed (with `failure_type` once out of retries), the tasks pipelined
        behind it queued again (no retry spent). Returns it (its process to
        reap), or None if it was not ours."""
        worker = self._pool.remove(worker_id, reason)
        if worker is None:
            return None
        log.warning("worker %s (pid %d) died: %s", worker_id.hex()[:8], worker.process.pid, reason)
        if worker.lease is not None and not worker.blocked:
            resources.add(self._available, worker.lease)
        self._waiting.discard(worker)
        if worker.actor_id is not None:
            self._actor_worker_died(worker, reason)
            worker.assigned.clear()
        # Tasks on threads of their own were running too: each is retried or failed.
        threads = list(worker.threads)
        for task_id in threads:
            self.thread_done(worker, task_id)
        running = True
        for task_id in [*threads, *worker.assigned]:
            task = self._tasks.tasks.get(task_id)
            if task is None:
                continue
            if task.cancelled:
                self._finish(task, error=task.cancelled_failure())
            elif not running:
                self._tasks.enqueue(task)  # never started: no retry spent
            elif task.take_retry():
                log.info("retrying %s after worker death (%d retries left)", task.spec.function_name, task.retries_left)
                self._tasks.enqueue(task)
            else:
                self._finish(task, error=Failure(failure_type,
                    f"the worker running {task.spec.function_name} (pid {worker.process.pid}) died: {reason}; "
                    f"no retries left (max_retries={task.spec.max_retries})"))
            running = task_id in threads
        worker.assigned.clear()
        if worker.session is not None:
            worker.session.close()
        self.ensure_min_workers()
        return worker

    def retire_idle(self, now: float, idle_timeout_s: float) -> list[WorkerHandle]:
        """Workers started beyond the pool's minimum (for blocked nested
        tasks) that have been idle for a while: removed from the pool here,
        for the caller to terminate. The longest idle go first."""
        retired = []
        # Workers of other environments go once idle that long, whatever the minimum.
        for idle in list(self._pool.idle_env.values()):
            for worker in idle:
                if now - worker.idle_since >= idle_timeout_s and not worker.threads and not (
                        worker.session is not None and self._hosts_actors(worker.session)):
                    retired.append(worker)
        num_env = len(retired)
        for worker in sorted(self._pool.idle, key=lambda w: w.idle_since):
            if self._pool.size - (len(retired) - num_env) <= self._min_workers:
                break
            if now - worker.idle_since >= idle_timeout_s and not worker.threads and not (
                    worker.session is not None and self._hosts_actors(worker.session)):
                retired.append(worker)
        for worker in retired:
            self._pool.remove(worker.worker_id, "idle: retired")
        return retired

    def ensure_min_workers(self) -> None:
        while self._pool.size < self._min_workers and self._pool.start() is not None:
            pass
