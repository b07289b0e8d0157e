"""Reading and writing the node's object store from another process.

The store keeps every object in one shared-memory arena file
(services/objectstore/shm_store.py). A process maps the arena once
(`ArenaMapping`; the descriptor is closed right after) and reads or writes
any number of objects through that one mapping. A reader pins what it reads
through the store's ObjectLeases API under its lease (`LeaseFile`: one
locked file per process, which tells the store when the reader died), and
`PinnedViews` keeps each pinned object's memory alive exactly as long as
something in the process uses it: the store is told to unpin an object once
the last view of it is gone. Used by the SDK (zero-copy gets) and the raylet
(values it streams to clients in other languages).
"""

from __future__ import annotations

import collections
import ctypes
import fcntl
import mmap
import os
import threading
import weakref

LEASE_ID_SIZE = 16


class ArenaMapping:
    """The store's arena, mapped read-write once per process (and again
    when the store was restarted: each store names its arena anew). Objects
    are handed out as read-only views."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: str | None = None
        self._map: mmap.mmap | None = None

    def mapping(self, path: str) -> mmap.mmap:
        with self._lock:
            if self._map is None or self._path != path:
                fd = os.open(path, os.O_RDWR)
                try:
                    self._map = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED)  # (an old mapping stays for its views)
                finally:
                    os.close(fd)
                self._path = path
            return self._map

    def writable(self, path: str, offset: int, size: int) -> memoryview:
        """The range a Create handed out, to fill."""
        return memoryview(self.mapping(path))[offset:offset + size]

    def pinned_range(self, path: str, offset: int, size: int) -> ctypes.Array:
        """An object of its own over the range: views made from it keep it
        alive, so its death says the range is no longer used."""
        return (ctypes.c_ubyte * size).from_buffer(self.mapping(path), offset)


class LeaseFile:
    """This process's lease: a file in the store's `leases/` directory,
    exclusively locked for as long as the process lives (the store reaps
    leases it can lock). Made under another name and renamed once locked,
    so the store never sees it unlocked while we live. A forked child makes
    its own (`current`)."""

    def __init__(self, store_dir: str) -> None:
        self.lease_id = os.urandom(LEASE_ID_SIZE)
        self.pid = os.getpid()
        directory = os.path.join(store_dir, "leases")
        path = os.path.join(directory, self.lease_id.hex())
        tmp = os.path.join(directory, "." + self.lease_id.hex())
        self._fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            os.rename(tmp, path)
        except BaseException:
            os.close(self._fd)
            os.unlink(tmp)
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PinnedViews:
    """The objects this process has pinned, each as a read-only view that
    lives as long as anything made from it. When the last one goes, the
    object's id waits in `take_unpins` for the store to be told; an object
    pinned again before then is not unpinned (the store's pins are
    idempotent, one per lease and object)."""

    def __init__(self) -> None:
        self._live: dict[bytes, weakref.ref] = {}
        self._gone: collections.deque[bytes] = collections.deque()  # appended from finalizers: no lock
        self.on_gone: list = []  # callbacks when an id joins `_gone` (wake a sender)

    def get(self, object_id: bytes) -> memoryview | None:
        ref = self._live.get(object_id)
        pinned = ref() if ref is not None else None
        return None if pinned is None else memoryview(pinned).cast("B").toreadonly()

    def add(self, object_id: bytes, pinned: ctypes.Array) -> memoryview:
        self._live[object_id] = weakref.ref(pinned, lambda ref, object_id=object_id: self._died(object_id, ref))
        return memoryview(pinned).cast("B").toreadonly()

    def _died(self, object_id: bytes, ref: weakref.ref) -> None:
        if self._live.get(object_id) is ref:
            del self._live[object_id]
        self._gone.append(object_id)
        for wake in self.on_gone:
            wake()

    def take_unpins(self) -> list[bytes]:
        """Ids to unpin now: gone, and not pinned again since. Call it where
        no pin is being made at the same time."""
        out = set()
        while self._gone:
            out.add(self._gone.popleft())
        return [object_id for object_id in out if object_id not in self._live]

    @property
    def has_unpins(self) -> bool:
        return bool(self._gone)

    @property
    def num_live(self) -> int:
        return len(self._live)
