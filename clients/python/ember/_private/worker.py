"""A worker process: started by its raylet, runs the tasks pushed to it in
order on its main thread; its reader thread queues tasks and cancellations.
While its tasks wait in get/wait, the raylet may give it the tasks they wait
on (`own_thread`): each runs at once on a thread of its own (TaskThreads).

A worker given an actor's creation task hosts that actor for the rest of its
life: its method calls run on the main thread in order, or on a thread pool
(max_concurrency > 1), or as coroutines on one event loop (async actors).

    python -m ember._private.worker --worker-id HEX --raylet-address local:PATH ...

(`local:PATH` is the raylet's framed unix socket; `unix:PATH` or `HOST:PORT`
selects the gRPC stream instead.)
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import faulthandler
import inspect
import io
import signal
import logging
import os
import queue
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Iterator

from ember.v1 import raylet_pb2

from ember import exceptions
from ember._private import direct_calls, generators, runtime, runtime_env_support, serialization, task_args, tracing
from ember._private.actor import READY_METHOD, ActorExit, _ClassInfo, own_handle
from ember._private.core_client import CoreClient
from ember._private.direct_calls import CallerConnection
from ember._private.object_ref import ObjectRef
from ember_common import auth, ids
from ember_common.config import Config

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

log = logging.getLogger("ember.worker")

# Interrupts the running task (SIGUSR1 dumps stacks, see main()).
_CANCEL_SIGNAL = signal.SIGUSR2


class Worker:
    def __init__(self, worker_id: bytes, raylet_address: str, token: str | None, config: Config) -> None:
        self._queue: collections.deque[raylet_pb2.ExecuteTask] = collections.deque()
        self._cv = threading.Condition()
        self._current: bytes | None = None
        self._interruptible = False
        self._blocked = False  # the running task waits in get/wait
        self._main_thread = threading.get_ident()
        self._cancelled: bytes | None = None  # the running task a cancel came for
        signal.signal(_CANCEL_SIGNAL, self._on_cancel_signal)
        self._functions: dict[bytes, Any] = {}
        self._jobs_seen: set[bytes] = set()
        self._jobs_lock = threading.Lock()
        # Set once this worker hosts an actor.
        self._actor: Any = None
        self._actor_id: bytes | None = None
        self._actor_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._actor_loop: asyncio.AbstractEventLoop | None = None
        self._actor_slots: asyncio.Semaphore | None = None
        # What the actor holds and is (its creation spec without arguments).
        self._actor_spec: raylet_pb2.TaskSpec | None = None
        self._actor_handle: Any = None  # get_runtime_context().current_actor
        # The actor's calls handed out to run: task id -> its asyncio task
        # (async actors, once it started), else None. A cancel flags a
        # running call rather than interrupting it (Ray: an actor has state);
        # an async one has its asyncio task cancelled.
        self._actor_calls: dict[bytes, Any] = {}
        self._exited = False
        # Calls that came straight from their caller: where each result goes.
        self._direct_origin: dict[bytes, CallerConnection] = {}
        # Tasks on threads of their own: task id -> the thread's id while the
        # task's own code runs (a cancel may interrupt it), else None.
        self._on_threads: dict[bytes, int | None] = {}
        self._thread_cancels: set[bytes] = set()  # of those, the ones cancelled
        self._threads = TaskThreads(self._run_on_thread)
        register = raylet_pb2.RegisterClient(kind=raylet_pb2.RegisterClient.WORKER, worker_id=worker_id, pid=os.getpid())
        # Measure each task's start and run time (TaskResult.start_time, run_time_s).
        self._timed = config.metrics_enabled or config.task_events_enabled
        self._task_events = config.task_events_enabled  # report the direct calls this worker runs
        self.client = CoreClient(raylet_address, token, register, config, on_execute=self._enqueue,
                                 on_cancel=self._cancel, on_reclaim=self._reclaim)
        self._worker_id = worker_id
        self._token = token or ""
        self.client.on_block = self._on_block
        runtime.connect_worker(self.client)
        self._node_id = self.client.node_id.hex()
        # After the fork from the zygote (which never loads OpenTelemetry):
        # the exporter's threads and channel are this worker's own.
        tracing.configure("ember-worker", {"ember.node_id": self._node_id})

    # reader thread
    def _enqueue(self, tasks: list[raylet_pb2.ExecuteTask]) -> None:
        if any(t.own_thread for t in tasks):
            for execute in tasks:
                if execute.own_thread:
                    with self._cv:
                        self._on_threads[execute.spec.task_id] = None
                    self._threads.start(execute)
            tasks = [t for t in tasks if not t.own_thread]
        with self._cv:
            if not self._blocked or self._actor_id is not None:  # an actor's calls are its own
                self._queue.extend(tasks)
                self._cv.notify()
            elif tasks:
                # Pipelined to us before the raylet learned we are blocked
                # (they may be the very tasks we wait on): hand them back.
                # Sent under the lock so it cannot overtake our "unblocked".
                self.client.send_blocked(True, [t.spec.task_id for t in tasks])

    # a direct caller's reader thread
    def _enqueue_direct(self, tasks: list[raylet_pb2.ExecuteTask], origin: CallerConnection) -> None:
        for execute in tasks:
            self._direct_origin[execute.spec.task_id] = origin
        self._enqueue(tasks)

    def _reclaim(self, task_ids: list[bytes]) -> None:
        """The raylet wants these tasks back (pipelined here behind one that
        runs long): those not started go back; the rest run as usual."""
        wanted = set(task_ids)
        with self._cv:
            given = [e.spec.task_id for e in self._queue if e.spec.task_id in wanted]
            if given:
                kept = [e for e in self._queue if e.spec.task_id not in wanted]
                self._queue.clear()
                self._queue.extend(kept)
                self.client.send_reclaimed(given)  # (under the lock, as a hand-back on blocking)

    def _cancel(self, task_ids: list[bytes]) -> None:
        with self._cv:
            for task_id in task_ids:
                queued = next((e for e in self._queue if e.spec.task_id == task_id), None)
                if queued is not None:
                    self._queue.remove(queued)
                    self._send_error(queued.spec, exceptions.TaskCancelledError(
                        f"task {queued.spec.function_name} was cancelled before it started"), application=False)
                    continue
                if task_id in self._actor_calls or task_id == self._current or task_id in self._on_threads:
                    runtime.cancelled_tasks.add(task_id)  # get_runtime_context().is_canceled()
                if task_id in self._actor_calls:
                    running = self._actor_calls[task_id]
                    if running is not None and self._actor_loop is not None:
                        self._actor_loop.call_soon_threadsafe(running.cancel)
                elif task_id == self._current:
                    # Noted before `_interruptible` is read: a task still
                    # setting up (fetching its function, decoding its
                    # arguments) sees the note as it starts (_execute).
                    self._cancelled = task_id
                    if self._interruptible:
                        signal.pthread_kill(self._main_thread, _CANCEL_SIGNAL)
                elif task_id in self._on_threads:
                    self._thread_cancels.add(task_id)
                    thread_id = self._on_threads[task_id]
                    if thread_id is not None:  # (signals reach only the main thread)
                        _raise_in_thread(thread_id, exceptions.TaskCancelledError)

    # main thread, from the signal the reader thread sends it
    def _on_cancel_signal(self, _signum: int, _frame: object) -> None:
        # Raised between two bytecodes of the task, or out of a blocking call
        # (sleep, a lock, a socket read) that the signal cut short.
        if self._cancelled is not None and self._cancelled == self._current and self._interruptible:
            self._cancelled = None
            raise exceptions.TaskCancelledError("the task was cancelled while it ran")

    # a task's thread, inside a blocking get/wait
    def _on_block(self, blocked: bool) -> None:
        if self._actor_id is not None:
            # A one-call-at-a-time actor lends its resources while it waits;
            # concurrent ones keep them (other calls are running).
            if self._actor_pool is None and self._actor_loop is None:
                self.client.send_blocked(blocked, [])
            return
        if threading.get_ident() != self._main_thread:
            task_id = runtime.task_context().task_id
            if task_id in self._on_threads:
                self.client.send_blocked(blocked, [], task_id)
            return  # (a thread the task started itself: its task is the one that counts)
        returned: list[bytes] = []
        with self._cv:
            self._blocked = blocked
            if blocked:
                returned = [e.spec.task_id for e in self._queue]
                self._queue.clear()
        self.client.send_blocked(blocked, returned)

    # a thread of TaskThreads
    def _run_on_thread(self, execute: raylet_pb2.ExecuteTask) -> None:
        task_id = execute.spec.task_id
        try:
            self._execute(execute)
        except exceptions.TaskCancelledError:
            pass  # a cancel that landed just after the task finished
        finally:
            while True:  # (a cancel landing in here must not skip the clean-up)
                try:
                    with self._cv:
                        self._on_threads.pop(task_id, None)
                        runtime.cancelled_tasks.discard(task_id)
                        if task_id in self._thread_cancels:
                            self._thread_cancels.discard(task_id)
                            _raise_in_thread(threading.get_ident(), None)  # one still pending is dropped
                    break
                except exceptions.TaskCancelledError:
                    continue

    def run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    if not self.client.alive:
                        log.info("raylet connection closed; exiting")
                        return
                    self._cv.wait(1.0)
                if self._actor_loop is not None and not self._exited:
                    # An async actor's calls: all that are here, started by one
                    # callback on its loop (one wake-up, not one per call).
                    calls = list(self._queue)
                    self._queue.clear()
                    for execute in calls:
                        self._actor_calls[execute.spec.task_id] = None
                    loop = self._actor_loop
                else:
                    calls = None
                    execute = self._queue.popleft()
                    if self._exited:
                        continue  # exit_actor() ran: the raylet ends us and fails the rest
                    if execute.spec.actor_id and not execute.spec.HasField("actor_creation"):
                        self._actor_calls[execute.spec.task_id] = None
                        if self._actor_pool is not None:
                            self._actor_pool.submit(self._execute, execute)
                            continue
                    self._current = execute.spec.task_id
            if calls is not None:
                loop.call_soon_threadsafe(self._start_async_calls, calls)
                continue
            try:
                self._execute(execute)
            except exceptions.TaskCancelledError:
                pass  # a cancel that landed just after the task finished
            finally:
                with self._cv:
                    self._current = None
                    runtime.cancelled_tasks.discard(execute.spec.task_id)

    def _function(self, spec: raylet_pb2.TaskSpec) -> Any:
        if spec.job_id not in self._jobs_seen:  # (a cached function may be another job's too)
            with self._jobs_lock:  # tasks on other threads wait until the path is in place
                if spec.job_id not in self._jobs_seen:
                    self._adopt_job_path(spec.job_id)
        if spec.import_name:  # called by name (a client in another language)
            from ember._private import code_by_name  # (loaded only by workers that meet such a call)

            return code_by_name.load(spec.import_name)  # (imported once: sys.modules keeps it)
        fn = self._functions.get(spec.function_id)
        if fn is None:
            fn = serialization.loads_function(self.client.fetch_function(spec.function_id))
            self._functions[spec.function_id] = fn
        return fn

    def _adopt_job_path(self, job_id: bytes) -> None:
        """Put the job's code search path first on our import path, and the
        driver's after ours, so functions and classes pickled by reference
        import here too."""
        settings = runtime.job_settings(job_id)
        for entry in reversed(settings.code_search_path):
            if entry in sys.path:
                sys.path.remove(entry)
            sys.path.insert(0, entry)
        for entry in settings.driver_sys_path:
            if entry not in sys.path:
                sys.path.append(entry)
        _runtime_env_paths_first()
        self._jobs_seen.add(job_id)

    def _execute(self, execute: raylet_pb2.ExecuteTask) -> None:
        spec = execute.spec
        self._enter_context(spec)
        on_main = threading.get_ident() == self._main_thread
        call = bool(spec.actor_id) and not spec.HasField("actor_creation")
        traced = tracing.spans.start_task(spec) if tracing.enabled else None
        try:
            with self._outcome(spec):
                target = self._target(spec)
                args, kwargs = self._arguments(execute)
                if call and spec.task_id in runtime.cancelled_tasks:
                    raise exceptions.TaskCancelledError("the call was cancelled before it started")
                if on_main and not call:
                    self._interruptible = True
                    try:
                        if self._cancelled == spec.task_id:  # came while it set up
                            self._cancelled = None
                            raise exceptions.TaskCancelledError("the task was cancelled before it started")
                        result = self._invoke(spec, target, args, kwargs)
                    finally:
                        self._interruptible = False
                elif on_main:
                    result = self._invoke(spec, target, args, kwargs)
                else:
                    result = self._invoke_on_thread(spec, target, args, kwargs)
                if call and spec.task_id in runtime.cancelled_tasks:  # flagged while it ran: its value is dropped (Ray)
                    raise exceptions.TaskCancelledError("the call was cancelled while it ran")
                self._send_returns(spec, result)
        finally:
            if traced is not None:
                traced.end()
            if call:
                with self._cv:
                    self._actor_calls.pop(spec.task_id, None)
                    runtime.cancelled_tasks.discard(spec.task_id)
            self._leave_context()

    def _enter_context(self, spec: raylet_pb2.TaskSpec) -> None:
        """The running task's runtime context, on its thread: ids, and what
        it holds (in an actor: what the actor holds)."""
        ctx = runtime.task_context()
        if self._timed:
            ctx.started_at = time.time()
        ctx.task_id, ctx.job_id, ctx.task_name = spec.task_id, spec.job_id, spec.function_name
        ctx.actor_id = self._actor_id or (spec.actor_id or None)
        ctx.actor_handle = self._actor_handle
        ctx.holder = self._actor_spec or spec

    def _leave_context(self) -> None:
        ctx = runtime.task_context()
        ctx.task_id = ctx.job_id = ctx.task_name = ctx.holder = None
        ctx.started_at = 0.0

    @contextlib.contextmanager
    def _outcome(self, spec: raylet_pb2.TaskSpec) -> Iterator[None]:
        """Report how a task ended if it did not end by sending its returns."""
        try:
            yield
        except exceptions.TaskCancelledError as e:
            if not e.args:  # raised into its thread (_raise_in_thread): a class, no message
                e = exceptions.TaskCancelledError("the task was cancelled while it ran")
            self._send_error(spec, e, application=False)
        except ActorExit:
            self._send_exit(spec)
        except Exception as e:
            self._send_failure(spec, e)

    def _send_returns(self, spec: raylet_pb2.TaskSpec, result: Any) -> None:
        returns = self._returns(spec, result)
        self._deliver(spec, raylet_pb2.TaskResult(task_id=spec.task_id, returns=returns))

    def _deliver(self, spec: raylet_pb2.TaskSpec, result: raylet_pb2.TaskResult) -> None:
        """A call's result to whoever sent the call: the raylet or a direct caller."""
        origin = self._direct_origin.pop(result.task_id, None)
        started = runtime.task_context().started_at
        if origin is None:
            if started:  # (for the raylet's latency metrics and task events)
                result.start_time = started
                result.run_time_s = time.time() - started
            self.client.send_result(result)
            return
        origin.reply(result)
        if self._task_events:  # no raylet saw this call: the task event goes with our next batch
            self.client.send_task_event(spec, result, started or time.time())
        if result.actor_exit:  # the raylet ends the actor (and fails what else is in flight)
            self.client.send_result(raylet_pb2.TaskResult(task_id=result.task_id, actor_exit=True))

    def _arguments(self, execute: raylet_pb2.ExecuteTask) -> tuple[tuple[Any, ...], dict[str, Any]]:
        deps = self.client.decode_many(list(execute.args))
        if execute.spec.neutral:
            from ember._private import neutral  # (msgpack: only in workers serving other languages)

            return neutral.unpack_args(execute.spec.args, list(execute.spec.dependencies), deps)
        return task_args.unpack(execute.spec.args, deps)

    def _target(self, spec: raylet_pb2.TaskSpec) -> Any:
        """What the task calls: a function, an actor class, or a bound method."""
        if spec.actor_id and not spec.HasField("actor_creation"):
            if spec.method_name == READY_METHOD:
                return _ready
            return getattr(self._actor, spec.method_name)
        return self._function(spec)

    def _invoke_on_thread(self, spec: raylet_pb2.TaskSpec, target: Any, args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> Any:
        """Run a task off the main thread (an actor's pool thread, or a
        thread of its own: then a cancel interrupts it while its code runs)."""
        task_id = spec.task_id
        with self._cv:
            if task_id in self._thread_cancels:
                raise exceptions.TaskCancelledError("the task was cancelled before it started")
            if task_id in self._on_threads:
                self._on_threads[task_id] = threading.get_ident()
        try:
            return self._invoke(spec, target, args, kwargs)
        finally:
            with self._cv:
                if task_id in self._on_threads:
                    self._on_threads[task_id] = None

    def _invoke(self, spec: raylet_pb2.TaskSpec, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if spec.HasField("actor_creation"):
            self._start_actor(spec, target, args, kwargs)
            return None
        result = target(*args, **kwargs)
        if spec.generator:  # run here, where a cancel interrupts it
            return self._run_generator(spec, result)
        return result

    def _run_generator(self, spec: raylet_pb2.TaskSpec, values: Any) -> "_Yielded":
        """Run a generator task's generator: each value sent as it comes
        (streaming), or kept for the task's end (dynamic)."""
        yielded = _Yielded()
        for value in values:
            self._yield(spec, yielded, value)
        return yielded

    async def _run_async_generator(self, spec: raylet_pb2.TaskSpec, values: Any) -> "_Yielded":
        yielded = _Yielded()
        async for value in values:
            self._yield(spec, yielded, value)
        return yielded

    def _yield(self, spec: raylet_pb2.TaskSpec, yielded: "_Yielded", value: Any) -> None:
        if spec.task_id in runtime.cancelled_tasks:  # an actor's generator call stops between yields
            raise exceptions.TaskCancelledError("the generator was cancelled while it ran")
        encoded = self.client.encode(generators.value_id(spec.task_id, yielded.count), serialization.serialize(value))
        yielded.count += 1
        if spec.generator == raylet_pb2.TaskSpec.STREAMING:
            self.client.send_result(raylet_pb2.TaskResult(task_id=spec.task_id, returns=[encoded], partial=True))
        else:
            yielded.values.append(encoded)

    def _start_actor(self, spec: raylet_pb2.TaskSpec, cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        creation = spec.actor_creation
        if spec.import_name:  # created by name: whether it is async is the class's to say
            creation = raylet_pb2.ActorCreation()
            creation.CopyFrom(spec.actor_creation)
            creation.is_async = _ClassInfo(cls).is_async
        self._actor_id = creation.actor_id
        runtime.task_context().actor_id = creation.actor_id
        self._actor_spec = raylet_pb2.TaskSpec(
            resources=spec.resources, actor_creation=creation,
            placement_group_capture_child_tasks=spec.placement_group_capture_child_tasks)
        self._actor_handle = runtime.task_context().actor_handle = own_handle(cls, spec)
        # asyncio and the thread pool are loaded only by the actors that use
        # them: the zygote (and so every worker) stays ~3 MB smaller.
        if creation.is_async:
            import asyncio

            from ember._private.reentrant_loop import ReentrantLoop

            loop = ReentrantLoop()
            self._actor_slots = asyncio.Semaphore(max(1, creation.max_concurrency))
            threading.Thread(target=loop.run_forever, daemon=True, name="ember-actor-loop").start()
            self._actor_loop = self.client.actor_loop = loop
            if inspect.iscoroutinefunction(getattr(cls, "__init__", None)):
                # cls() would refuse the coroutine __init__ returns: run it
                # on the loop the actor's calls will run on, in this (the
                # creation task's) context.
                actor = cls.__new__(cls)
                asyncio.run_coroutine_threadsafe(
                    _in_context(runtime.task_context(), actor.__init__(*args, **kwargs)), loop).result()
                self._actor = actor
            else:
                self._actor = cls(*args, **kwargs)
        else:
            self._actor = cls(*args, **kwargs)
            if creation.max_concurrency > 1:
                import concurrent.futures

                self._actor_pool = concurrent.futures.ThreadPoolExecutor(
                    creation.max_concurrency, thread_name_prefix="ember-actor")
        info = self.client.info
        if info.session_dir:
            hello = raylet_pb2.DirectHello(worker_id=self._worker_id, node_id=info.node_id, actor_id=creation.actor_id)
            direct_calls.DirectCallServer(direct_calls.socket_address(info.session_dir, creation.actor_id), self._token,
                                          hello, self._enqueue_direct, self._cancel).start()

    # the async actor's loop
    def _start_async_calls(self, calls: list[raylet_pb2.ExecuteTask]) -> None:
        assert self._actor_loop is not None
        started = [(e.spec.task_id, self._actor_loop.create_task(self._execute_async(e))) for e in calls]
        with self._cv:  # what a cancel cancels (none of them has run a step yet)
            for task_id, task in started:
                if task_id in self._actor_calls:
                    self._actor_calls[task_id] = task

    async def _execute_async(self, execute: raylet_pb2.ExecuteTask) -> None:
        """One call of an async actor: up to max_concurrency run at once."""
        import asyncio  # (loaded by _start_actor)

        assert self._actor_slots is not None
        spec = execute.spec
        runtime.coroutine_context.set(runtime.TaskContext())  # (this asyncio task's own)
        cancelled = spec.task_id in runtime.cancelled_tasks  # (added under the lock before any cancel of it)
        traced = tracing.spans.start_task(spec) if tracing.enabled else None  # (in this asyncio task's context)
        try:
            with self._outcome(spec):
                if cancelled:
                    raise exceptions.TaskCancelledError("the call was cancelled before it started")
                try:
                    async with self._actor_slots:
                        self._enter_context(spec)
                        method = self._target(spec)
                        args, kwargs = self._arguments(execute)
                        result = method(*args, **kwargs)
                        if inspect.isasyncgen(result):
                            result = await self._run_async_generator(spec, result)
                        elif spec.generator:
                            result = self._run_generator(spec, result)
                        elif inspect.isawaitable(result):
                            result = await result
                        self._send_returns(spec, result)
                except asyncio.CancelledError:  # ember.cancel, as asyncio cancels (a BaseException)
                    raise exceptions.TaskCancelledError("the call was cancelled while it ran") from None
        finally:
            if traced is not None:
                traced.end()
            with self._cv:
                self._actor_calls.pop(spec.task_id, None)
                runtime.cancelled_tasks.discard(spec.task_id)

    def _send_failure(self, spec: raylet_pb2.TaskSpec, e: Exception) -> None:
        if tracing.enabled:
            tracing.spans.task_failed(e)
        tb = "".join(traceback.format_exception(type(e), e, _user_frames(e.__traceback__)))
        cause = e.cause if isinstance(e, exceptions.TaskError) and e.cause is not None else e
        self._send_error(spec, exceptions.TaskError(spec.function_name, tb, cause, os.getpid(), self._node_id),
                         application=True, message=f"{type(cause).__name__}: {cause}"[:500])

    def _send_exit(self, spec: raylet_pb2.TaskSpec) -> None:
        self._exited = True
        error = exceptions.ActorDiedError(f"the actor exited: {spec.method_name} called ember.actor.exit_actor()")
        self._send_error(spec, error, application=False, actor_exit=True)

    def _returns(self, spec: raylet_pb2.TaskSpec, result: Any) -> list[Any]:
        if spec.generator:
            return self._generator_end(spec, result)
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
        return [self.client.encode(ids.object_id_for(spec.task_id, i + 1), _serialize_return(spec, v, i, n))
                for i, v in enumerate(values)]

    def _generator_end(self, spec: raylet_pb2.TaskSpec, yielded: "_Yielded") -> list[Any]:
        """A generator task's one return (how many it yielded, or a
        DynamicObjectRefGenerator of them), and for a dynamic one, the values."""
        end_id = ids.object_id_for(spec.task_id, 1)
        if spec.generator == raylet_pb2.TaskSpec.STREAMING:
            return [self.client.encode(end_id, serialization.serialize(yielded.count))]
        refs = generators.DynamicObjectRefGenerator([ObjectRef(v.object_id) for v in yielded.values])
        return [self.client.encode(end_id, serialization.serialize(refs)), *yielded.values]

    def _send_error(self, spec: raylet_pb2.TaskSpec, error: BaseException, application: bool, message: str = "",
                    actor_exit: bool = False) -> None:
        if spec.neutral:
            from ember._private import neutral

            data = neutral.serialize_error(error, spec.function_name).to_bytes()
        else:
            data = serialization.serialize_error(error).to_bytes()
        result = raylet_pb2.TaskResult(task_id=spec.task_id, application_error=application, error_message=message,
                                       actor_exit=actor_exit)
        for i in range(spec.num_returns):
            result.returns.add(object_id=ids.object_id_for(spec.task_id, i + 1), data=data, is_error=True)
        self._deliver(spec, result)


async def _in_context(ctx: runtime.TaskContext, call: Any) -> Any:
    runtime.coroutine_context.set(ctx)
    return await call


def _ready() -> bool:
    """An actor's __ray_ready__: it answers once its constructor ran."""
    return True


def _user_frames(tb: Any) -> Any:
    """A task's traceback from the user's first frame on: the worker's own
    frames (_execute, _invoke, ...) are noise to whoever reads it."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__ and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _serialize_return(spec: raylet_pb2.TaskSpec, value: Any, index: int, count: int) -> Any:
    which = "the return value" if count == 1 else f"return value {index + 1}"
    if spec.neutral:  # for a caller in another language
        from ember._private import neutral

        try:
            return neutral.serialize(value)
        except neutral.NotNeutralError as e:
            raise TypeError(f"cannot send {which} of {spec.function_name}() to a caller in another language: "
                            f"{e}") from None
    try:
        return serialization.serialize(value)
    except TypeError:
        raise TypeError(f"cannot send {which} of {spec.function_name}(): "
                        f"{serialization.why_unpicklable(value)}") from None


class _Yielded:
    """What a generator task yielded so far: how many, and for a dynamic
    one the values (sent with its end)."""

    __slots__ = ("count", "values")

    def __init__(self) -> None:
        self.count = 0
        self.values: list[Any] = []


class TaskThreads:
    """Threads for the tasks a worker runs beside its waiting ones: one per
    task at a time, kept a while once idle so recursion reuses them."""

    IDLE_S = 10.0  # an idle thread exits after this long

    def __init__(self, run: Any) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[raylet_pb2.ExecuteTask]] = []
        self.count = 0  # threads alive

    def start(self, execute: raylet_pb2.ExecuteTask) -> None:
        with self._lock:
            if self._idle:
                self._idle.pop().put(execute)
                return
            self.count += 1
        inbox: queue.SimpleQueue[raylet_pb2.ExecuteTask] = queue.SimpleQueue()
        inbox.put(execute)
        threading.Thread(target=self._serve, args=(inbox,), daemon=True, name="ember-task").start()

    def _serve(self, inbox: queue.SimpleQueue[raylet_pb2.ExecuteTask]) -> None:
        while True:
            try:
                execute = inbox.get(timeout=self.IDLE_S)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:  # (else a task was just handed to it)
                        self._idle.remove(inbox)
                        self.count -= 1
                        return
                execute = inbox.get()
            self._run(execute)
            del execute
            with self._lock:
                self._idle.append(inbox)


def _raise_in_thread(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in another thread at its next bytecode (None: drop one
    pending). Signals reach only the main thread; this reaches any."""
    import ctypes

    set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    set_async_exc.argtypes = [ctypes.c_ulong, ctypes.py_object]
    set_async_exc(thread_id, ctypes.py_object() if exc is None else exc)


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
        ctx = runtime.task_context()
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


def _runtime_env_paths_first() -> None:
    """A worker in a runtime environment: its working_dir, then its
    py_modules, first on the import path (as Ray puts them)."""
    paths = [p for p in os.environ.get(runtime_env_support.PATHS_VAR, "").split(os.pathsep) if p]
    for entry in reversed(paths):
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


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
    _runtime_env_paths_first()
    config = Config.load()
    worker = Worker(bytes.fromhex(args.worker_id), args.raylet_address, os.environ.get(auth.TOKEN_ENV), config)
    if config.log_to_driver:
        sys.stdout = TaskOutput(sys.stdout, worker.client, is_stderr=False)
        sys.stderr = TaskOutput(sys.stderr, worker.client, is_stderr=True)
    worker.run()
    tracing.flush()  # (os._exit runs no atexit hook: spans still buffered go now)
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
