"""The one connection of a driver or worker process to its node's raylet.

Everything on the per-task path rides one long-lived session: producers
queue items (submissions, puts, reference changes, subscriptions, results)
on the client's Outbox (client_batches.py), and whoever sends drains it into
one batch — the calling thread itself on the local transport, gRPC's
request thread on a Connect stream (client_transport.py). A reader thread
applies what comes back (ready values, tasks to run). Direct actor calls
are direct_calls.DirectCaller's; store files are read and written by
store_io.StoreIO.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember import exceptions
from ember._private import client_transport, log_printer, metrics_registry, serialization
from ember._private.client_batches import Blocked, DirectResults, ItemKind, ObjectStates, Outbox
from ember._private.client_transport import ConnectionLost, Transport
from ember._private.direct_calls import Cancelled, DirectCaller
from ember._private.metrics_reporter import MetricsReporter
from ember._private.object_ref import ObjectRef
from ember._private.store_io import StoreIO
from ember_common import ids
from ember_common.config import Config

if TYPE_CHECKING:
    from ember._private.ready_watcher import ReadyWatcher
    from ember._private.reentrant_loop import ReentrantLoop

__all__ = ["ConnectionLost", "CoreClient"]

log = logging.getLogger(__name__)

# Module globals: an enum attribute lookup costs three of these on the hot path.
_SUBMIT, _PUT, _REF_ADD, _REF_DEL, _RESULT = (ItemKind.SUBMIT, ItemKind.PUT, ItemKind.REF_ADD, ItemKind.REF_DEL,
                                              ItemKind.RESULT)


class CoreClient:
    """Connects (and blocks until the raylet registered it) on creation.
    `transport` replaces the one `raylet_address` names (unit tests pass an
    in-memory one)."""

    def __init__(
        self,
        raylet_address: str,
        token: str | None,
        register: raylet_pb2.RegisterClient,
        config: Config,
        on_execute: Callable[[list[raylet_pb2.ExecuteTask]], None] | None = None,
        on_cancel: Callable[[list[bytes]], None] | None = None,
        on_reclaim: Callable[[list[bytes]], None] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.config = config
        self.inline_threshold = config.inline_threshold
        self.on_execute = on_execute
        self.on_cancel = on_cancel
        self.on_reclaim = on_reclaim
        self.on_block: Callable[[bool], None] | None = None
        # An async actor's loop: a wait inside one of its calls runs the
        # loop's other calls meanwhile instead of blocking them.
        self.actor_loop: "ReentrantLoop | None" = None
        self.print_logs = True  # print the job's task output (init(log_to_driver=...))
        self.worker_id = register.worker_id  # b"" for a driver
        self._token = token
        self.objects = ObjectStates()
        self._cond = self.objects.cond
        self._values = self.objects.values
        self._dead: str | None = None
        self._told_held = False  # the raylet held our submissions (warned once)
        # The raylet keeps too many small values: write them to the store too.
        self.store_small_values = False
        self._registered = threading.Event()
        self.info = raylet_pb2.ClientRegistered()
        self._exported: set[bytes] = set()
        # kv_get through the raylet (guarded by _cond): readers per key, answers
        self._kv_waiting: dict[tuple[str, bytes], int] = {}
        self._kv_answers: dict[tuple[str, bytes], raylet_pb2.KvEntry] = {}
        self._stubs_lock = threading.Lock()
        self._store_channel: Any = None
        self._gcs_client: Any = None
        self._store_io = StoreIO(lambda: self.store, lambda: self.leases, lambda: self.info.object_store_dir)
        self._direct_results = direct_results = DirectResults()
        # An object nobody here refers to leaves the cache: its pin would
        # keep the store from freeing and reusing its memory (touched pages
        # are what makes the next object of that size fast to write).
        self._outbox = Outbox(self.objects, direct_results, self._store_io.reader_maps.drop)
        self._out = self._outbox.queue
        self._send_lock = threading.Lock()
        self._closed = False
        # ember.util.metrics values to the raylet (a thread only once a metric is declared).
        self._metrics = MetricsReporter(metrics_registry.REGISTRY,
                                        lambda report: self._enqueue((ItemKind.METRICS, report)),
                                        config.metrics_report_interval_s)
        self._transport = transport or client_transport.connect(raylet_address, token)
        # The local transport (our threads send; direct calls and KV reads
        # through the raylet are possible), or None on a Connect stream.
        self._local: Transport | None = None if self._transport.pulls else self._transport
        self._direct = DirectCaller(self._out.put, self._flush, self.objects, direct_results, self, self.info,
                                    token or "")
        incoming = self._transport.open(raylet_pb2.ClientBatch(register=register), self._next_batch)
        if self._local is not None:
            threading.Thread(target=self._flush_loop, name="ember-flusher", daemon=True).start()
        self._reader = threading.Thread(target=self._read_loop, args=(incoming,), name="ember-reader", daemon=True)
        self._reader.start()
        if not self._registered.wait(30) or self._dead:
            self.close()
            raise ConnectionLost(f"could not connect to the raylet at {raylet_address}: {self._dead or 'timed out'}")
        self.node_id = self.info.node_id
        if config.metrics_enabled:
            self._metrics.start()

    # gRPC is imported on first use: a worker that only runs small tasks
    # talks to nothing but its raylet (over the local socket), and stays
    # ~8 MB smaller and faster to start without it.
    @functools.cached_property
    def store(self) -> Any:
        """The node's object store (large puts)."""
        from ember_common import rpc
        from ember.v1 import objectstore_pb2_grpc

        with self._stubs_lock:
            self._store_channel = self._store_channel or rpc.channel(self.info.object_store_socket, self._token)
        return objectstore_pb2_grpc.ObjectStoreStub(self._store_channel)

    @functools.cached_property
    def leases(self) -> Any:
        """The object store's ObjectLeases service (pinning what we read)."""
        from ember.v1 import object_leases_pb2_grpc

        self.store  # (makes the channel)
        return object_leases_pb2_grpc.ObjectLeasesStub(self._store_channel)

    @functools.cached_property
    def gcs(self) -> Any:
        """The GCS leader (function export, names, job metadata), followed
        across replicas and failovers."""
        from ember_common.gcs_client import GcsClient

        with self._stubs_lock:
            self._gcs_client = self._gcs_client or GcsClient(self.info.gcs_address, self._token)
        return self._gcs_client

    # ---- the stream ----------------------------------------------------

    def _next_batch(self) -> raylet_pb2.ClientBatch | None:
        """A pulling transport's next batch (it blocks until there is one);
        None once the client is closing."""
        outbox = self._outbox
        batch, closing = outbox.drain(None if outbox.can_send_kept() else self._out.get())
        return None if closing else batch

    def _enqueue(self, item: Any) -> None:
        self._out.put(item)
        if self._local is not None:
            self._flush()

    def _flush(self) -> None:
        """Local transport: send what is queued from the calling thread. If
        another thread is sending, it picks our items up on its next loop."""
        transport, outbox = self._transport, self._outbox
        while not self._out.empty() or outbox.can_send_kept():
            if not self._send_lock.acquire(blocking=False):
                return
            try:
                try:
                    item = self._out.get_nowait()
                except queue.Empty:
                    item = None
                batch, closing = outbox.drain(item)
                if batch.ByteSize():
                    transport.send(batch)
                if closing:
                    transport.shutdown_write()
                    return
            except OSError:
                return  # the reader reports the broken connection
            finally:
                self._send_lock.release()

    def _flush_loop(self) -> None:
        # Reference drops come from __del__, which must not send: flush them
        # here when no other traffic carries them. Every 20 ms while there
        # is something to carry; an idle process looks less and less often
        # (up to every 0.32 s): a thousand idle actors waking 50 times a
        # second took more than half of a 2-core machine.
        pause = _FLUSH_EVERY_S
        while self._dead is None and not self._closed:
            time.sleep(pause)
            if not self._out.empty():
                self._flush()
                pause = _FLUSH_EVERY_S
            else:
                pause = min(pause * 2, _FLUSH_IDLE_MAX_S)

    def _read_loop(self, incoming: Iterator[raylet_pb2.RayletBatch]) -> None:
        try:
            for batch in incoming:
                # Which fields are set, asked once (a look at an empty
                # repeated field builds a wrapper; most batches set one).
                fields = {fd.name for fd, _ in batch.ListFields()}
                if "registered" in fields:
                    self.info.CopyFrom(batch.registered)
                    self._registered.set()
                if "ready" in fields:
                    self._direct.raylet_calls_done(batch.ready)
                    self.objects.ready(batch.ready, self.info.node_id)
                    if self.objects.unwanted:
                        self._release_unwanted()
                if "execute" in fields and self.on_execute is not None:
                    self.on_execute(list(batch.execute))
                if "cancel" in fields and self.on_cancel is not None:
                    self.on_cancel(list(batch.cancel))
                if "reclaim" in fields and self.on_reclaim is not None:
                    self.on_reclaim(list(batch.reclaim))
                if "kv" in fields:
                    with self._cond:
                        for entry in batch.kv:
                            if (entry.namespace, entry.key) in self._kv_waiting:
                                self._kv_answers[(entry.namespace, entry.key)] = entry
                        self._cond.notify_all()
                if "backpressure" in fields:
                    self._backpressure(batch.backpressure)
                if "warnings" in fields:
                    log_printer.print_warnings(batch.warnings)
                if "logs" in fields and self.print_logs:
                    log_printer.print_logs(batch.logs)
            self._dead = "the raylet closed the connection"
        except (OSError, ConnectionLost) as e:
            self._dead = str(e)
        except Exception as e:
            if callable(getattr(e, "code", None)) and callable(getattr(e, "details", None)):
                self._dead = f"{e.code()}: {e.details()}"  # grpc.RpcError: the Connect stream broke
            else:  # a bug in a callback: fail loudly, not silently
                log.exception("reader failed")
                self._dead = f"reader failed: {e!r}"
        finally:
            self._registered.set()
            with self._cond:
                self._cond.notify_all()
            if self.on_execute is not None:
                self.on_execute([])  # wakes a worker so it notices

    @property
    def alive(self) -> bool:
        return self._dead is None

    def _check_alive(self) -> None:
        if self._dead is not None:
            raise ConnectionLost(f"lost the connection to the raylet ({self._dead})")

    def close(self) -> None:
        self._metrics.close()  # (its last report goes before the session ends)
        self._closed = True
        self._direct.close()
        self._enqueue((ItemKind.CLOSE, None))
        try:
            self._reader.join(timeout=5)
        finally:
            self._transport.close()
            self._store_io.close()
            for channel in (self._store_channel, self._gcs_client):
                if channel is not None:
                    channel.close()

    # ---- introspection -------------------------------------------------

    @property
    def transport(self) -> Transport:
        """What carries this session: the local socket or a gRPC stream."""
        return self._transport

    def direct_worker(self, actor_id: bytes) -> bytes | None:
        """The worker this process's calls to the actor go straight to; None
        while they go through the raylet."""
        return self._direct.direct_worker(actor_id)

    def kept_objects(self) -> set[bytes]:
        """Ids of the objects this process keeps a value of, or a direct
        call's result the raylet does not know: what `ember memory` (the
        raylets' view) cannot show."""
        with self._direct_results.lock:
            direct = set(self._direct_results.states)
        with self._cond:
            return direct | self._values.keys()

    # ---- references ----------------------------------------------------

    def ref_created(self, object_id: bytes) -> None:
        self._out.put((_REF_ADD, object_id))

    def ref_deleted(self, object_id: bytes) -> None:
        self._out.put((_REF_DEL, object_id))

    # ---- streaming generators ------------------------------------------

    def open_stream(self, task_id: bytes) -> None:
        """A streaming generator task about to be submitted: keep the values
        it yields as they come (before any ref to them exists here)."""
        with self._cond:
            self.objects.streams[task_id] = 1

    def wait_stream(self, value_id: bytes, end_id: bytes, timeout: float | None) -> set[bytes]:
        """Block until a stream's next value or its end (its one return) is
        here, or the timeout passes; the ids that are."""
        with self._cond:  # it comes unasked: no subscription (the raylet knows no such object yet)
            if value_id not in self._values and value_id not in self.objects.remote:
                self.objects.subscribed.add(value_id)
        return self.wait_values([value_id, end_id], 1, timeout, fetch_local=False)

    def close_stream(self, task_id: bytes, next_index: int, finished: bool) -> None:
        """The generator is done with (read to its end, or dropped): values
        it has not handed out are released, and so are those still to come."""
        with self._cond:
            last = self.objects.streams.pop(task_id, 0)
            if not finished:
                self.objects.dropped_streams.add(task_id)
            subscribed = self.objects.subscribed
            subscribed.discard(ids.object_id_for(task_id, next_index))
            unread = [ids.object_id_for(task_id, i) for i in range(next_index, last + 1)]
            self.objects.unwanted.extend(unread)
        self._release_unwanted()

    def _release_unwanted(self) -> None:
        with self._cond:
            unwanted, self.objects.unwanted = self.objects.unwanted, []
        if unwanted:
            self._out.put((ItemKind.RELEASE, unwanted))

    # ---- submission ----------------------------------------------------

    def submit(self, spec: raylet_pb2.TaskSpec) -> None:
        self._check_alive()
        self._enqueue((_SUBMIT, spec))

    def _backpressure(self, asked: raylet_pb2.Backpressure) -> None:
        """What the raylet asks (services/raylet/admission.py). Held, our
        submissions past the allowance wait in the outbox: a raised one
        sends them (the WAKE item reaches a pulling transport too)."""
        self.store_small_values = asked.store_small_values
        self._outbox.submit_allowance = asked.submit_allowance if asked.hold_submissions else None
        if asked.hold_submissions and not self._told_held:
            self._told_held = True  # (nothing waits: an owner-side queue, as Ray's, is not a warning)
            log.info("the raylet keeps %s tasks, its max_queued_tasks of %s: further tasks wait in this "
                     "driver and go as the raylet has room (EMBER_MAX_QUEUED_TASKS sets the limit)",
                     f"{asked.queued_tasks:,}", f"{asked.max_queued_tasks:,}")
        self._enqueue((ItemKind.WAKE, None))

    def submit_actor_call(self, spec: raylet_pb2.TaskSpec, keep: Any, direct: bool) -> ObjectRef | None:
        """Send an actor call: straight to the actor's worker if `direct`
        (one return, no ObjectRef in its arguments) and the actor listens on
        this node, else through the raylet. One caller's calls to an actor
        keep their order: none goes direct while one is on its way through
        the raylet, and none goes through the raylet while direct ones are
        in flight (it waits for them). `keep` lives until the result is in.
        Returns the ref to the first return: made here, before any answer
        can come back and drop our own refs to it."""
        self._check_alive()
        if self._local is None or not self.info.session_dir:
            self._enqueue((_SUBMIT, spec))
            return ObjectRef(ids.object_id_for(spec.task_id, 1), self) if spec.num_returns else None
        return self._direct.submit(spec, keep, direct)

    def send_result(self, result: raylet_pb2.TaskResult) -> None:
        self._enqueue((_RESULT, result))

    def send_blocked(self, blocked: bool, returned: list[bytes], task_id: bytes = b"") -> None:
        """This worker's main task (or `task_id`, on a thread of its own)
        waits in get/wait, or is back."""
        self._enqueue((ItemKind.BLOCKED, Blocked(blocked, returned, task_id)))

    def send_reclaimed(self, task_ids: list[bytes]) -> None:
        """This worker gives back tasks the raylet asked back (not started)."""
        self._enqueue((ItemKind.RECLAIMED, task_ids))

    def send_task_event(self, spec: raylet_pb2.TaskSpec, result: raylet_pb2.TaskResult, started: float) -> None:
        """Queued only: a direct call this worker ran, for its raylet's task events."""
        self._out.put((ItemKind.TASK_EVENT, (spec, result, started, time.time())))

    def send_logs(self, lines: raylet_pb2.LogLines) -> None:
        """Queued only: the next batch (or the flusher, within ~20 ms) carries it."""
        self._out.put((ItemKind.LOGS, lines))

    def cancel(self, task_id: bytes, force: bool, recursive: bool) -> None:
        how = self._direct.cancel(task_id)
        if how is Cancelled.WHEN_SUBMITTED:
            return
        if how is Cancelled.SENT_TO_ACTOR:  # the raylet never saw the call, only the tasks it submitted
            if recursive:
                self._enqueue((ItemKind.CANCEL,
                               raylet_pb2.CancelTask(task_id=task_id, recursive=True, children_only=True)))
            return
        self._enqueue((ItemKind.CANCEL, raylet_pb2.CancelTask(task_id=task_id, force=force, recursive=recursive)))

    def kill_actor(self, actor_id: bytes, no_restart: bool) -> None:
        self._check_alive()
        self._direct.killing(actor_id)
        self._enqueue((ItemKind.KILL, raylet_pb2.KillActor(actor_id=actor_id, no_restart=no_restart)))

    def export_function(self, function_id: bytes, pickled: bytes) -> None:
        if function_id in self._exported:
            return
        self.gcs.KvPut(gcs_pb2.KvPutRequest(namespace="fn", key=function_id, value=pickled, overwrite=False), timeout=60)
        self._exported.add(function_id)

    def fetch_function(self, function_id: bytes) -> bytes:
        found, value = self.kv_get("fn", function_id)
        if not found:
            raise exceptions.EmberError(f"function {function_id.hex()} is not in the function table")
        return value

    def kv_get(self, namespace: str, key: bytes, timeout: float = 60) -> tuple[bool, bytes]:
        """Read the GCS KV: through the raylet on the local transport (it
        caches the function table), else from the GCS directly."""
        if self._local is None:
            reply = self.gcs.KvGet(gcs_pb2.KvGetRequest(namespace=namespace, key=key), timeout=timeout)
            return reply.found, reply.value
        k = (namespace, key)
        with self._cond:
            waiting = self._kv_waiting.get(k, 0)
            self._kv_waiting[k] = waiting + 1
        if not waiting:  # the first reader asks; the others share its answer
            self._enqueue((ItemKind.KV_GET, raylet_pb2.KvKey(namespace=namespace, key=key)))
        deadline = time.monotonic() + timeout
        with self._cond:
            try:
                while (entry := self._kv_answers.get(k)) is None:
                    self._check_alive()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise exceptions.GetTimeoutError(f"no answer from the raylet for {namespace}/{key!r}")
                    self._cond.wait(min(remaining, 1.0))
            finally:
                self._kv_waiting[k] -= 1
                if not self._kv_waiting[k]:
                    del self._kv_waiting[k]
                    self._kv_answers.pop(k, None)
        assert entry is not None
        if entry.error:
            raise exceptions.EmberError(f"reading {namespace}/{key!r} from the GCS failed: {entry.error}")
        return entry.found, entry.value

    # ---- objects -------------------------------------------------------

    def encode(self, object_id: bytes, so: serialization.SerializedObject, is_error: bool = False) -> common_pb2.ObjectValue:
        """An ObjectValue for `so`: inline if small, else written to the store."""
        value = common_pb2.ObjectValue(object_id=object_id, is_error=is_error, nested_ids=so.nested_ids)
        if so.total_size < self.inline_threshold and not self.store_small_values:
            value.data = so.to_bytes()
        else:
            self._store_io.write(object_id, so)
            value.stored_size = so.total_size
        return value

    def put_value(self, value: common_pb2.ObjectValue) -> None:
        """Hand a created object to the raylet (the owner)."""
        self._check_alive()
        with self._cond:  # our own put: get needs no round trip
            self._values[value.object_id] = value
            if self.objects.watchers:
                self.objects.arrived(value.object_id)
        self._enqueue((_PUT, value))

    def decode(self, value: common_pb2.ObjectValue, data: Any = None) -> Any:
        """The Python value of a ready object (raises it if it is an error);
        `data` is its bytes if mapped already (decode_many)."""
        if data is None:
            if value.WhichOneof("location") == "stored_size":
                data = self._store_io.map_stored(value.object_id)
            else:
                data = value.data
        result, is_error = serialization.deserialize(data)
        if is_error:
            if isinstance(result, exceptions.TaskError):
                raise result.as_instanceof_cause()
            raise result
        return result

    def decode_many(self, values: list[common_pb2.ObjectValue]) -> list[Any]:
        """The Python values of ready objects, those in the store mapped in
        one call; the first error among them is raised."""
        stored = [v.object_id for v in values if v.WhichOneof("location") == "stored_size"]
        views = self._store_io.map_many(stored) if stored else {}
        return [self.decode(v, views.get(v.object_id) if stored else None) for v in values]

    def wait_values(self, object_ids: list[bytes], num: int, timeout: float | None,
                    fetch_local: bool = True, *, interrupt: Callable[[], bool] | None = None,
                    report_blocked: bool = True) -> set[bytes]:
        """Block until `num` of the objects are ready (readable on this node,
        unless not `fetch_local`), the timeout passes or `interrupt()` (asked
        under the lock, after each wake-up) is true; returns the ids that are
        ready. A task's thread waiting tells the raylet (`on_block`), unless
        not `report_blocked` (a thread of the SDK's own)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = self._values
        objects = self.objects
        remote = objects.remote
        # Many ids: the ones still missing are a set the reader shrinks as
        # values arrive (ObjectStates.watchers), so a wake-up costs O(1), not
        # a look at every id (4,000 ids x a wake per incoming batch).
        watched: set[bytes] | None = None
        with self._cond:
            ready = _present(object_ids, values)
            if not fetch_local and remote:
                ready |= remote.keys() & object_ids
            if len(ready) >= num:
                return ready
            subscribe = [i for i in object_ids if i not in values and i not in objects.subscribed and i not in remote]
            if subscribe:
                objects.subscribed.update(subscribe)
                self._out.put((ItemKind.SUBSCRIBE, subscribe))
            fetch = self._to_fetch(object_ids) if remote and fetch_local else None
            if fetch_local and len(object_ids) >= _WATCH_AT:
                wanted = set(object_ids)
                watched = wanted - ready
                objects.watchers.append(watched)
        blocked = False
        loop = self.actor_loop
        if loop is not None and not loop.can_run_once():
            loop = None
        next_check = 0.0
        try:
            if (subscribe or fetch) and self._local is not None:
                self._flush()
            with self._cond:
                if loop is not None:
                    self._cond.wakers.append(loop.wake)
                while True:
                    checked = time.monotonic()
                    if checked < next_check and (deadline is None or checked < deadline):
                        # (values keep coming in meanwhile: the lock is free)
                        self._cond.wait(next_check - checked if deadline is None
                                        else min(next_check, deadline) - checked)
                        continue
                    if watched is not None:
                        ready = wanted - watched if len(wanted) - len(watched) >= num else _UNCOUNTED
                    else:
                        ready = _present(object_ids, values)
                        if not fetch_local and remote:
                            ready |= remote.keys() & object_ids
                    if len(ready) >= num:
                        return ready
                    if remote and fetch_local and self._to_fetch(object_ids) and self._local is not None:
                        self._cond.release()
                        try:
                            self._flush()
                        finally:
                            self._cond.acquire()
                    # A check of many refs (~60 ms for 1,000,000) holds the
                    # lock the reader needs to hand values in: check again
                    # after at least ten times as long, not on every batch.
                    cost = time.monotonic() - checked
                    next_check = checked + 10 * cost if cost > 0.001 else 0.0
                    if self._dead is not None:
                        raise ConnectionLost(f"lost the connection to the raylet ({self._dead})")
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return ready if watched is None else wanted - watched
                    if interrupt is not None and interrupt():
                        return ready if watched is None else wanted - watched
                    if not blocked and report_blocked and self.on_block is not None:
                        blocked = True
                        self._cond.release()
                        try:
                            self.on_block(True)
                        finally:
                            self._cond.acquire()
                        continue
                    # Wake up now and then: a cancelled task is interrupted here.
                    if loop is None:
                        self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
                        continue
                    self._cond.release()
                    try:
                        loop.run_once(0.1 if remaining is None else min(remaining, 0.1))
                    finally:
                        self._cond.acquire()
        finally:
            if loop is not None or watched is not None:
                with self._cond:
                    if loop is not None and loop.wake in self._cond.wakers:  # (not if the flush failed)
                        self._cond.wakers.remove(loop.wake)
                    if watched is not None:
                        objects.watchers.remove(watched)
            if blocked and self.on_block is not None:
                self.on_block(False)

    def _to_fetch(self, object_ids: list[bytes]) -> list[bytes]:
        """Queue a fetch of those stored on other nodes that are not being
        fetched yet (the caller holds _cond and flushes)."""
        fetch = [i for i in object_ids if i in self.objects.remote and i not in self.objects.fetching]
        if fetch:
            self.objects.fetching.update(fetch)
            self._out.put((ItemKind.FETCH, fetch))
        return fetch

    def wake_waiters(self) -> None:
        """Wake the threads in wait_values (to ask their `interrupt`)."""
        with self._cond:
            self._cond.notify_all()

    @functools.cached_property
    def ready_watcher(self) -> "ReadyWatcher":
        """Callbacks run when objects become ready (futures, awaits)."""
        from ember._private.ready_watcher import ReadyWatcher  # (concurrent.futures: not in every worker)

        return ReadyWatcher(self)

    def get_value(self, object_id: bytes) -> common_pb2.ObjectValue:
        with self._cond:
            return self._values[object_id]


_FLUSH_EVERY_S = 0.02  # the flusher's pause while items come (see _flush_loop)
_FLUSH_IDLE_MAX_S = 0.32
_WATCH_AT = 64  # ids in a wait from which the missing ones are watched, not looked up
_UNCOUNTED: set[bytes] = set()  # (not enough ready yet: the set is made on return)


def _present(object_ids: list[bytes], values: dict[bytes, Any]) -> set[bytes]:
    """The ids that are keys of `values`, in C: a set of the ids less those
    missing (a set's difference with a dict looks each one up directly),
    about a third faster than intersecting the dict's keys with the list
    when most are there (wait on refs that are ready)."""
    wanted = set(object_ids)
    missing = wanted.difference(values)
    return wanted - missing if missing else wanted

