"""Reading and writing the node's object store from this process: the
store's arena is mapped once (ember_common.store_files); large values are
written into the range a Create hands out, then sealed, and read zero-copy
after pinning them under this process's lease (one Pin call for all the
objects a get needs). An object is unpinned once nothing here uses its
memory any more: the ids wait a moment and go in one Unpin call, from a
thread of their own. Recently read objects stay cached (ReaderMaps).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable

from ember import exceptions
from ember._private import serialization, tracing
from ember.v1 import object_leases_pb2, objectstore_pb2
from ember_common.store_files import ArenaMapping, LeaseFile, PinnedViews

# Ids per Pin call (a reply stays far below gRPC's message limit).
PIN_BATCH = 10_000
# How long ids to unpin wait for others to share their call.
UNPIN_DELAY_S = 0.005


class StoreIO:
    """Store calls and the arena mapping for one client. `store()` is the
    store's gRPC stub and `leases()` its ObjectLeases stub (made on first
    use: gRPC is imported only then), `store_dir()` the store's directory."""

    def __init__(self, store: Callable[[], Any], leases: Callable[[], Any], store_dir: Callable[[], str]) -> None:
        self._store = store
        self._leases = leases
        self._store_dir = store_dir
        self.arena = ArenaMapping()
        self.pinned = PinnedViews()
        self.reader_maps = ReaderMaps()
        self._lease: LeaseFile | None = None
        self._pin_lock = threading.Lock()  # Pin and Unpin calls one at a time, in order
        self._unpin_wake = threading.Event()
        self._unpinner: threading.Thread | None = None
        self._closed = False
        self.pinned.on_gone.append(self._unpin_wake.set)

    def write(self, object_id: bytes, so: serialization.SerializedObject) -> None:
        """Create the object in the store, write `so` into it, seal it."""
        import grpc  # loaded already: the store is a gRPC stub

        store = self._store()
        size = so.total_size
        request = objectstore_pb2.CreateRequest(object_id=object_id, size=size)
        md = tracing.rpc_metadata() if tracing.enabled else None  # (the store's spans: children of ours)
        try:
            reply = self._with_room(lambda: store.Create(request, timeout=60, metadata=md))
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise exceptions.ObjectStoreFullError(e.details()) from None
            raise
        try:
            with self.arena.writable(reply.path, reply.offset, size) as view:
                so.write_into(view)
        except BaseException:
            store.Abort(objectstore_pb2.AbortRequest(object_id=object_id), timeout=10)
            raise
        store.Seal(objectstore_pb2.SealRequest(object_id=object_id), timeout=60, metadata=md)

    def map_stored(self, object_id: bytes) -> memoryview:
        """A stored object's bytes, read-only, zero-copy."""
        return self.map_many([object_id])[object_id]

    def map_many(self, object_ids: list[bytes]) -> dict[bytes, memoryview]:
        """Stored objects' bytes, read-only, zero-copy: those not mapped here
        already are pinned in one call (per PIN_BATCH). Cached: a worker
        that gets the same large argument task after task should not ask
        the store again."""
        maps, out, missing = self.reader_maps, {}, []
        for object_id in object_ids:
            view = maps.get(object_id)
            if view is None:
                view = self.pinned.get(object_id)
            if view is None:
                missing.append(object_id)
            else:
                out[object_id] = view
        for start in range(0, len(missing), PIN_BATCH):
            out.update(self._pin(missing[start:start + PIN_BATCH]))
        if missing and maps.max_bytes is None:
            # Cached objects stay pinned, which keeps the store from spilling
            # them: hold at most an eighth of it, so the rest can always move.
            capacity = self._store().Stats(objectstore_pb2.StatsRequest(), timeout=30).capacity
            maps.max_bytes = min(1 << 30, capacity // 8)
        for object_id in missing:
            maps.put(object_id, out[object_id])
        return out

    def _pin(self, object_ids: list[bytes]) -> dict[bytes, memoryview]:
        status = object_leases_pb2.PinReply.Status
        out: dict[bytes, memoryview] = {}
        with self._pin_lock:
            todo, failed = object_ids, {}
            for attempt in range(2):
                failed = {}
                path, entries = self._pin_call(todo)
                for object_id, entry in zip(todo, entries):
                    if entry.status == status.PINNED:
                        out[object_id] = self.pinned.add(object_id, self.arena.pinned_range(path, entry.offset,
                                                                                           entry.size))
                    else:
                        failed[object_id] = entry
                # No room to bring objects back: let go of those we cache
                # (their pins keep the store from spilling them), once.
                retry = any(e.status == status.NO_ROOM for e in failed.values())
                if not failed or attempt or not retry or not (self.reader_maps.clear() or self.pinned.has_unpins):
                    break
                self._send_unpins()
                todo = list(failed)
        if failed:
            out.clear()  # what we pinned goes (the unpinner tells the store)
            object_id, entry = next(iter(failed.items()))
            if entry.status == status.LOST:
                raise exceptions.ObjectLostError(f"object {object_id.hex()} is no longer in the node's object "
                                                 f"store ({entry.reason})")
            raise exceptions.ObjectStoreFullError(f"cannot bring object {object_id.hex()} back into the node's "
                                                  f"object store: {entry.reason}")
        return out

    def _pin_call(self, object_ids: list[bytes]) -> tuple[str, Any]:
        """One Pin call under our lease (the lock held): the arena's path and
        the entries."""
        import grpc  # loaded already: the store is a gRPC stub

        for attempt in range(2):
            lease = self._current_lease()
            request = object_leases_pb2.PinRequest(lease_id=lease.lease_id, object_ids=object_ids)
            try:
                reply = self._leases().Pin(request, timeout=600)
                return reply.path, reply.entries
            except grpc.RpcError as e:
                # The store was restarted (and removed our lease file): a new lease, once.
                if e.code() != grpc.StatusCode.FAILED_PRECONDITION or attempt:
                    raise
                self._lease = None
        raise AssertionError("unreachable")

    def _current_lease(self) -> LeaseFile:
        if self._closed:
            raise exceptions.EmberError("the client is closed: it reads nothing more from the object store")
        lease = self._lease
        if lease is None or lease.pid != os.getpid():  # (a forked child makes its own)
            if lease is not None:  # the parent's: our copy of its descriptor goes (its lock stays the parent's)
                lease.close()
            lease = self._lease = LeaseFile(self._store_dir())
            if self._unpinner is None or not self._unpinner.is_alive():
                self._unpinner = threading.Thread(target=self._unpin_loop, name="ember-unpinner", daemon=True)
                self._unpinner.start()
        return lease

    def _unpin_loop(self) -> None:
        while not self._closed:
            self._unpin_wake.wait()
            self._unpin_wake.clear()
            threading.Event().wait(UNPIN_DELAY_S)  # let the ids of one get's values gather
            try:
                self.flush_unpins()
            except Exception:  # the store is gone (shutdown): its pins went with it
                pass

    def close(self) -> None:
        """No store calls from now on (the channel is about to close: a call
        on it from our thread at exit can crash the process). Our lease
        goes, and with it our pins (the store reaps it)."""
        self._closed = True
        self._unpin_wake.set()
        if self._unpinner is not None:
            self._unpinner.join(timeout=5)
        with self._pin_lock:
            if self._lease is not None and self._lease.pid == os.getpid():
                self._lease.close()
            self._lease = None

    def flush_unpins(self) -> int:
        """Tell the store what nothing here uses any more; how many."""
        with self._pin_lock:
            return self._send_unpins()

    def _send_unpins(self) -> int:
        ids = self.pinned.take_unpins()
        lease = self._lease
        if not ids or lease is None or lease.pid != os.getpid() or self._closed or sys.is_finalizing():
            return 0
        for start in range(0, len(ids), PIN_BATCH):
            self._leases().Unpin(object_leases_pb2.UnpinRequest(
                lease_id=lease.lease_id, object_ids=ids[start:start + PIN_BATCH]), timeout=60)
        return len(ids)

    def _with_room(self, call: Callable[[], Any]) -> Any:
        """A store call that needs room: if the store is full of objects in
        use, let go of the objects we cache (their pins keep the store from
        spilling them) and try once more."""
        import grpc

        try:
            return call()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            if not self.reader_maps.clear() and not self.pinned.has_unpins:
                raise
        self.flush_unpins()
        return call()


class ReaderMaps:
    """Recently read stored objects, by id. Ids are never reused, so a
    cached view is always the object's bytes; while cached, it stays pinned
    (the store cannot spill it), so the cache is small."""

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
        """Cache `view`, dropping the least recently used past the bounds."""
        with self._lock:
            self._views[object_id] = view
            self._bytes += view.nbytes
            while self._views and (self._bytes > (self.max_bytes or 0) or len(self._views) > self._max_maps):
                oldest = next(iter(self._views))
                self._bytes -= self._views.pop(oldest).nbytes
