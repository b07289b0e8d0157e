"""The raylet's reads and writes of the node's object store (for clients in
other languages, whose values it streams): the store's arena mapped once
(ember_common.store_files), values written into the range a Create hands
out, and read by pinning them under the raylet's own lease just long
enough to copy them out (the bytes go into gRPC messages anyway)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import grpc
from ember.v1 import object_leases_pb2, objectstore_pb2

from ember_common.errors import FailedPrecondition, ResourceExhausted
from ember_common.object_layout import SerializedObject
from ember_common.store_files import ArenaMapping, LeaseFile

_PINNED = object_leases_pb2.PinReply.Status.PINNED
_NO_ROOM = object_leases_pb2.PinReply.Status.NO_ROOM


class StoreReads:
    def __init__(self, store: Callable[[], Any], leases: Callable[[], Any], store_dir: str) -> None:
        self._store = store
        self._leases = leases
        self._store_dir = store_dir
        self._arena = ArenaMapping()
        self._lease: LeaseFile | None = None

    async def read(self, object_id: bytes) -> bytes:
        """A stored value's bytes (a copy: the pin goes before we return)."""
        reply = await self._pin(object_id)
        (entry,) = reply.entries
        try:
            if entry.status == _NO_ROOM:
                raise ResourceExhausted(f"object {object_id.hex()} cannot be brought back into the node's store: "
                                        f"{entry.reason}")
            if entry.status != _PINNED:
                raise FailedPrecondition(f"object {object_id.hex()} cannot be read from the node's store: "
                                         f"{entry.reason}")
            view = self._arena.writable(reply.path, entry.offset, entry.size)
            return await asyncio.to_thread(bytes, view)
        finally:
            if entry.status == _PINNED:
                assert self._lease is not None
                await self._leases().Unpin(object_leases_pb2.UnpinRequest(lease_id=self._lease.lease_id,
                                                                         object_ids=[object_id]), timeout=60)

    async def _pin(self, object_id: bytes) -> Any:
        for attempt in range(2):
            if self._lease is None:
                self._lease = LeaseFile(self._store_dir)
            try:
                return await self._leases().Pin(object_leases_pb2.PinRequest(
                    lease_id=self._lease.lease_id, object_ids=[object_id]), timeout=600)
            except grpc.aio.AioRpcError as e:
                # The store was restarted (and removed our lease file): a new lease, once.
                if e.code() != grpc.StatusCode.FAILED_PRECONDITION or attempt:
                    raise FailedPrecondition(f"object {object_id.hex()} cannot be read from the node's store: "
                                             f"{e.details()}") from None
                self._lease.close()
                self._lease = None

    async def write(self, object_id: bytes, so: SerializedObject) -> None:
        """Create the object in the store, write `so` into it, seal it."""
        store = self._store()
        try:
            reply = await store.Create(objectstore_pb2.CreateRequest(object_id=object_id, size=so.total_size),
                                       timeout=60)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise ResourceExhausted(f"no room for the value in the node's object store: {e.details()}") from None
            raise
        try:
            await asyncio.to_thread(so.write_into, self._arena.writable(reply.path, reply.offset, so.total_size))
        except BaseException:
            await store.Abort(objectstore_pb2.AbortRequest(object_id=object_id), timeout=10)
            raise
        await store.Seal(objectstore_pb2.SealRequest(object_id=object_id), timeout=60)
