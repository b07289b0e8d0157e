"""A worker process: started by its raylet, runs the tasks pushed to it in
order on its main thread; its reader thread queues tasks and cancellations.

    python -m ember._private.worker --worker-id HEX --raylet-address unix:PATH ...
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import faulthandler
import io
import signal
import json
import logging
import os
import sys
import threading
import traceback
from typing import Any

from ember.v1 import gcs_pb2, raylet_pb2

from ember import exceptions
from ember._private import auth, ids, runtime, serialization, task_args
from ember._private.config import Config
from ember._private.core_client import CoreClient

log = logging.getLogger("ember.worker")


class Worker:
    def __init__(self, worker_id: bytes, raylet_address: str, token: str | None, config: Config) -> None:
        self._queue: collections.deque[raylet_pb2.ExecuteTask] = collections.deque()
        self._cv = threading.Condition()
        self._current: bytes | None = None
        self._interruptible = False
        self._blocked = False  # the running task waits in get/wait
        self._main_thread = threading.get_ident()
        self._functions: dict[bytes, Any] = {}
        self._jobs_seen: set[bytes] = set()
        register = raylet_pb2.RegisterClient(kind=raylet_pb2.RegisterClient.WORKER, worker_id=worker_id, pid=os.getpid())
        self.client = CoreClient(raylet_address, token, register, config, on_execute=self._enqueue, on_cancel=self._cancel)
        self.client.on_block = self._on_block
        runtime.connect_worker(self.client)
        self._node_id = self.client.node_id.hex()

    # reader thread
    def _enqueue(self, tasks: list[raylet_pb2.ExecuteTask]) -> None:
        with self._cv:
            if not self._blocked:
                self._queue.extend(tasks)
                self._cv.notify()
            elif tasks:
                # Pipelined to us before the raylet learned we are blocked
                # (they may be the very tasks we wait on): hand them back.
                # Sent under the lock so it cannot overtake our "unblocked".
                self.client.send_blocked(True, [t.spec.task_id for t in tasks])

    def _cancel(self, task_ids: list[bytes]) -> None:
        with self._cv:
            for task_id in task_ids:
                queued = next((e for e in self._queue if e.spec.task_id == task_id), None)
                if queued is not None:
                    self._queue.remove(queued)
                    self._send_error(queued.spec, exceptions.TaskCancelledError(
                        f"task {queued.spec.function_name} was cancelled before it started"), application=False)
                elif task_id == self._current and self._interruptible:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(self._main_thread), ctypes.py_object(exceptions.TaskCancelledError))

    # main thread, inside a blocking get/wait
    def _on_block(self, blocked: bool) -> None:
        returned: list[bytes] = []
        with self._cv:
            self._blocked = blocked
            if blocked:
                returned = [e.spec.task_id for e in self._queue]
                self._queue.clear()
        self.client.send_blocked(blocked, returned)

    def run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    if not self.client.alive:
                        log.info("raylet connection closed; exiting")
                        return
                    self._cv.wait(1.0)
                execute = self._queue.popleft()
                self._current = execute.spec.task_id
            try:
                self._execute(execute)
            except exceptions.TaskCancelledError:
                pass  # a cancel that landed just after the task finished
            finally:
                with self._cv:
                    self._current = None

    def _function(self, spec: raylet_pb2.TaskSpec) -> Any:
        fn = self._functions.get(spec.function_id)
        if fn is None:
            if spec.job_id not in self._jobs_seen:
                self._adopt_job_path(spec.job_id)
            fn = serialization.loads_function(self.client.fetch_function(spec.function_id))
            self._functions[spec.function_id] = fn
        return fn

    def _adopt_job_path(self, job_id: bytes) -> None:
        """Put the driver's import path on ours, so functions and classes
        pickled by reference import here too."""
        self._jobs_seen.add(job_id)
        reply = self.client.gcs.KvGet(gcs_pb2.KvGetRequest(namespace="job", key=job_id + b"/sys_path"), timeout=30)
        if reply.found:
            for entry in json.loads(reply.value):
                if entry not in sys.path:
                    sys.path.append(entry)

    def _execute(self, execute: raylet_pb2.ExecuteTask) -> None:
        spec = execute.spec
        ctx = runtime.task_context
        ctx.task_id, ctx.job_id, ctx.task_name = spec.task_id, spec.job_id, spec.function_name
        try:
            fn = self._function(spec)
            deps = [self.client.decode(v) for v in execute.args]
            args, kwargs = task_args.unpack(spec.args, deps)
            self._interruptible = True
            try:
                result = fn(*args, **kwargs)
            finally:
                self._interruptible = False
            returns = self._returns(spec, result)
        except exceptions.TaskCancelledError as e:
            self._send_error(spec, e, application=False)
        except Exception as e:
            # From the user's frame on: the worker's own frame is noise.
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None))
            cause = e.cause if isinstance(e, exceptions.TaskError) and e.cause is not None else e
            self._send_error(spec, exceptions.TaskError(spec.function_name, tb, cause, os.getpid(), self._node_id),
                             application=True)
        else:
            self.client.send_result(raylet_pb2.TaskResult(task_id=spec.task_id, returns=returns))
        finally:
            ctx.task_id = ctx.job_id = ctx.task_name = None

    def _returns(self, spec: raylet_pb2.TaskSpec, result: Any) -> list[Any]:
        n = spec.num_returns
        if n == 0:
            return []
        if n == 1:
            values = [result]
        else:
            values = list(result) if isinstance(result, (tuple, list)) else None
            if values is None or len(values) != n:
                got = len(values) if values is not None else type(result).__name__
                raise ValueError(f"task declared num_returns={n} but returned {got}")
        return [
            self.client.encode(ids.object_id_for(spec.task_id, i + 1), serialization.serialize(v))
            for i, v in enumerate(values)
        ]

    def _send_error(self, spec: raylet_pb2.TaskSpec, error: BaseException, application: bool) -> None:
        data = serialization.serialize_error(error).to_bytes()
        result = raylet_pb2.TaskResult(task_id=spec.task_id, application_error=application)
        for i in range(spec.num_returns):
            result.returns.add(object_id=ids.object_id_for(spec.task_id, i + 1), data=data, is_error=True)
        self.client.send_result(result)


class TaskOutput(io.TextIOBase):
    """What tasks print: kept in the worker's log and forwarded, line by
    line, to the drivers of the task's job (as Ray does)."""

    def __init__(self, log: Any, client: CoreClient, is_stderr: bool) -> None:
        self._log = log
        self._client = client
        self._is_stderr = is_stderr
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._log.write(text)
        ctx = runtime.task_context
        if ctx.job_id is None:
            return len(text)  # not inside a task: the log only
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            self._client.send_logs(raylet_pb2.LogLines(
                job_id=ctx.job_id, pid=os.getpid(), task_name=ctx.task_name or "task",
                is_stderr=self._is_stderr, lines=lines))
        return len(text)

    def flush(self) -> None:
        self._log.flush()

    def fileno(self) -> int:
        return self._log.fileno()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ember-worker")
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--raylet-address", required=True)
    parser.add_argument("--node-id", default="")
    parser.add_argument("--session-dir", default="")
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s worker %(process)d: %(message)s")
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>` dumps stacks to the log
    if args.parent_pid:
        _watch_parent(args.parent_pid)
    config = Config.load()
    worker = Worker(bytes.fromhex(args.worker_id), args.raylet_address, os.environ.get(auth.TOKEN_ENV), config)
    if config.log_to_driver:
        sys.stdout = TaskOutput(sys.stdout, worker.client, is_stderr=False)
        sys.stderr = TaskOutput(sys.stderr, worker.client, is_stderr=True)
    worker.run()
    os._exit(0)  # don't wait on non-daemon threads users may have left


def _watch_parent(parent_pid: int) -> None:
    def watch() -> None:
        import time

        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="ember-parent-watch").start()


if __name__ == "__main__":
    main()
