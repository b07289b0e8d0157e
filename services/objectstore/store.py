"""The store as its API sees it: the objects in shared memory (ShmStore)
together with those spilled to disk or evicted (Spiller). An object counts
as present wherever it is; making room for a new one spills or evicts old
ones first."""

from __future__ import annotations

import pathlib
import time

from ember.v1 import objectstore_pb2 as pb

from ember_common.errors import AlreadyExists, ResourceExhausted
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller


# Where an object is: `path` in shared memory if `found` there, otherwise
# on disk if `spilled` (with its `size`); neither if freed or evicted.
Location = pb.LocateReply.Entry


class ObjectStore:
    def __init__(self, shm: ShmStore, spiller: Spiller) -> None:
        self.shm = shm
        self.spiller = spiller

    async def create(self, object_id: bytes, size: int) -> pathlib.Path:
        """A new object's file to fill (unsealed), after making room for it."""
        if object_id in self.spiller.spilled:
            raise AlreadyExists(f"object {object_id.hex()} already exists (spilled to disk)")
        await self.spiller.make_room(size)
        try:
            return self.shm.create(object_id, size)
        except ResourceExhausted as e:
            if self.spiller.refusal:  # not for want of objects to spill: the disk
                raise ResourceExhausted(f"{e}; nothing more can be spilled: {self.spiller.refusal}") from None
            raise

    def seal(self, object_id: bytes) -> pathlib.Path:
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
            return Location(object_id=object_id, found=True, path=str(self.shm.path(object_id)), size=entry.size)
        spilled = self.spiller.spilled
        return Location(object_id=object_id, size=spilled.get(object_id, 0), spilled=object_id in spilled)

    def older_than(self, sealed_age_s: float, unsealed_age_s: float) -> list[bytes]:
        """Objects sealed at least `sealed_age_s` ago (in memory or on
        disk), or still unsealed `unsealed_age_s` after their creation."""
        now = time.monotonic()
        return self.shm.older_than(sealed_age_s, unsealed_age_s, now) + self.spiller.older_than(sealed_age_s, now)

    async def restore(self, object_id: bytes) -> str:
        """The object back in shared memory (from disk, or pulled again); its path."""
        return await self.spiller.restore(object_id)

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
        )
