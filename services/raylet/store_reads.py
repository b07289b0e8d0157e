"""The raylet's reads and writes of the node's object store (for clients in
other languages, whose values it streams): the store's arena mapped once
(ember_common.store_files), values written into the range a Create hands
out, and read by pinning them under the raylet's own lease just long
enough to copy them out (the bytes go into gRPC messages anyway).

A copy runs in a thread, and the range is let go (unpinned, or aborted)
only once that thread is done, even when the RPC is cancelled meanwhile: a
thread still writing into a range the store has handed to another object
would corrupt it."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

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
        if entry.status == _NO_ROOM:
            raise ResourceExhausted(f"object {object_id.hex()} cannot be brought back into the node's store: "
                                    f"{entry.reason}")
        if entry.status != _PINNED:
            raise FailedPrecondition(f"object {object_id.hex()} cannot be read from the node's store: "
                                     f"{entry.reason}")
        lease_id = self._lease.lease_id if self._lease is not None else b""

        async def unpin(_ok: bool) -> None:
            await self._leases().Unpin(object_leases_pb2.UnpinRequest(lease_id=lease_id, object_ids=[object_id]),
                                       timeout=60)

        try:
            view = self._arena.writable(reply.path, entry.offset, entry.size)
        except BaseException:
            await unpin(False)
            raise
        return await _in_thread(lambda: bytes(view), unpin)

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

        async def abort_unless(ok: bool) -> None:
            if not ok:
                await store.Abort(objectstore_pb2.AbortRequest(object_id=object_id), timeout=10)

        try:
            view = self._arena.writable(reply.path, reply.offset, so.total_size)
        except BaseException:
            await abort_unless(False)
            raise
        await _in_thread(lambda: so.write_into(view), abort_unless)
        await store.Seal(objectstore_pb2.SealRequest(object_id=object_id), timeout=60)


async def _in_thread(call: Callable[[], Any], after: Callable[[bool], Awaitable[None]]) -> Any:
    """`call()` in a thread; `after(succeeded)` once it has returned, even if
    we are cancelled before that."""
    work = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        result = await asyncio.shield(work)
    except asyncio.CancelledError:
        work.add_done_callback(lambda _: asyncio.ensure_future(after(False)))
        raise
    except BaseException:
        await after(False)
        raise
    await after(True)
    return result
