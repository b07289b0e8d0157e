"""Objects in one shared-memory arena file.

The store's directory holds one sparse file, `arena-<random>`, of twice the
capacity (plus slack, so fragmentation never stops an object that fits);
every object is a range of it (`Entry.offset`, `Entry.size`), placed by
`ArenaAllocator`. A process on the node maps the whole arena once and reads
any number of objects through that one mapping: an object costs no file
descriptor and no mapping of its own (the kernel allows ~65,000 mappings
per process, and Python's mmap keeps a descriptor per mapping).

The creator writes its range, then seals it; readers only ever ask for
sealed objects. Liveness is the store's own accounting instead of file
locks: a reader holds a pin (`pins`, see reader_leases.py) on each object
it maps, and an object that is pinned is never spilled, evicted or reused.
Deleting a pinned object takes it out of the store at once, but its range
is freed only when the last pin goes.

Recycling: fresh shared-memory pages cost the kernel more to hand out than
a memcpy into pages already touched, so freed ranges keep their pages (the
allocator reuses small freed ranges before the untouched tail). Touched
free memory is bounded (`pool_limit`), gives way whenever live objects need
the room, and goes back to the system once unused for a while
(`trim_pool`), by punching holes in the file.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import mmap
import os
import pathlib
import re
import shutil
import time

from ember_common import ids
from ember_common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from ember_objectstore.arena_allocator import ArenaAllocator

log = logging.getLogger(__name__)

ARENA_PREFIX = "arena-"  # + random hex: a store started again in the same directory makes a new name,
# so a reader never takes the new arena for the old one it mapped (tmpfs reuses inode numbers)
PAGE = mmap.PAGESIZE
SMALL_ALIGN = 64  # objects under LARGE_OBJECT bytes start on a cache line
LARGE_OBJECT = 1 << 20  # ... larger ones on a page (page-wise faulting, punching, huge pages)
ARENA_SLACK = 64 << 20
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
_LEFTOVER = re.compile(r"^[0-9a-f]{40}(\.unsealed)?$")  # one-file-per-object stores before the arena


@dataclasses.dataclass(eq=False)
class Entry:
    offset: int
    size: int
    sealed: bool = False
    since: float = dataclasses.field(default_factory=time.monotonic)  # created, then sealed
    pins: int = 0  # its writer until sealed, readers holding it (leases, transfers, spills in progress)
    deleted: bool = False  # gone from the store; its range waits for the last pin


def align_of(size: int) -> int:
    return PAGE if size >= LARGE_OBJECT else SMALL_ALIGN


class ShmStore:
    def __init__(self, directory: pathlib.Path, capacity: int, pool_fraction: float = 0.5) -> None:
        self.directory = directory
        self.capacity = capacity
        self.used = 0  # bytes of objects (deleted ones still pinned included)
        self._objects: dict[bytes, Entry] = {}
        self._deleted_writes: dict[bytes, Entry] = {}  # deleted before sealed: freed at Seal or Abort
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._remove_leftovers()
        self.arena_path = directory / (ARENA_PREFIX + os.urandom(8).hex())
        arena_size = -(-(2 * capacity + ARENA_SLACK) // PAGE) * PAGE
        self._fd = os.open(self.arena_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self._fd, arena_size)  # sparse: pages exist only once written
        self._map = mmap.mmap(self._fd, arena_size)
        self._allocator = ArenaAllocator(arena_size)
        self.pool_limit = int(capacity * pool_fraction)
        self.reused = 0  # objects placed in touched memory

    def _remove_leftovers(self) -> None:
        """What a store killed before us in this directory left: its arena
        (the memory goes once no process maps it) and its readers' lease files."""
        for name in ("free", "leases"):
            shutil.rmtree(self.directory / name, ignore_errors=True)
        for path in self.directory.iterdir():
            if _LEFTOVER.match(path.name) or path.name.startswith(ARENA_PREFIX):
                path.unlink(missing_ok=True)

    @property
    def arena_fd(self) -> int:
        return self._fd

    @staticmethod
    def _check_id(object_id: bytes) -> bytes:
        return ids.check(object_id, ids.OBJECT_ID_SIZE, "object_id")

    def create(self, object_id: bytes, size: int) -> Entry:
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
        placed = self._allocator.allocate(size, align_of(size))
        if placed is None:
            raise ResourceExhausted(f"object store full: no free range of {size} bytes in its arena")
        offset, touched = placed
        self.reused += touched
        entry = Entry(offset, size, pins=1)  # the writer's, until Seal or Abort
        self._objects[object_id] = entry
        self.used += size
        self._bound_pool(size)
        return entry

    def fits(self, size: int) -> bool:
        return self.used + size <= self.capacity and self._allocator.can_fit(size, align_of(size))

    def seal(self, object_id: bytes) -> Entry:
        entry = self._objects.get(self._check_id(object_id))
        if entry is None:
            written = self._deleted_writes.pop(object_id, None)
            if written is not None:
                self.unpin(written)  # deleted while written: its range goes now
            raise NotFound(f"object {object_id.hex()} was not created (or was deleted while written)")
        if not entry.sealed:
            entry.sealed = True
            entry.since = time.monotonic()
            self.unpin(entry)
        return entry

    def abort(self, object_id: bytes) -> None:
        entry = self._objects.get(self._check_id(object_id))
        if entry is None:
            written = self._deleted_writes.pop(object_id, None)
            if written is not None:
                self.unpin(written)
            return
        if entry.sealed:
            raise FailedPrecondition(f"object {object_id.hex()} is sealed; delete it instead")
        del self._objects[object_id]
        entry.deleted = True
        self.unpin(entry)

    def delete(self, object_ids: list[bytes]) -> int:
        deleted = 0
        for object_id in object_ids:
            entry = self._objects.get(self._check_id(object_id))
            if entry is not None:
                self._remove(object_id, entry)
                deleted += 1
        return deleted

    def drop(self, object_id: bytes) -> None:
        """Remove an unpinned object to free its memory now (spilled or evicted)."""
        entry = self._objects[object_id]
        assert entry.pins == 0, "a pinned object is never spilled or evicted"
        self._remove(object_id, entry)

    def _remove(self, object_id: bytes, entry: Entry) -> None:
        del self._objects[object_id]
        entry.deleted = True
        if not entry.sealed:  # its writer may still be writing: the range waits for its Seal or Abort
            entry.since = time.monotonic()
            self._deleted_writes[object_id] = entry
        elif entry.pins == 0:
            self._free(entry)

    def free_abandoned_writes(self, grace_s: float, now: float | None = None) -> int:
        """Free objects deleted while being written whose writer neither
        sealed nor aborted them within `grace_s` (it died); how many."""
        cutoff = (time.monotonic() if now is None else now) - grace_s
        stale = [object_id for object_id, e in self._deleted_writes.items() if e.since <= cutoff]
        for object_id in stale:
            self.unpin(self._deleted_writes.pop(object_id))
        return len(stale)

    def pin(self, entry: Entry) -> None:
        entry.pins += 1

    def unpin(self, entry: Entry) -> None:
        entry.pins -= 1
        if entry.pins == 0 and entry.deleted:
            self._free(entry)

    def _free(self, entry: Entry) -> None:
        self.used -= entry.size
        start, length = self._allocator.free(entry.offset, entry.size, time.monotonic())
        if self.pool_bytes > self.pool_limit:
            self._punch(start, length)

    # ---- touched free memory ----------------------------------------------

    @property
    def resident_bytes(self) -> int:
        """Shared memory the arena holds now (objects and touched free pages)."""
        return os.fstat(self._fd).st_blocks * 512

    @property
    def pool_bytes(self) -> int:
        """Touched free memory kept for reuse (an estimate: objects' pages
        not yet written count as free here)."""
        return max(0, self.resident_bytes - self.used)

    def _bound_pool(self, size: int) -> None:
        """Give back touched free memory, the longest idle first, while it
        and the objects (with `size` more on the way) exceed the capacity."""
        if self.resident_bytes + size <= self.capacity:
            return
        for start, extent in self._allocator.dirty_extents():
            self._punch(start, extent.length)
            if self.resident_bytes + size <= self.capacity:
                return

    def trim_pool(self, idle_s: float, now: float | None = None) -> int:
        """Give back touched free memory nobody reused for `idle_s`; how
        many free ranges were punched."""
        cutoff = (time.monotonic() if now is None else now) - idle_s
        stale = [(start, e.length) for start, e in self._allocator.dirty_extents() if e.since <= cutoff]
        for start, length in stale:
            self._punch(start, length)
        return len(stale)

    def _punch(self, start: int, length: int) -> None:
        """Free the pages wholly inside the free extent at `start`."""
        lo = -(-start // PAGE) * PAGE
        hi = (start + length) // PAGE * PAGE
        if hi > lo and _libc.fallocate(self._fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, lo, hi - lo) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"punching the store's arena: {os.strerror(err)}")
        self._allocator.mark_clean(start)

    # ---- reading --------------------------------------------------------------

    def view(self, entry: Entry) -> memoryview:
        """The object's bytes in the store's own mapping (restores and tests
        write through it, TLS transfers read it)."""
        return memoryview(self._map)[entry.offset:entry.offset + entry.size]

    def objects(self) -> dict[bytes, Entry]:
        """Every object, oldest first."""
        return self._objects

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
        try:
            self._map.close()
        except BufferError:
            pass  # a view of ours is still alive: the mapping goes with the process
        os.close(self._fd)
        shutil.rmtree(self.directory, ignore_errors=True)
        self._objects.clear()
        self.used = 0
