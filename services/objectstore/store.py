"""The store as its API sees it: the objects in shared memory (ShmStore)
together with those spilled to disk or evicted (Spiller), and the readers
pinning them (ReaderLeases). An object counts as present wherever it is;
making room for a new one spills or evicts old ones first."""

from __future__ import annotations

import time

from ember.v1 import object_leases_pb2 as leases_pb
from ember.v1 import objectstore_pb2 as pb

from ember_common.errors import AlreadyExists, NotFound, ResourceExhausted
from ember_objectstore.reader_leases import ReaderLeases
from ember_objectstore.shm_store import Entry, ShmStore
from ember_objectstore.spilling import Spiller

# Where an object is: at `offset` of the arena `path` if `found` there,
# otherwise on disk if `spilled` (with its `size`); neither if freed or evicted.
Location = pb.LocateReply.Entry
PinStatus = leases_pb.PinReply.Status
# A pinned object that keeps leaving memory before it can be pinned (the
# store is full of pinned objects): how often to bring it back before saying so.
_RESTORE_TRIES = 3


class ObjectStore:
    def __init__(self, shm: ShmStore, spiller: Spiller, leases: ReaderLeases) -> None:
        self.shm = shm
        self.spiller = spiller
        self.leases = leases

    async def create(self, object_id: bytes, size: int) -> Entry:
        """A new object's range to fill (unsealed), after making room for it."""
        if object_id in self.spiller.spilled:
            raise AlreadyExists(f"object {object_id.hex()} already exists (spilled to disk)")
        await self.spiller.make_room(size)
        if not self.shm.fits(size) and self.leases.reap():  # dead readers' pins held it up
            await self.spiller.make_room(size)
        try:
            return self.shm.create(object_id, size)
        except ResourceExhausted as e:
            if self.spiller.refusal:  # not for want of objects to spill: the disk
                raise ResourceExhausted(f"{e}; nothing more can be spilled: {self.spiller.refusal}") from None
            raise

    def seal(self, object_id: bytes) -> Entry:
        return self.shm.seal(object_id)

    def abort(self, object_id: bytes) -> None:
        self.shm.abort(object_id)

    def delete(self, object_ids: list[bytes]) -> int:
        """Delete objects wherever they are; how many there were."""
        return self.shm.delete(object_ids) + self.spiller.forget(object_ids)

    def locate(self, object_id: bytes) -> Location:
        """Where the object is; nothing is restored."""
        entry = self.shm.locate(object_id)
        if entry is not None:
            return Location(object_id=object_id, found=True, path=str(self.shm.arena_path), offset=entry.offset,
                            size=entry.size)
        spilled = self.spiller.spilled
        return Location(object_id=object_id, size=spilled.get(object_id, 0), spilled=object_id in spilled)

    def older_than(self, sealed_age_s: float, unsealed_age_s: float) -> list[bytes]:
        """Objects sealed at least `sealed_age_s` ago (in memory or on
        disk), or still unsealed `unsealed_age_s` after their creation."""
        now = time.monotonic()
        return self.shm.older_than(sealed_age_s, unsealed_age_s, now) + self.spiller.older_than(sealed_age_s, now)

    async def restore(self, object_id: bytes) -> Entry:
        """The object back in shared memory (from disk, or pulled again)."""
        return await self.spiller.restore(object_id)

    async def pin(self, lease_id: bytes, object_ids: list[bytes]) -> list[leases_pb.PinReply.Entry]:
        """Pin each object for the lease, bringing back what is not in memory."""
        ReaderLeases.check(lease_id)
        self.leases.pin_check(lease_id)
        out = []
        for object_id in object_ids:
            out.append(await self._pin_one(lease_id, object_id))
        return out

    async def _pin_one(self, lease_id: bytes, object_id: bytes) -> leases_pb.PinReply.Entry:
        for _ in range(_RESTORE_TRIES):
            entry = self.shm.locate(object_id)
            if entry is None:
                try:
                    await self.spiller.restore(object_id)
                except NotFound as e:
                    return leases_pb.PinReply.Entry(status=PinStatus.LOST, reason=str(e))
                except ResourceExhausted as e:
                    return leases_pb.PinReply.Entry(status=PinStatus.NO_ROOM, reason=str(e))
                entry = self.shm.locate(object_id)  # (spilled again meanwhile: once more)
            if entry is not None:
                self.leases.pin(lease_id, object_id, entry)
                return leases_pb.PinReply.Entry(status=PinStatus.PINNED, offset=entry.offset, size=entry.size)
        return leases_pb.PinReply.Entry(status=PinStatus.NO_ROOM, reason=(
            f"object {object_id.hex()} keeps leaving the node's object store (it is full of objects in use)"))

    def unpin(self, lease_id: bytes, object_ids: list[bytes]) -> int:
        return self.leases.unpin(lease_id, object_ids)

    def stats(self) -> pb.StatsReply:
        shm, spiller = self.shm, self.spiller
        return pb.StatsReply(
            capacity=shm.capacity,
            used=shm.used,
            num_objects=shm.num_objects,
            num_unsealed=shm.num_unsealed,
            directory=str(shm.directory),
            num_spilled=len(spiller.spilled),
            spilled_bytes=sum(spiller.spilled.values()),
            spilled_bytes_total=spiller.spilled_bytes_total,
            restored_bytes_total=spiller.restored_bytes_total,
            num_evicted=len(spiller.evicted),
            spill_directory=str(spiller.directory),
            resident_bytes=shm.resident_bytes,
            num_readers=self.leases.num_readers,
            num_pinned=self.leases.num_pinned,
        )
