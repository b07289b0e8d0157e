"""The one connection of a driver or worker process to its node's raylet.

Everything on the per-task path rides one long-lived session: producers
queue items (submissions, puts, reference changes, subscriptions, results)
and whoever sends drains the queue into one batch — the calling thread
itself on the local transport, gRPC's request thread on a Connect stream. A
reader thread applies what comes back (ready values, tasks to run).
Reference counts are kept by the draining code alone, so ObjectRef.__del__
only enqueues.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import mmap
import os
import queue
import socket
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterator

from ember.v1 import common_pb2, gcs_pb2, objectstore_pb2, raylet_pb2

from ember import exceptions
from ember_common import ids
from ember._private import direct_calls, serialization
from ember_common.config import Config
from ember_common.frames import read_frames, send_frame
from ember._private.object_ref import ObjectRef

log = logging.getLogger(__name__)

(_SUBMIT, _PUT, _REF_ADD, _REF_DEL, _RESULT, _SUBSCRIBE, _CANCEL, _BLOCKED, _LOGS, _KILL, _KV_GET, _CLOSE, _FETCH,
 _RESERVE, _RESUBMIT, _PUT_DIRECT) = range(16)
# Results of direct actor calls not (yet) known to the raylet: running,
# arrived (the value is ours alone), or promised to the raylet (passed on
# while running: put when it arrives).
_DIRECT_RUNNING, _DIRECT_HERE, _DIRECT_PROMISED = range(3)
_MAX_ITEMS_PER_BATCH = 4096


class ConnectionLost(exceptions.EmberError):
    """The stream to the raylet broke (the raylet or node died)."""


class CoreClient:
    def __init__(
        self,
        raylet_address: str,
        token: str | None,
        register: raylet_pb2.RegisterClient,
        config: Config,
        on_execute: Callable[[list[raylet_pb2.ExecuteTask]], None] | None = None,
        on_cancel: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        _raise_fd_limit()  # each zero-copy mapping of a stored object holds an fd
        self.config = config
        self.inline_threshold = config.inline_threshold
        self.on_execute = on_execute
        self.on_cancel = on_cancel
        self.on_block: Callable[[bool], None] | None = None
        self.print_logs = True  # print the job's task output (init(log_to_driver=...))
        self._token = token
        self._out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._values: dict[bytes, common_pb2.ObjectValue] = {}
        self._live: set[bytes] = set()  # ids this process refers to (guarded by _cond)
        self._subscribed: set[bytes] = set()
        # Stored values on another node's store (guarded by _cond): not
        # readable here until the raylet fetched them (wait_values asks).
        self._remote: dict[bytes, common_pb2.ObjectValue] = {}
        self._fetching: set[bytes] = set()
        self._dead: str | None = None
        self._registered = threading.Event()
        self.info = raylet_pb2.ClientRegistered()
        self._exported: set[bytes] = set()
        # kv_get through the raylet (guarded by _cond): readers per key, answers
        self._kv_waiting: dict[tuple[str, bytes], int] = {}
        self._kv_answers: dict[tuple[str, bytes], raylet_pb2.KvEntry] = {}
        self._writer_maps = _WriterMaps()
        self._reader_maps = _ReaderMaps()
        self._channel: Any = None  # grpc.Channel of the Connect transport
        self._call: Any = None
        self._local: _LocalSocket | None = None
        self._counts: dict[bytes, int] = {}
        self._held_remote: set[bytes] = set()  # ids the raylet counts us as holding
        self._send_lock = threading.Lock()
        self._closed = False
        # Direct actor calls (local transport only), guarded by _direct_lock.
        self._direct_lock = threading.Lock()
        self._channels: dict[bytes, direct_calls.ActorChannel] = {}
        self._direct_local: dict[bytes, int] = {}  # object id -> _DIRECT_*
        self._raylet_call_returns: dict[bytes, tuple[direct_calls.ActorChannel, ObjectRef]] = {}
        if raylet_address.startswith("local:"):
            self._local = _LocalSocket(raylet_address.removeprefix("local:"), token or "")
            self._local.send(raylet_pb2.ClientBatch(register=register))
            incoming: Iterator[raylet_pb2.RayletBatch] = self._local.incoming()
            threading.Thread(target=self._flush_loop, name="ember-flusher", daemon=True).start()
        else:
            from ember_common import rpc
            from ember.v1 import raylet_pb2_grpc

            self._channel = rpc.channel(raylet_address, token)
            stub = raylet_pb2_grpc.RayletStub(self._channel)
            self._call = incoming = stub.Connect(self._requests(register), wait_for_ready=True)
        self._reader = threading.Thread(target=self._read_loop, args=(incoming,), name="ember-reader", daemon=True)
        self._reader.start()
        if not self._registered.wait(30) or self._dead:
            self.close()
            raise ConnectionLost(f"could not connect to the raylet at {raylet_address}: {self._dead or 'timed out'}")
        self.node_id = self.info.node_id
        self._stubs_lock = threading.Lock()
        self._store_channel: Any = None
        self._gcs_client: Any = None

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
    def gcs(self) -> Any:
        """The GCS leader (function export, names, job metadata), followed
        across replicas and failovers."""
        from ember_common.gcs_client import GcsClient

        with self._stubs_lock:
            self._gcs_client = self._gcs_client or GcsClient(self.info.gcs_address, self._token)
        return self._gcs_client

    # ---- the stream ----------------------------------------------------

    def _requests(self, register: raylet_pb2.RegisterClient) -> Iterator[raylet_pb2.ClientBatch]:
        """gRPC transport: gRPC's own thread pulls batches from here."""
        yield raylet_pb2.ClientBatch(register=register)
        while True:
            batch = self._drain(self._out.get())
            if batch is None:
                return
            if batch.ByteSize():
                yield batch

    def _drain(self, item: Any) -> raylet_pb2.ClientBatch | None:
        """Turn `item` and whatever else is queued into one batch (None once
        the client is closing). Callers hold the send lock or are the only
        sender: reference counts are kept here, single-threaded."""
        counts, held_remote = self._counts, self._held_remote
        cond, live, values = self._cond, self._live, self._values
        batch = raylet_pb2.ClientBatch()
        delta: dict[bytes, int] = {}
        n = 0
        closing = False
        while True:
            kind, payload = item
            if kind == _REF_ADD:
                c = counts.get(payload, 0)
                counts[payload] = c + 1
                if c == 0:
                    if payload not in held_remote and payload not in self._direct_local:
                        held_remote.add(payload)
                        delta[payload] = delta.get(payload, 0) + 1
                    with cond:
                        live.add(payload)
            elif kind == _REF_DEL:
                c = counts.get(payload, 0) - 1
                if c > 0:
                    counts[payload] = c
                else:
                    counts.pop(payload, None)
                    if payload in held_remote:
                        held_remote.discard(payload)
                        delta[payload] = delta.get(payload, 0) - 1
                    elif payload in self._direct_local:
                        with self._direct_lock:
                            self._direct_local.pop(payload, None)
                    with cond:
                        live.discard(payload)
                        values.pop(payload, None)
                        self._subscribed.discard(payload)
                        self._remote.pop(payload, None)
                        self._fetching.discard(payload)
                    # Its cached mapping's flock would keep the store from
                    # recycling the file (its pages are what makes the next
                    # object of that size fast to write) while nobody reads it.
                    self._reader_maps.drop(payload)
            elif kind in (_SUBMIT, _RESERVE, _RESUBMIT):
                returns = [ids.object_id_for(payload.task_id, i + 1) for i in range(payload.num_returns)]
                if kind != _RESERVE:
                    self._publish_direct((*payload.dependencies, *payload.nested_refs), batch)
                    batch.submit.append(payload)
                held_remote.update(returns)
                with cond:
                    live.update(returns)
                    # The raylet pushes a task's returns to its submitter
                    # unasked: a get need not subscribe (one message less).
                    self._subscribed.update(returns)
                if kind == _RESUBMIT:
                    # Submitted late (it waited for direct calls, or its
                    # direct connection broke): refs to its returns may be
                    # gone already.
                    for object_id in returns:
                        if object_id not in counts:
                            held_remote.discard(object_id)
                            batch.remove_refs.append(object_id)
            elif kind == _PUT:
                self._publish_direct(payload.nested_ids, batch)
                batch.puts.append(payload)
                held_remote.add(payload.object_id)
                with cond:
                    live.add(payload.object_id)
            elif kind == _PUT_DIRECT:
                # A direct call's result for the raylet: passed on, or stored.
                batch.puts.append(payload)
                if payload.object_id in counts:
                    held_remote.add(payload.object_id)
                else:
                    held_remote.discard(payload.object_id)
                    batch.remove_refs.append(payload.object_id)
            elif kind == _RESULT:
                for value in payload.returns:
                    self._publish_direct(value.nested_ids, batch)
                batch.results.append(payload)
            elif kind == _SUBSCRIBE:
                batch.subscribe.extend(payload)
            elif kind == _FETCH:
                batch.fetch.extend(payload)
            elif kind == _CANCEL:
                batch.cancel.append(payload)
            elif kind == _BLOCKED:
                blocked, returned = payload
                batch.blocked.blocked = blocked
                batch.blocked.returned_task_ids.extend(returned)
            elif kind == _LOGS:
                batch.logs.append(payload)
            elif kind == _KILL:
                # The raylet applies a batch's kills after its submissions:
                # a call made after the kill must go in a later batch, or it
                # would run on (and die with) the killed worker.
                batch.kill_actors.append(payload)
                break
            elif kind == _KV_GET:
                batch.kv_get.append(payload)
            elif kind == _CLOSE:
                closing = True
                break
            n += 1
            if n >= _MAX_ITEMS_PER_BATCH:
                break
            try:
                item = self._out.get_nowait()
            except queue.Empty:
                break
        for object_id, d in delta.items():
            if d > 0:
                batch.add_refs.append(object_id)
            elif d < 0:
                batch.remove_refs.append(object_id)
        if closing:
            if batch.ByteSize() and self._local is not None:
                self._local.send(batch)
            return None
        return batch

    def _publish_direct(self, object_ids: Any, batch: raylet_pb2.ClientBatch) -> None:
        """Results of direct calls among `object_ids` are being passed on:
        the raylet must know them first (put, or promised while running)."""
        direct_local = self._direct_local
        for object_id in object_ids:
            if object_id not in direct_local:
                continue
            with self._direct_lock:
                state = direct_local.get(object_id)
                if state == _DIRECT_HERE:
                    del direct_local[object_id]
                    with self._cond:
                        value = self._values.get(object_id)
                    if value is None:
                        continue
                    batch.puts.append(value)
                elif state == _DIRECT_RUNNING:
                    direct_local[object_id] = _DIRECT_PROMISED
                    batch.promises.append(object_id)
                else:
                    continue
            self._held_remote.add(object_id)

    def _enqueue(self, item: Any) -> None:
        self._out.put(item)
        if self._local is not None:
            self._flush()

    def _flush(self) -> None:
        """Local transport: send what is queued from the calling thread. If
        another thread is sending, it picks our items up on its next loop."""
        local = self._local
        assert local is not None
        while not self._out.empty():
            if not self._send_lock.acquire(blocking=False):
                return
            try:
                try:
                    item = self._out.get_nowait()
                except queue.Empty:
                    continue
                batch = self._drain(item)
                if batch is None:
                    local.shutdown_write()
                    return
                if batch.ByteSize():
                    local.send(batch)
            except OSError:
                return  # the reader reports the broken connection
            finally:
                self._send_lock.release()

    def _flush_loop(self) -> None:
        # Reference drops come from __del__, which must not send: flush them
        # here when no other traffic carries them.
        while self._dead is None and not self._closed:
            time.sleep(0.02)
            if not self._out.empty():
                self._flush()

    def _read_loop(self, incoming: Iterator[raylet_pb2.RayletBatch]) -> None:
        try:
            for batch in incoming:
                if batch.HasField("registered"):
                    self.info.CopyFrom(batch.registered)
                    self._registered.set()
                if batch.ready:
                    node_id = self.info.node_id
                    if self._raylet_call_returns:
                        self._raylet_calls_done(batch.ready)
                    with self._cond:
                        for value in batch.ready:
                            oid = value.object_id
                            self._subscribed.discard(oid)
                            if oid in self._live:
                                if value.node_id and value.node_id != node_id:
                                    self._remote[oid] = value
                                    self._fetching.discard(oid)  # (a rebuilt value): fetch it anew
                                else:
                                    self._values[oid] = value
                                    self._remote.pop(oid, None)
                                    self._fetching.discard(oid)
                        self._cond.notify_all()
                if batch.execute and self.on_execute is not None:
                    self.on_execute(list(batch.execute))
                if batch.cancel and self.on_cancel is not None:
                    self.on_cancel(list(batch.cancel))
                if batch.kv:
                    with self._cond:
                        for entry in batch.kv:
                            if (entry.namespace, entry.key) in self._kv_waiting:
                                self._kv_answers[(entry.namespace, entry.key)] = entry
                        self._cond.notify_all()
                for warning in batch.warnings:
                    print(f"ember: warning: {warning}", file=sys.stderr)
                for lines in batch.logs if self.print_logs else ():
                    out = sys.stderr if lines.is_stderr else sys.stdout
                    prefix = f"({lines.task_name} pid={lines.pid}) "
                    out.write("".join(prefix + line + "\n" for line in lines.lines))
                    out.flush()
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

    def _raylet_calls_done(self, ready: Any) -> None:
        """Actor calls that went through the raylet and are back: once none
        is left, the next call to that actor may go direct."""
        with self._direct_lock:
            for value in ready:
                entry = self._raylet_call_returns.pop(value.object_id, None)
                if entry is not None:
                    channel = entry[0]
                    channel.raylet_calls -= 1
                    channel.retry_at = 0.0  # the actor answered: it may be listening now
                    if value.object_id == channel.kill_barrier:
                        channel.killed, channel.kill_barrier = False, None

    @property
    def alive(self) -> bool:
        return self._dead is None

    def _check_alive(self) -> None:
        if self._dead is not None:
            raise ConnectionLost(f"lost the connection to the raylet ({self._dead})")

    def close(self) -> None:
        self._closed = True
        with self._direct_lock:
            for channel in self._channels.values():
                channel.close()
        self._enqueue((_CLOSE, None))
        try:
            self._reader.join(timeout=5)
        finally:
            if self._call is not None:
                self._call.cancel()
            if self._local is not None:
                self._local.close()
            for ch in ("_channel", "_store_channel", "_gcs_client"):
                channel = getattr(self, ch, None)
                if channel is not None:
                    channel.close()

    # ---- references ----------------------------------------------------

    def ref_created(self, object_id: bytes) -> None:
        self._out.put((_REF_ADD, object_id))

    def ref_deleted(self, object_id: bytes) -> None:
        self._out.put((_REF_DEL, object_id))

    # ---- submission ----------------------------------------------------

    def submit(self, spec: raylet_pb2.TaskSpec) -> None:
        self._check_alive()
        self._enqueue((_SUBMIT, spec))

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
        first_id = ids.object_id_for(spec.task_id, 1)
        if self._local is None or not self.info.session_dir:
            self._enqueue((_SUBMIT, spec))
            return ObjectRef(first_id, self) if spec.num_returns else None
        with self._direct_lock:
            channel = self._channels.get(spec.actor_id)
            if channel is None:
                channel = self._channels[spec.actor_id] = direct_calls.ActorChannel(spec.actor_id)
            if channel.deferred or (channel.inflight and not direct):
                # Its arguments must outlive the caller's refs until the
                # raylet pins them at submission.
                args = [ObjectRef(object_id, self) for object_id in (*spec.dependencies, *spec.nested_refs)]
                self._out.put((_RESERVE, spec))
                first = ObjectRef(first_id, self) if spec.num_returns else None
                channel.deferred.append((spec, (keep, args, first)))
                returns = [ids.object_id_for(spec.task_id, i + 1) for i in range(spec.num_returns)]
                with self._cond:  # a get now must not subscribe: the raylet does not know them yet
                    self._live.update(returns)
                    self._subscribed.update(returns)
                return first
            if direct and channel.direct_ok and (channel.sock is not None or self._open_channel(channel)):
                self._direct_local[first_id] = _DIRECT_RUNNING
                with self._cond:
                    self._live.add(first_id)
                    self._subscribed.add(first_id)
                first = ObjectRef(first_id, self)
                channel.inflight[spec.task_id] = (spec, keep)
                channel.send(calls=[raylet_pb2.ExecuteTask(spec=spec)])  # (if broken, its reader resubmits it)
                return first
            first = self._via_raylet(channel, spec, _SUBMIT)
        self._flush()
        return first

    def _via_raylet(self, channel: direct_calls.ActorChannel, spec: raylet_pb2.TaskSpec, kind: int) -> ObjectRef | None:
        """Queue an actor call for the raylet, counted until its first
        return is back (the direct lock is held). Returns our ref to it,
        held until then: the raylet pushes it to us when ready even if the
        caller's refs are gone by then."""
        first = None
        if spec.num_returns == 0:
            channel.returnless = True
        else:
            object_id = ids.object_id_for(spec.task_id, 1)
            first = ObjectRef(object_id, self)
            channel.raylet_calls += 1
            self._raylet_call_returns[object_id] = (channel, first)
            if channel.killed and channel.kill_barrier is None:
                channel.kill_barrier = object_id
        self._out.put((kind, spec))
        return first

    def _open_channel(self, channel: direct_calls.ActorChannel) -> bool:
        sock = channel.connect(direct_calls.socket_address(self.info.session_dir, channel.actor_id),
                               self._token or "", self.node_id)
        if sock is None:
            return False
        threading.Thread(target=self._read_direct, args=(channel, sock), name="ember-direct-reader",
                         daemon=True).start()
        return True

    def _read_direct(self, channel: direct_calls.ActorChannel, sock: Any) -> None:
        """Results of one actor's direct calls, until the connection breaks."""
        try:
            for data in read_frames(sock):
                for result in raylet_pb2.DirectReplies.FromString(data).results:
                    self._direct_result(channel, result)
        except Exception as e:  # (OSError, or a malformed frame): the calls in flight go to the raylet
            log.debug("direct connection to actor %s broke: %s", channel.actor_id.hex(), e)
        self._direct_broken(channel, sock)

    def _direct_result(self, channel: direct_calls.ActorChannel, result: raylet_pb2.TaskResult) -> None:
        publish: list[common_pb2.ObjectValue] = []
        with self._direct_lock:
            if channel.inflight.pop(result.task_id, None) is None:
                return
            for value in result.returns:
                object_id = value.object_id
                state = self._direct_local.get(object_id)
                if state is None and value.WhichOneof("location") != "stored_size":
                    continue  # nobody refers to it any more
                if state == _DIRECT_RUNNING and value.WhichOneof("location") != "stored_size":
                    self._direct_local[object_id] = _DIRECT_HERE
                else:  # stored values are the raylet's at once (the store frees them with it)
                    self._direct_local.pop(object_id, None)
                    publish.append(value)
                with self._cond:
                    if object_id in self._live:
                        self._values[object_id] = value
                        self._subscribed.discard(object_id)
                    self._cond.notify_all()
            for value in publish:
                self._out.put((_PUT_DIRECT, value))
            if not channel.inflight:
                self._submit_deferred(channel)
        if publish or not channel.inflight:
            self._flush()

    def _submit_deferred(self, channel: direct_calls.ActorChannel) -> None:
        """The calls that waited for the direct ones go to the raylet, in order."""
        deferred, channel.deferred = channel.deferred, []
        for spec, _keep in deferred:
            self._via_raylet(channel, spec, _RESUBMIT)  # (the refs in _keep drop after it, in queue order)
            if spec.task_id in channel.cancel_deferred:
                self._out.put((_CANCEL, raylet_pb2.CancelTask(task_id=spec.task_id)))
        channel.cancel_deferred.clear()

    def _direct_broken(self, channel: direct_calls.ActorChannel, sock: Any) -> None:
        """The actor's worker went away (or we are closing): the calls in
        flight go to the raylet, marked with the worker they ran on, so it
        retries or fails them as for a call it had sent there itself."""
        with self._direct_lock:
            if channel.sock is not sock or self._closed:
                return  # handled already (a kill), or we are closing
            self._break_channel(channel)
        self._flush()

    def _break_channel(self, channel: direct_calls.ActorChannel) -> None:
        """Close the connection; its calls in flight, then the deferred
        ones, go to the raylet, in order (the direct lock is held)."""
        channel.close()
        channel.retry_at = time.monotonic() + direct_calls.RETRY_AFTER_S
        inflight, channel.inflight = channel.inflight, {}
        for spec, _keep in inflight.values():
            for i in range(spec.num_returns):
                self._direct_local.pop(ids.object_id_for(spec.task_id, i + 1), None)
            spec.direct_worker_id = channel.worker_id
            self._via_raylet(channel, spec, _RESUBMIT)
        self._submit_deferred(channel)

    def send_result(self, result: raylet_pb2.TaskResult) -> None:
        self._enqueue((_RESULT, result))

    def send_blocked(self, blocked: bool, returned: list[bytes]) -> None:
        self._enqueue((_BLOCKED, (blocked, returned)))

    def send_logs(self, lines: raylet_pb2.LogLines) -> None:
        """Queued only: the next batch (or the flusher, within ~20 ms) carries it."""
        self._out.put((_LOGS, lines))

    def cancel(self, task_id: bytes, force: bool, recursive: bool) -> None:
        direct = False
        with self._direct_lock:
            for channel in self._channels.values():
                if task_id in channel.inflight:
                    channel.send(cancel=[task_id])  # (an actor's call: never forced, as in Ray)
                    direct = True
                    break
                if any(spec.task_id == task_id for spec, _keep in channel.deferred):
                    channel.cancel_deferred.add(task_id)  # the raylet does not know it yet
                    return
        if direct:  # the raylet never saw the call, only the tasks it submitted
            if recursive:
                self._enqueue((_CANCEL, raylet_pb2.CancelTask(task_id=task_id, recursive=True, children_only=True)))
            return
        self._enqueue((_CANCEL, raylet_pb2.CancelTask(task_id=task_id, force=force, recursive=recursive)))

    def kill_actor(self, actor_id: bytes, no_restart: bool) -> None:
        self._check_alive()
        with self._direct_lock:
            # Calls after the kill go through the raylet, behind it (they
            # run on the restarted actor); those in flight go as cut off.
            channel = self._channels.get(actor_id)
            if channel is None:
                channel = self._channels[actor_id] = direct_calls.ActorChannel(actor_id)
            if channel.sock is not None:
                self._break_channel(channel)
            channel.killed, channel.kill_barrier = True, None
        self._enqueue((_KILL, raylet_pb2.KillActor(actor_id=actor_id, no_restart=no_restart)))

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
            self._enqueue((_KV_GET, raylet_pb2.KvKey(namespace=namespace, key=key)))
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
        if so.total_size < self.inline_threshold:
            value.data = so.to_bytes()
        else:
            self._store_write(object_id, so)
            value.stored_size = so.total_size
        return value

    def _store_write(self, object_id: bytes, so: serialization.SerializedObject) -> None:
        import grpc  # loaded already: `self.store` is a gRPC stub

        size = so.total_size
        request = objectstore_pb2.CreateRequest(object_id=object_id, size=size)
        try:
            reply = self._with_room(lambda: self.store.Create(request, timeout=60))
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise exceptions.ObjectStoreFullError(e.details()) from None
            raise
        try:
            fd = os.open(reply.path, os.O_RDWR)
            try:
                inode = os.fstat(fd).st_ino
                mm = self._writer_maps.take(inode, size)
                if mm is None:
                    mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
            finally:
                os.close(fd)
            with memoryview(mm) as view:
                so.write_into(view)
            self._writer_maps.keep(inode, size, mm)
        except BaseException:
            self.store.Abort(objectstore_pb2.AbortRequest(object_id=object_id), timeout=10)
            raise
        self.store.Seal(objectstore_pb2.SealRequest(object_id=object_id), timeout=60)

    def put_value(self, value: common_pb2.ObjectValue) -> None:
        """Hand a created object to the raylet (the owner)."""
        self._check_alive()
        with self._cond:  # our own put: get needs no round trip
            self._values[value.object_id] = value
        self._enqueue((_PUT, value))

    def decode(self, value: common_pb2.ObjectValue) -> Any:
        """The Python value of a ready object (raises it if it is an error)."""
        if value.WhichOneof("location") == "stored_size":
            data: Any = self._map_stored(value.object_id)
        else:
            data = value.data
        result, is_error = serialization.deserialize(data)
        if is_error:
            if isinstance(result, exceptions.TaskError):
                raise result.as_instanceof_cause()
            raise result
        return result

    def _map_stored(self, object_id: bytes) -> memoryview:
        """Map a stored object read-only (cached: a worker that gets the same
        large argument task after task should not fault its pages in again)."""
        maps = self._reader_maps
        view = maps.get(object_id)
        if view is None:
            view = self._map_file(object_id)
            if maps.max_bytes is None:
                # Cached mappings keep the store from spilling their objects:
                # hold at most an eighth of it, so the rest can always move.
                capacity = self.store.Stats(objectstore_pb2.StatsRequest(), timeout=30).capacity
                maps.max_bytes = min(1 << 30, capacity // 8)
            maps.put(object_id, view)
        return view

    def _map_file(self, object_id: bytes) -> memoryview:
        """The shared flock held while the mapping lives tells the store not
        to recycle, spill or evict the file (services/objectstore/); the fd
        closes with the mapping. A file that is gone was spilled or evicted
        to make room, or freed: the store brings it back, or says it cannot."""
        path = os.path.join(self.info.object_store_dir, object_id.hex())
        for _ in range(3):  # it may be spilled again before we lock it
            view = _map_locked(path)
            if view is not None:
                return view
            self._restore(object_id)
        raise exceptions.ObjectLostError(f"object {object_id.hex()} keeps leaving the node's object store "
                                         "(it is full of objects in use)")

    def _restore(self, object_id: bytes) -> None:
        import grpc  # loaded already: `self.store` is a gRPC stub

        request = objectstore_pb2.RestoreRequest(object_id=object_id)
        try:
            self._with_room(lambda: self.store.Restore(request, timeout=600))
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                raise exceptions.ObjectLostError(f"object {object_id.hex()} is no longer in the node's object "
                                                 "store") from None
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise exceptions.ObjectStoreFullError(f"cannot bring object {object_id.hex()} back into the "
                                                      f"node's object store: {e.details()}") from None
            raise

    def _with_room(self, call: Callable[[], Any]) -> Any:
        """A store call that needs room: if the store is full of objects in
        use, let go of the mappings we cache (their flocks keep the store
        from spilling them) and try once more."""
        import grpc

        try:
            return call()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or not self._reader_maps.clear():
                raise
        return call()

    def wait_values(self, object_ids: list[bytes], num: int, timeout: float | None,
                    fetch_local: bool = True) -> set[bytes]:
        """Block until `num` of the objects are ready (readable on this node,
        unless not `fetch_local`) or the timeout passes; returns the ids that
        are ready."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = self._values
        remote = self._remote
        with self._cond:
            ready = values.keys() & object_ids  # set ops run in C
            if not fetch_local and remote:
                ready |= remote.keys() & object_ids
            if len(ready) >= num:
                return ready
            subscribe = [i for i in object_ids if i not in values and i not in self._subscribed and i not in remote]
            if subscribe:
                self._subscribed.update(subscribe)
                self._out.put((_SUBSCRIBE, subscribe))
            fetch = self._to_fetch(object_ids) if remote and fetch_local else None
        if (subscribe or fetch) and self._local is not None:
            self._flush()
        blocked = False
        try:
            with self._cond:
                while True:
                    ready = values.keys() & object_ids
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
                    if self._dead is not None:
                        raise ConnectionLost(f"lost the connection to the raylet ({self._dead})")
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return ready
                    if not blocked and self.on_block is not None:
                        blocked = True
                        self._cond.release()
                        try:
                            self.on_block(True)
                        finally:
                            self._cond.acquire()
                        continue
                    # Wake up now and then: a cancelled task is interrupted here.
                    self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
        finally:
            if blocked and self.on_block is not None:
                self.on_block(False)

    def _to_fetch(self, object_ids: list[bytes]) -> list[bytes]:
        """Queue a fetch of those stored on other nodes that are not being
        fetched yet (the caller holds _cond and flushes)."""
        fetch = [i for i in object_ids if i in self._remote and i not in self._fetching]
        if fetch:
            self._fetching.update(fetch)
            self._out.put((_FETCH, fetch))
        return fetch

    def get_value(self, object_id: bytes) -> common_pb2.ObjectValue:
        with self._cond:
            return self._values[object_id]


def _map_locked(path: str) -> memoryview | None:
    """Map a store file read-only under a shared flock; None if it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            os.close(fd)
            return None  # removed (or replaced) between our open and our lock
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    weakref.finalize(mm, os.close, fd)
    return memoryview(mm)


class _LocalSocket:
    """The raylet's local transport (services/raylet/local_transport.py):
    length-prefixed protobuf frames on a unix socket; the token goes first."""

    def __init__(self, path: str, token: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + 30
        while True:
            try:
                self._sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        send_frame(self._sock, token.encode())

    def send(self, batch: raylet_pb2.ClientBatch) -> None:
        send_frame(self._sock, batch.SerializeToString())

    def shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def incoming(self) -> Iterator[raylet_pb2.RayletBatch]:
        for data in read_frames(self._sock):
            batch = raylet_pb2.RayletBatch.FromString(data)
            if batch.error:
                raise ConnectionLost(f"the raylet closed the session: {batch.error}")
            yield batch

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


class _WriterMaps:
    """Mappings of store files this process wrote, kept for when the store
    recycles the same file to us: mapping 100 MB and unmapping it again
    costs twice the memcpy itself. Bounded; a file handed out by Create has
    no readers, so writing through an old mapping is safe."""

    def __init__(self, max_bytes: int = 1 << 30, max_maps: int = 8) -> None:
        self._maps: dict[int, tuple[int, mmap.mmap]] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_maps = max_maps
        self._lock = threading.Lock()

    def take(self, inode: int, size: int) -> mmap.mmap | None:
        with self._lock:
            entry = self._maps.pop(inode, None)
            if entry is None:
                return None
            self._bytes -= entry[0]
        if entry[0] == size:
            return entry[1]
        entry[1].close()
        return None

    def keep(self, inode: int, size: int, mm: mmap.mmap) -> None:
        evicted = []
        with self._lock:
            self._maps[inode] = (size, mm)
            self._bytes += size
            while self._maps and (self._bytes > self._max_bytes or len(self._maps) > self._max_maps):
                oldest = next(iter(self._maps))
                old_size, old_mm = self._maps.pop(oldest)
                self._bytes -= old_size
                evicted.append(old_mm)
        for old in evicted:
            old.close()


class _ReaderMaps:
    """Recently mapped stored objects, by id. Ids are never reused, so a
    cached view is always the object's bytes; while cached, its flock keeps
    the store from recycling the file, so the cache is small."""

    def __init__(self, max_bytes: int | None = None, max_maps: int = 16) -> None:
        self._views: dict[bytes, memoryview] = {}
        self._bytes = 0
        self.max_bytes = max_bytes  # set from the store's capacity on first use
        self._max_maps = max_maps
        self._lock = threading.Lock()

    def get(self, object_id: bytes) -> memoryview | None:
        with self._lock:
            view = self._views.pop(object_id, None)
            if view is not None:
                self._views[object_id] = view  # most recent last
            return view

    def drop(self, object_id: bytes) -> None:
        with self._lock:
            view = self._views.pop(object_id, None)
            if view is not None:
                self._bytes -= view.nbytes

    def clear(self) -> int:
        """Drop every cached view; how many there were."""
        with self._lock:
            n = len(self._views)
            self._views.clear()
            self._bytes = 0
        return n

    def put(self, object_id: bytes, view: memoryview) -> None:
        with self._lock:
            self._views[object_id] = view
            self._bytes += view.nbytes
            while self._views and (self._bytes > (self.max_bytes or 0) or len(self._views) > self._max_maps):
                oldest = next(iter(self._views))
                self._bytes -= self._views.pop(oldest).nbytes
