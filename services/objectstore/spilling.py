"""Making room in a full store, and bringing objects back.

When a new object does not fit, the oldest sealed objects nobody maps go
first: a copy pulled from another node is evicted (dropped; the node it came
from still has it), an object created here is spilled (copied to the spill
directory on disk, then dropped from shared memory). A reader that finds an
object gone asks `restore`: a spilled object is copied back, an evicted copy
pulled again from its source. Objects a reader pins (reader_leases.py) or a
writer is filling are never touched. Disk copies run in a thread, so the
store keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
from typing import Awaitable, Callable

from ember_common.background import SharedRuns
from ember_common.errors import NotFound
from ember_objectstore.shm_store import Entry, ShmStore

log = logging.getLogger(__name__)

Pull = Callable[[bytes, str, int], Awaitable[Entry]]


class Spiller:
    def __init__(self, store: ShmStore, directory: pathlib.Path, fs_capacity_threshold: float = 0.95) -> None:
        self._store = store
        self.directory = directory
        # Spill no further once the spill directory's file system would be
        # fuller than this (Ray's local_fs_capacity_threshold): a full disk
        # breaks the node's logs and everything else that writes there.
        self.fs_capacity_threshold = fs_capacity_threshold
        # Why the last room-making stopped short of what it was asked for
        # (the disk), for the error the caller gets; "" if it did not.
        self.refusal = ""
        self._lock = asyncio.Lock()  # one room-making at a time
        self.spilled: dict[bytes, int] = {}  # object id -> size, on disk
        self.spilled_since: dict[bytes, float] = {}  # object id -> when it was sealed
        self.evicted: dict[bytes, tuple[str, int]] = {}  # pulled copies dropped: (source, size)
        self.sources: dict[bytes, str] = {}  # pulled copies here: where they came from
        self.pull: Pull | None = None  # set by the service (the Puller's pull)
        self._restoring: SharedRuns[bytes, str] = SharedRuns()
        self.spilled_bytes_total = 0
        self.restored_bytes_total = 0

    def spill_path(self, object_id: bytes) -> pathlib.Path:
        return self.directory / object_id.hex()

    async def make_room(self, size: int) -> None:
        """Free shared memory until `size` more bytes fit (if it can)."""
        store = self._store
        if store.fits(size) or size > store.capacity:
            return  # fits, or never will (Create says so)
        async with self._lock:
            self.refusal = ""
            for object_id, entry in list(store.objects().items()):
                if store.fits(size):
                    return
                if not entry.sealed or entry.pins or store.objects().get(object_id) is not entry:
                    continue  # being written, read, or deleted since we looked
                source = self.sources.pop(object_id, None)
                if source is not None:
                    self.evicted[object_id] = (source, entry.size)
                    store.drop(object_id)
                    log.info("evicting copy %s (%d bytes)", object_id.hex()[:12], entry.size)
                    continue
                self.directory.mkdir(parents=True, exist_ok=True)
                self.refusal = self._disk_refusal(entry.size)
                if self.refusal:
                    return
                target = self.spill_path(object_id)
                store.pin(entry)  # its range stays the object's while we copy

                def failed(entry: Entry = entry, target: pathlib.Path = target) -> None:
                    target.unlink(missing_ok=True)
                    target.with_suffix(".partial").unlink(missing_ok=True)
                    store.unpin(entry)

                try:
                    await in_threads([lambda: _copy_range(store.arena_fd, entry.offset, entry.size, target)], failed)
                except OSError as e:  # e.g. ENOSPC: what was copied goes, the object stays in memory
                    self.refusal = f"spilling to {self.directory} failed: {e.strerror or e}"
                    log.warning("%s", self.refusal)
                    return
                store.unpin(entry)
                if entry.deleted or entry.pins:  # deleted, or a reader pinned it, while we copied
                    target.unlink(missing_ok=True)
                    continue
                self.spilled[object_id] = entry.size
                self.spilled_since[object_id] = entry.since
                self.spilled_bytes_total += entry.size
                store.drop(object_id)
                log.info("spilled %s (%d bytes) to %s", object_id.hex()[:12], entry.size, self.directory)

    def _disk_refusal(self, size: int) -> str:
        """Why `size` more bytes may not go to the spill directory, or ""."""
        st = os.statvfs(self.directory)
        total = st.f_blocks * st.f_frsize
        used_after = total - st.f_bavail * st.f_frsize + size
        if total and used_after / total > self.fs_capacity_threshold:
            return (f"the spill directory {self.directory} would be {used_after / total:.0%} full, over the "
                    f"local_fs_capacity_threshold of {self.fs_capacity_threshold:.0%} "
                    f"({st.f_bavail * st.f_frsize} of {total} bytes free)")
        return ""

    async def restore(self, object_id: bytes) -> Entry:
        """The object back in shared memory. Concurrent restores of one
        object share the work."""
        return await self._restoring.join(object_id, lambda: self._restore(object_id))

    async def _restore(self, object_id: bytes) -> Entry:
        store = self._store
        entry = store.locate(object_id)
        if entry is not None:
            return entry
        if object_id in self.spilled:
            size = self.spilled[object_id]
            await self.make_room(size)
            entry = store.locate(object_id)
            if entry is None:  # another restore may have won
                entry = store.create(object_id, size)
                path, view = self.spill_path(object_id), store.view(entry)
                await in_threads([lambda: _read_into(path, view)], lambda: store.abort(object_id))
                store.seal(object_id)
                self.restored_bytes_total += size
            self._forget_spilled(object_id)
            return entry
        if object_id in self.evicted and self.pull is not None:
            source, size = self.evicted[object_id]
            entry = await self.pull(object_id, source, size)
            self.evicted.pop(object_id, None)
            return entry
        raise NotFound(f"object {object_id.hex()} is not in this store (freed, or never here)")

    def forget(self, object_ids: list[bytes]) -> int:
        """Objects deleted: drop their disk copies and records."""
        gone = 0
        for object_id in object_ids:
            self.sources.pop(object_id, None)
            if self.evicted.pop(object_id, None) is not None:
                gone += 1
            if object_id in self.spilled:
                self._forget_spilled(object_id)
                gone += 1
        return gone

    def older_than(self, age_s: float, now: float) -> list[bytes]:
        """Spilled objects sealed at least `age_s` ago."""
        return [object_id for object_id, since in self.spilled_since.items() if now - since >= age_s]

    def _forget_spilled(self, object_id: bytes) -> None:
        self.spilled.pop(object_id, None)
        self.spilled_since.pop(object_id, None)
        self.spill_path(object_id).unlink(missing_ok=True)

    def close(self) -> None:
        for object_id in list(self.spilled):
            self._forget_spilled(object_id)
        try:
            self.directory.rmdir()
        except OSError:
            pass


async def in_threads(calls: list[Callable[[], object]], on_failure: Callable[[], None]) -> None:
    """Run blocking calls that read or write an object's range of the arena,
    each in a thread, and only then let the range go: `on_failure` runs once
    every call has returned, even when we are cancelled meanwhile (a thread
    still writing into a range that was freed and handed to another object
    would corrupt it). Raises the first call's error."""
    work = asyncio.gather(*(asyncio.to_thread(call) for call in calls), return_exceptions=True)
    try:
        results = await asyncio.shield(work)
    except asyncio.CancelledError:
        work.add_done_callback(lambda _: on_failure())
        raise
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        on_failure()
        raise errors[0]


def _copy_range(fd: int, offset: int, size: int, target: pathlib.Path) -> None:
    """The arena's bytes [offset, offset+size) to a new file, in the kernel."""
    tmp = target.with_suffix(".partial")
    with open(tmp, "wb") as out:
        done = 0
        while done < size:
            sent = os.sendfile(out.fileno(), fd, offset + done, min(size - done, 64 << 20))
            if sent == 0:
                raise OSError(f"the arena ended {size - done} bytes early")
            done += sent
    tmp.rename(target)


def _read_into(path: pathlib.Path, view: memoryview) -> None:
    with open(path, "rb", buffering=0) as f:
        done = 0
        while done < view.nbytes:
            n = f.readinto(view[done:])
            if not n:
                raise OSError(f"{path} ended {view.nbytes - done} bytes early")
            done += n
