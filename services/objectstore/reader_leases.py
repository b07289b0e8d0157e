"""Which objects each reader process holds, and noticing readers that died.

A reader process (a driver, a worker, the raylet) pins each object it maps
through the ObjectLeases API under its lease: 16 bytes it chose, named by a
file in `<store directory>/leases/` on which it holds an exclusive flock as
long as it lives (made under another name, locked, then renamed, so the
store never sees it unlocked while its reader lives). A lease holds an object at most once (Pin and Unpin are
idempotent; the reader counts its own uses). The store never spills, evicts
or reuses a pinned object. `reap` finds leases whose file it can lock (the
reader is gone, however it died), and releases what they held: one
descriptor per reader process instead of one per object, and no reader can
leak memory by dying.
"""

from __future__ import annotations

import fcntl
import os
import pathlib

from ember_common.errors import FailedPrecondition, InvalidArgument
from ember_objectstore.shm_store import Entry, ShmStore

LEASE_ID_SIZE = 16


class ReaderLeases:
    def __init__(self, store: ShmStore, directory: pathlib.Path) -> None:
        self._store = store
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._held: dict[bytes, dict[bytes, Entry]] = {}  # lease -> object id -> the entry it pinned

    @staticmethod
    def check(lease_id: bytes) -> bytes:
        if len(lease_id) != LEASE_ID_SIZE:
            raise InvalidArgument(f"lease_id must be {LEASE_ID_SIZE} bytes, got {len(lease_id)}")
        return lease_id

    def _path(self, lease_id: bytes) -> pathlib.Path:
        return self.directory / lease_id.hex()

    def _holdings(self, lease_id: bytes) -> dict[bytes, Entry]:
        held = self._held.get(self.check(lease_id))
        if held is None:
            if not self._path(lease_id).exists():
                raise FailedPrecondition(f"no lease file {self._path(lease_id)}: create and lock it first")
            held = self._held[lease_id] = {}
        return held

    def pin_check(self, lease_id: bytes) -> None:
        """FailedPrecondition unless the lease's file exists."""
        self._holdings(lease_id)

    def pin(self, lease_id: bytes, object_id: bytes, entry: Entry) -> None:
        """The lease holds `entry` (object `object_id`) from now on."""
        held = self._holdings(lease_id)
        old = held.get(object_id)
        if old is entry:
            return
        self._store.pin(entry)
        held[object_id] = entry
        if old is not None:  # an earlier copy of the object (freed since, then back)
            self._store.unpin(old)

    def unpin(self, lease_id: bytes, object_ids: list[bytes]) -> int:
        held = self._held.get(self.check(lease_id), {})
        released = 0
        for object_id in object_ids:
            entry = held.pop(object_id, None)
            if entry is not None:
                self._store.unpin(entry)
                released += 1
        return released

    def reap(self) -> int:
        """Release what dead readers held and remove their lease files; how
        many readers were dead."""
        try:
            names = set(os.listdir(self.directory))
        except FileNotFoundError:
            names = set()
        known = {lease_id.hex(): lease_id for lease_id in self._held}
        dead = 0
        for name in names | known.keys():
            if len(name) != 2 * LEASE_ID_SIZE or self._alive(self.directory / name):
                continue
            dead += 1
            lease_id = known.get(name)
            if lease_id is not None:
                for entry in self._held.pop(lease_id).values():
                    self._store.unpin(entry)
            (self.directory / name).unlink(missing_ok=True)
        return dead

    @staticmethod
    def _alive(path: pathlib.Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    @property
    def num_readers(self) -> int:
        return len(self._held)

    @property
    def num_pinned(self) -> int:
        return len({id(e) for held in self._held.values() for e in held.values()})
