"""Thin gRPC handlers for the ObjectStore and ObjectLeases services:
validate, call the store (ember_objectstore.store) or the puller, answer."""

from __future__ import annotations

import grpc.aio
from ember.v1 import object_leases_pb2 as leases_pb
from ember.v1 import object_leases_pb2_grpc
from ember.v1 import objectstore_pb2 as pb
from ember.v1 import objectstore_pb2_grpc

from ember_common import service_spans
from ember_common.errors import InvalidArgument
from ember_common.rpc import map_errors
from ember_objectstore.store import ObjectStore
from ember_objectstore.transfer import Puller

Ctx = grpc.aio.ServicerContext


class ObjectStoreServicer(objectstore_pb2_grpc.ObjectStoreServicer):
    def __init__(self, store: ObjectStore, puller: Puller) -> None:
        self._store = store
        self._puller = puller
        self._arena = str(store.shm.arena_path)

    @map_errors
    @service_spans.traced("object create", lambda r: {"ember.object_id": r.object_id, "ember.bytes": r.size})
    async def Create(self, request: pb.CreateRequest, context: Ctx) -> pb.CreateReply:
        entry = await self._store.create(request.object_id, request.size)
        return pb.CreateReply(path=self._arena, offset=entry.offset)

    @map_errors
    @service_spans.traced("object seal", lambda r: {"ember.object_id": r.object_id})
    async def Seal(self, request: pb.SealRequest, context: Ctx) -> pb.SealReply:
        return pb.SealReply(path=self._arena, offset=self._store.seal(request.object_id).offset)

    @map_errors
    async def Abort(self, request: pb.AbortRequest, context: Ctx) -> pb.AbortReply:
        self._store.abort(request.object_id)
        return pb.AbortReply()

    @map_errors
    async def Delete(self, request: pb.DeleteRequest, context: Ctx) -> pb.DeleteReply:
        return pb.DeleteReply(deleted=self._store.delete(list(request.object_ids)))

    @map_errors
    async def Locate(self, request: pb.LocateRequest, context: Ctx) -> pb.LocateReply:
        return pb.LocateReply(entries=[self._store.locate(object_id) for object_id in request.object_ids])

    @map_errors
    async def List(self, request: pb.ListRequest, context: Ctx) -> pb.ListReply:
        if request.min_sealed_age_s < 0 or request.min_unsealed_age_s < 0:
            raise InvalidArgument("ages must not be negative")
        return pb.ListReply(object_ids=self._store.older_than(request.min_sealed_age_s, request.min_unsealed_age_s))

    @map_errors
    async def Stats(self, request: pb.StatsRequest, context: Ctx) -> pb.StatsReply:
        return self._store.stats()

    @map_errors
    async def Pull(self, request: pb.PullRequest, context: Ctx) -> pb.PullReply:
        host, _, port = request.source_address.rpartition(":")
        if not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise InvalidArgument(f"source_address must be host:port, got {request.source_address[:100]!r}")
        if request.size <= 0:
            raise InvalidArgument(f"size must be positive, got {request.size}")
        with service_spans.rpc_span(context, "object pull") as span:
            if span is not None:
                span.attributes.update({"ember.object_id": request.object_id, "ember.bytes": request.size,
                                        "ember.from_address": request.source_address})
            # (the source's push spans are children of this one)
            entry = await self._puller.pull(request.object_id, request.source_address, request.size,
                                            span.traceparent if span is not None else "")
        return pb.PullReply(path=self._arena, offset=entry.offset)

    @map_errors
    async def Restore(self, request: pb.RestoreRequest, context: Ctx) -> pb.RestoreReply:
        return pb.RestoreReply(path=self._arena, offset=(await self._store.restore(request.object_id)).offset)


class ObjectLeasesServicer(object_leases_pb2_grpc.ObjectLeasesServicer):
    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    @map_errors
    async def Pin(self, request: leases_pb.PinRequest, context: Ctx) -> leases_pb.PinReply:
        entries = await self._store.pin(request.lease_id, list(request.object_ids))
        return leases_pb.PinReply(path=str(self._store.shm.arena_path), entries=entries)

    @map_errors
    async def Unpin(self, request: leases_pb.UnpinRequest, context: Ctx) -> leases_pb.UnpinReply:
        return leases_pb.UnpinReply(released=self._store.unpin(request.lease_id, list(request.object_ids)))
