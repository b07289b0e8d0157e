"""Reading and writing the node's object store files from this process:
large values are written through a mapping of the file the store hands out
(Create, write, Seal) and read zero-copy through a read-only mapping under a
shared flock, which tells the store not to recycle, spill or evict the file
while we read it (services/objectstore/). Both kinds of mapping are cached.
"""

from __future__ import annotations

import mmap
import os
import threading
from typing import Any, Callable

from ember import exceptions
from ember._private import serialization, tracing
from ember.v1 import objectstore_pb2
from ember_common.store_files import map_locked


def raise_fd_limit() -> None:
    """Each zero-copy mapping of a stored object holds an fd: allow as many
    as the hard limit does."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


class StoreIO:
    """Store calls and mappings for one client. `store()` is the store's
    gRPC stub (made on first use: gRPC is imported only then), `store_dir()`
    the directory of its files."""

    def __init__(self, store: Callable[[], Any], store_dir: Callable[[], str]) -> None:
        self._store = store
        self._store_dir = store_dir
        self.writer_maps = WriterMaps()
        self.reader_maps = ReaderMaps()

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
            fd = os.open(reply.path, os.O_RDWR)
            try:
                inode = os.fstat(fd).st_ino
                mm = self.writer_maps.take(inode, size)
                if mm is None:
                    mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
            finally:
                os.close(fd)
            with memoryview(mm) as view:
                so.write_into(view)
            self.writer_maps.keep(inode, size, mm)
        except BaseException:
            store.Abort(objectstore_pb2.AbortRequest(object_id=object_id), timeout=10)
            raise
        store.Seal(objectstore_pb2.SealRequest(object_id=object_id), timeout=60, metadata=md)

    def map_stored(self, object_id: bytes) -> memoryview:
        """Map a stored object read-only (cached: a worker that gets the same
        large argument task after task should not fault its pages in again)."""
        maps = self.reader_maps
        view = maps.get(object_id)
        if view is None:
            view = self._map_file(object_id)
            if maps.max_bytes is None:
                # Cached mappings keep the store from spilling their objects:
                # hold at most an eighth of it, so the rest can always move.
                capacity = self._store().Stats(objectstore_pb2.StatsRequest(), timeout=30).capacity
                maps.max_bytes = min(1 << 30, capacity // 8)
            maps.put(object_id, view)
        return view

    def _map_file(self, object_id: bytes) -> memoryview:
        """The fd closes with the mapping. A file that is gone was spilled
        or evicted to make room, or freed: the store brings it back, or says
        it cannot."""
        path = os.path.join(self._store_dir(), object_id.hex())
        for _ in range(3):  # it may be spilled again before we lock it
            view = map_locked(path)
            if view is not None:
                return view
            self._restore(object_id)
        raise exceptions.ObjectLostError(f"object {object_id.hex()} keeps leaving the node's object store "
                                         "(it is full of objects in use)")

    def _restore(self, object_id: bytes) -> None:
        import grpc  # loaded already: the store is a gRPC stub

        store = self._store()
        request = objectstore_pb2.RestoreRequest(object_id=object_id)
        try:
            self._with_room(lambda: store.Restore(request, timeout=600))
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
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or not self.reader_maps.clear():
                raise
        return call()


class WriterMaps:
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
        """The kept mapping of file `inode` if it has `size` bytes (one of
        another size is closed); None if there is none."""
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
        """Keep `mm`, closing the oldest mappings past the bounds."""
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


class ReaderMaps:
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
        """Cache `view`, dropping the least recently used past the bounds."""
        with self._lock:
            self._views[object_id] = view
            self._bytes += view.nbytes
            while self._views and (self._bytes > (self.max_bytes or 0) or len(self._views) > self._max_maps):
                oldest = next(iter(self._views))
                self._bytes -= self._views.pop(oldest).nbytes
