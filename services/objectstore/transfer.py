"""Node-to-node object transfer: serving reads of sealed objects to other
stores, and pulling objects from them.

A pull splits the object into ranges and reads them over several gRPC
streams at once (each a stream of chunks, so many chunks are in flight),
writing each chunk straight into the new file's mapping. Concurrent pulls of
one object share one transfer.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import os
from typing import AsyncIterator

import grpc
import grpc.aio
from ember.v1 import objectstore_pb2 as pb
from ember.v1 import objectstore_pb2_grpc

from ember._private import rpc
from ember._private.service import NotFound, Unavailable
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller

log = logging.getLogger(__name__)

CHUNK_SIZE = 4 << 20
# Ranges read at once for a large object, and the smallest range worth a
# stream of its own.
MAX_STREAMS = 4
MIN_RANGE = 16 << 20


def read_chunks(store: ShmStore, spiller: Spiller, object_id: bytes, offset: int, length: int) -> "ChunkReader":
    entry = store.locate(object_id)
    if entry is not None:
        path, size = str(store.path(object_id)), entry.size
    elif object_id in spiller.spilled:  # read from disk: no need to restore it here
        path, size = str(spiller.spill_path(object_id)), spiller.spilled[object_id]
    else:
        raise NotFound(f"object {object_id.hex()} is not in this store")
    end = size if length == 0 else min(size, offset + length)
    try:
        return ChunkReader(path, offset, end)
    except FileNotFoundError:
        raise NotFound(f"object {object_id.hex()} left this store meanwhile; try again") from None


class ChunkReader:
    """Chunks of one file range. Holds a shared flock while it reads, like
    any reader, so the store never recycles the file under it."""

    def __init__(self, path: str, offset: int, end: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        self._offset = offset
        self._end = end

    def __aiter__(self) -> AsyncIterator[pb.ReadChunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[pb.ReadChunk]:
        try:
            while self._offset < self._end:
                n = min(CHUNK_SIZE, self._end - self._offset)
                data = os.pread(self._fd, n, self._offset)
                if not data:
                    return
                self._offset += len(data)
                yield pb.ReadChunk(data=data)
        finally:
            os.close(self._fd)


class Puller:
    def __init__(self, store: ShmStore, spiller: Spiller, token: str) -> None:
        self._store = store
        self._spiller = spiller
        # As call metadata: grpc.aio's client interceptors drop it on streams.
        self._metadata = rpc.token_metadata(token)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._inflight: dict[bytes, asyncio.Future[None]] = {}

    async def pull(self, object_id: bytes, source: str, size: int) -> str:
        """Copy the object from the store at `source`; the local path."""
        if self._store.locate(object_id) is not None:
            return str(self._store.path(object_id))
        running = self._inflight.get(object_id)
        if running is None:
            running = self._inflight[object_id] = asyncio.ensure_future(self._transfer(object_id, source, size))
            running.add_done_callback(lambda _f: self._inflight.pop(object_id, None))
        await asyncio.shield(running)
        return str(self._store.path(object_id))

    async def _transfer(self, object_id: bytes, source: str, size: int) -> None:
        stub = self._stub(source)
        await self._spiller.make_room(size)
        path = self._store.create(object_id, size)
        try:
            fd = os.open(path, os.O_RDWR)
            try:
                mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
            finally:
                os.close(fd)
            try:
                n = max(1, min(MAX_STREAMS, size // MIN_RANGE))
                step = -(-size // n)
                await asyncio.gather(*(self._read_range(stub, object_id, mm, off, min(step, size - off))
                                       for off in range(0, size, step)))
            finally:
                mm.close()
        except BaseException:
            self._store.abort(object_id)
            raise
        self._store.seal(object_id)
        self._spiller.sources[object_id] = source  # a copy: evicted, not spilled, when room is needed

    async def _read_range(self, stub: objectstore_pb2_grpc.ObjectStoreStub, object_id: bytes, mm: mmap.mmap,
                          offset: int, length: int) -> None:
        pos, end = offset, offset + length
        try:
            async for chunk in stub.Read(pb.ReadRequest(object_id=object_id, offset=offset, length=length),
                                         metadata=self._metadata):
                data = chunk.data
                if pos + len(data) > end:
                    raise Unavailable(f"the source sent more than the {length} bytes asked for")
                mm[pos:pos + len(data)] = data
                pos += len(data)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(e.details() or f"object {object_id.hex()} is not at the source") from None
            raise Unavailable(f"reading object {object_id.hex()} from its node failed: {e.code().name}: "
                              f"{e.details()}") from None
        if pos != end:
            raise Unavailable(f"object {object_id.hex()}: the source ended after {pos - offset} of {length} bytes")

    def _stub(self, source: str) -> objectstore_pb2_grpc.ObjectStoreStub:
        channel = self._channels.get(source)
        if channel is None:
            channel = self._channels[source] = grpc.aio.insecure_channel(source, options=rpc.CHANNEL_OPTIONS)
        return objectstore_pb2_grpc.ObjectStoreStub(channel)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
