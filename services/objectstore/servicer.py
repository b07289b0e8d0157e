"""Thin gRPC handlers for the ObjectStore service."""

from __future__ import annotations

import time

import grpc.aio
from ember.v1 import objectstore_pb2 as pb
from ember.v1 import objectstore_pb2_grpc

from ember_common.errors import AlreadyExists, InvalidArgument
from ember_common.rpc import map_errors
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller
from ember_objectstore.transfer import Puller

Ctx = grpc.aio.ServicerContext


class ObjectStoreServicer(objectstore_pb2_grpc.ObjectStoreServicer):
    def __init__(self, store: ShmStore, puller: Puller, spiller: Spiller) -> None:
        self._store = store
        self._puller = puller
        self._spiller = spiller

    @map_errors
    async def Create(self, request: pb.CreateRequest, context: Ctx) -> pb.CreateReply:
        if request.object_id in self._spiller.spilled:
            raise AlreadyExists(f"object {request.object_id.hex()} already exists (spilled to disk)")
        await self._spiller.make_room(request.size)
        return pb.CreateReply(path=str(self._store.create(request.object_id, request.size)))

    @map_errors
    async def Seal(self, request: pb.SealRequest, context: Ctx) -> pb.SealReply:
        return pb.SealReply(path=str(self._store.seal(request.object_id)))

    @map_errors
    async def Abort(self, request: pb.AbortRequest, context: Ctx) -> pb.AbortReply:
        self._store.abort(request.object_id)
        return pb.AbortReply()

    @map_errors
    async def Delete(self, request: pb.DeleteRequest, context: Ctx) -> pb.DeleteReply:
        object_ids = list(request.object_ids)
        return pb.DeleteReply(deleted=self._store.delete(object_ids) + self._spiller.forget(object_ids))

    @map_errors
    async def Locate(self, request: pb.LocateRequest, context: Ctx) -> pb.LocateReply:
        reply = pb.LocateReply()
        for object_id in request.object_ids:
            entry = self._store.locate(object_id)
            reply.entries.add(
                object_id=object_id,
                found=entry is not None,
                path=str(self._store.path(object_id)) if entry else "",
                size=entry.size if entry else self._spiller.spilled.get(object_id, 0),
                spilled=entry is None and object_id in self._spiller.spilled,
            )
        return reply

    @map_errors
    async def List(self, request: pb.ListRequest, context: Ctx) -> pb.ListReply:
        if request.min_sealed_age_s < 0 or request.min_unsealed_age_s < 0:
            raise InvalidArgument("ages must not be negative")
        now = time.monotonic()
        found = self._store.older_than(request.min_sealed_age_s, request.min_unsealed_age_s, now)
        found += self._spiller.older_than(request.min_sealed_age_s, now)
        return pb.ListReply(object_ids=found)

    @map_errors
    async def Stats(self, request: pb.StatsRequest, context: Ctx) -> pb.StatsReply:
        s, spiller = self._store, self._spiller
        return pb.StatsReply(
            capacity=s.capacity,
            used=s.used,
            num_objects=s.num_objects,
            num_unsealed=s.num_unsealed,
            directory=str(s.directory),
            num_spilled=len(spiller.spilled),
            spilled_bytes=sum(spiller.spilled.values()),
            spilled_bytes_total=spiller.spilled_bytes_total,
            restored_bytes_total=spiller.restored_bytes_total,
            num_evicted=len(spiller.evicted),
            spill_directory=str(spiller.directory),
        )

    @map_errors
    async def Pull(self, request: pb.PullRequest, context: Ctx) -> pb.PullReply:
        if not request.source_address:
            raise InvalidArgument("source_address is required")
        if request.size <= 0:
            raise InvalidArgument(f"size must be positive, got {request.size}")
        return pb.PullReply(path=await self._puller.pull(request.object_id, request.source_address, request.size))

    @map_errors
    async def Restore(self, request: pb.RestoreRequest, context: Ctx) -> pb.RestoreReply:
        return pb.RestoreReply(path=await self._spiller.restore(request.object_id))
