"""Objects as files in a shared-memory directory.

The creator writes the file (`<id>.unsealed`) through its own mapping; Seal
renames it to `<id>`, so readers only ever open complete objects, and map
them read-only. A deleted file stays valid for readers that still map it
(POSIX semantics), so deletion never breaks a zero-copy reader.

Recycling: fresh shared-memory pages cost the kernel more to hand out than
a memcpy into pages already touched, so a deleted object's file goes to a
pool (`free/`, under a name no reader opens) and a later Create of a similar
size reuses it. A reader holds a shared flock on a file for as long as its
mapping lives; the store reuses a pooled file only if it can take the lock
exclusively, i.e. nobody maps it any more. Pooled files give way whenever a
live object needs their room, and go back to the system once unused for a
while (`trim_pool`), so an idle node does not keep a busy hour's memory.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import pathlib
import shutil
import time

from ember_common import ids
from ember_common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Entry:
    size: int
    sealed: bool = False
    since: float = dataclasses.field(default_factory=time.monotonic)  # created, then sealed


class ShmStore:
    def __init__(self, directory: pathlib.Path, capacity: int, pool_fraction: float = 0.5) -> None:
        self.directory = directory
        self.capacity = capacity
        self.used = 0
        self._objects: dict[bytes, Entry] = {}
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._free_dir = directory / "free"
        self._free_dir.mkdir(exist_ok=True, mode=0o700)
        self._pool: list[tuple[int, pathlib.Path, float]] = []  # recyclable files: (size, path, pooled at)
        self.pool_bytes = 0
        self.pool_limit = int(capacity * pool_fraction)
        self._next_free = 0
        self.reused = 0

    def path(self, object_id: bytes, sealed: bool = True) -> pathlib.Path:
        return self.directory / (object_id.hex() + ("" if sealed else ".unsealed"))

    @staticmethod
    def _check_id(object_id: bytes) -> bytes:
        return ids.check(object_id, ids.OBJECT_ID_SIZE, "object_id")

    def create(self, object_id: bytes, size: int) -> pathlib.Path:
        self._check_id(object_id)
        if size <= 0:
            raise InvalidArgument(f"object size must be positive, got {size}")
        if object_id in self._objects:
            raise AlreadyExists(f"object {object_id.hex()} already exists")
        if size > self.capacity:
            raise ResourceExhausted(
                f"object of {size} bytes can never fit: the object store's capacity is {self.capacity} bytes"
            )
        if self.used + size > self.capacity:
            raise ResourceExhausted(
                f"object store full: {size} bytes requested, {self.capacity - self.used} of "
                f"{self.capacity} bytes free"
            )
        while self._pool and self.used + self.pool_bytes + size > self.capacity:
            self._drop_pooled(self._pool[0])
        path = self.path(object_id, sealed=False)
        recycled = self._take_pooled(size)
        if recycled is not None:
            os.rename(recycled, path)
            self.reused += 1
        else:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
        self._objects[object_id] = Entry(size)
        self.used += size
        return path

    def seal(self, object_id: bytes) -> pathlib.Path:
        entry = self._objects.get(self._check_id(object_id))
        if entry is None:
            raise NotFound(f"object {object_id.hex()} was not created")
        if not entry.sealed:
            os.rename(self.path(object_id, sealed=False), self.path(object_id))
            entry.sealed = True
            entry.since = time.monotonic()
        return self.path(object_id)

    def abort(self, object_id: bytes) -> None:
        entry = self._objects.get(self._check_id(object_id))
        if entry is None:
            return
        if entry.sealed:
            raise FailedPrecondition(f"object {object_id.hex()} is sealed; delete it instead")
        self._remove(object_id, entry)

    def delete(self, object_ids: list[bytes]) -> int:
        deleted = 0
        for object_id in object_ids:
            entry = self._objects.get(self._check_id(object_id))
            if entry is not None:
                self._remove(object_id, entry)
                deleted += 1
        return deleted

    def _remove(self, object_id: bytes, entry: Entry) -> None:
        path = self.path(object_id, sealed=entry.sealed)
        del self._objects[object_id]
        self.used -= entry.size
        if entry.sealed and self.pool_bytes + entry.size <= self.pool_limit:
            free = self._free_dir / str(self._next_free)
            self._next_free += 1
            try:
                os.rename(path, free)
            except FileNotFoundError:
                return
            self._pool.append((entry.size, free, time.monotonic()))
            self.pool_bytes += entry.size
        else:
            path.unlink(missing_ok=True)

    def _take_pooled(self, size: int) -> pathlib.Path | None:
        """A pooled file nobody maps any more, resized to `size`; the closest
        in size first."""
        for item in sorted(self._pool, key=lambda it: abs(it[0] - size)):
            fd = os.open(item[1], os.O_RDWR)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a reader still maps it
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
            self._pool.remove(item)
            self.pool_bytes -= item[0]
            return item[1]
        return None

    def trim_pool(self, idle_s: float, now: float | None = None) -> int:
        """Give back pooled files nobody reused for `idle_s`; how many."""
        cutoff = (time.monotonic() if now is None else now) - idle_s
        stale = [item for item in self._pool if item[2] <= cutoff]
        for item in stale:
            self._drop_pooled(item)
        return len(stale)

    def _drop_pooled(self, item: tuple[int, pathlib.Path, float]) -> None:
        self._pool.remove(item)
        self.pool_bytes -= item[0]
        item[1].unlink(missing_ok=True)

    def objects(self) -> dict[bytes, Entry]:
        """Every object, oldest first."""
        return self._objects

    def lock_unmapped(self, object_id: bytes) -> int | None:
        """An fd holding the sealed object's file locked exclusively (so no
        reader maps it, nor can start to), or None if a reader maps it."""
        try:
            fd = os.open(self.path(object_id), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def drop(self, object_id: bytes) -> None:
        """Remove an object to free its memory now (spilled or evicted)."""
        entry = self._objects.pop(object_id)
        self.used -= entry.size
        self.path(object_id, sealed=entry.sealed).unlink(missing_ok=True)

    def older_than(self, sealed_age_s: float, unsealed_age_s: float, now: float | None = None) -> list[bytes]:
        """Objects sealed at least `sealed_age_s` ago, or still unsealed
        `unsealed_age_s` after their creation."""
        now = time.monotonic() if now is None else now
        return [object_id for object_id, e in self._objects.items()
                if now - e.since >= (sealed_age_s if e.sealed else unsealed_age_s)]

    def locate(self, object_id: bytes) -> Entry | None:
        entry = self._objects.get(self._check_id(object_id))
        return entry if entry is not None and entry.sealed else None

    @property
    def num_objects(self) -> int:
        return sum(1 for e in self._objects.values() if e.sealed)

    @property
    def num_unsealed(self) -> int:
        return sum(1 for e in self._objects.values() if not e.sealed)

    def close(self) -> None:
        """Remove every object and the directory itself."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self._objects.clear()
        self._pool.clear()
        self.used = self.pool_bytes = 0

