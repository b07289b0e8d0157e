"""Node-to-node object transfer: a plain TCP data plane next to the store's
gRPC API.

Why not gRPC: every byte through Python gRPC is copied three times (file ->
bytes -> message -> bytes) and costs CPU per message; over a plain socket the
sender `sendfile`s straight from the object's file (shared memory, or the
spill file on disk) and the receiver `splice`s from the socket into the new
object's file, so a transfer costs the kernel's socket copy and nothing
else (bench/transfer.py).

Protocol, one range per connection: the client sends a 2-byte token length,
the cluster token (compared in constant time before anything else is read),
the 20-byte object id and the range as two little-endian uint64 (offset,
length; length 0 = to the end). The server answers one status byte (0 ok,
1 not found, 2 bad token, 3 bad request) and the range's length as uint64,
then the bytes, and closes.

A pull splits the object into ranges read over several connections at once,
each in a thread (the copy releases the GIL); concurrent pulls of one object
share one transfer.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hmac
import logging
import os
import select
import socket
import struct

from ember_common import ids
from ember_common.background import SharedRuns
from ember_common.errors import NotFound, Unavailable
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller

log = logging.getLogger(__name__)

OK, NOT_FOUND, BAD_TOKEN, BAD_REQUEST = 0, 1, 2, 3
_RANGE = struct.Struct("<QQ")
_REPLY = struct.Struct("<BQ")
# Ranges read at once for a large object, and the smallest range worth a
# connection of its own.
MAX_STREAMS = 4
MIN_RANGE = 16 << 20
_RECV = 8 << 20  # bytes asked per recv_into (where splice cannot be used)
_PIPE_BYTES = 1 << 20  # a splice pipe's size (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_TIMEOUT_S = 30.0


class TransferServer:
    """Serves ranges of this store's sealed (or spilled) objects."""

    def __init__(self, store: ShmStore, spiller: Spiller, token: str) -> None:
        self._store = store
        self._spiller = spiller
        self._token = token.encode()
        self._server: asyncio.base_events.Server | None = None
        self.sent_bytes = 0  # to other nodes, since start (metrics)

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _locate(self, object_id: bytes) -> tuple[str, int] | None:
        entry = self._store.locate(object_id)
        if entry is not None:
            return str(self._store.path(object_id)), entry.size
        if object_id in self._spiller.spilled:  # straight from disk: no need to restore it here
            return str(self._spiller.spill_path(object_id)), self._spiller.spilled[object_id]
        return None

    async def _open_locked(self, object_id: bytes) -> tuple[object, int] | None:
        """The object's file, open and share-locked like any reader's (the
        store neither recycles nor spills it meanwhile), and its size. Never
        blocks the loop: while the store is spilling the object (holding it
        exclusively), wait and look again, on disk by then."""
        deadline = asyncio.get_running_loop().time() + _TIMEOUT_S
        while True:
            found = self._locate(object_id)
            if found is None:
                return None
            path, size = found
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                f = None  # moved (spilled, restored) meanwhile: look again
            if f is not None:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                    return f, size
                except BlockingIOError:
                    f.close()
            if asyncio.get_running_loop().time() > deadline:
                return None
            await asyncio.sleep(0.005)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            n = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), _TIMEOUT_S), "little")
            token = await asyncio.wait_for(reader.readexactly(n), _TIMEOUT_S)
            if not hmac.compare_digest(token, self._token):
                writer.write(_REPLY.pack(BAD_TOKEN, 0))
                return
            head = await asyncio.wait_for(reader.readexactly(ids.OBJECT_ID_SIZE + _RANGE.size), _TIMEOUT_S)
            object_id = head[:ids.OBJECT_ID_SIZE]
            offset, length = _RANGE.unpack(head[ids.OBJECT_ID_SIZE:])
            opened = await self._open_locked(object_id)
            if opened is None:
                writer.write(_REPLY.pack(NOT_FOUND, 0))
                return
            f, size = opened
            with f:
                if offset > size:
                    writer.write(_REPLY.pack(BAD_REQUEST, 0))
                    return
                count = size - offset if length == 0 else min(length, size - offset)
                writer.write(_REPLY.pack(OK, count))
                await writer.drain()
                await asyncio.get_running_loop().sendfile(writer.transport, f, offset, count)
                self.sent_bytes += count
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass  # the client went away or never spoke
        finally:
            writer.close()


class Puller:
    def __init__(self, store: ShmStore, spiller: Spiller, token: str) -> None:
        self._store = store
        self._spiller = spiller
        raw = token.encode()
        self._hello = len(raw).to_bytes(2, "little") + raw
        self._inflight: SharedRuns[bytes, None] = SharedRuns()
        self.received_bytes = 0  # from other nodes, since start (metrics)

    async def pull(self, object_id: bytes, source: str, size: int) -> str:
        """Copy the object from the store whose transfer address is `source`
        (host:port); the local path."""
        if self._store.locate(object_id) is not None:
            return str(self._store.path(object_id))
        await self._inflight.join(object_id, lambda: self._transfer(object_id, source, size))
        return str(self._store.path(object_id))

    async def _transfer(self, object_id: bytes, source: str, size: int) -> None:
        host, _, port = source.rpartition(":")
        await self._spiller.make_room(size)
        path = self._store.create(object_id, size)
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                n = max(1, min(MAX_STREAMS, size // MIN_RANGE))
                step = -(-size // n)
                await asyncio.gather(*(asyncio.to_thread(self._read_range, (host, int(port)), object_id, fd, off,
                                                         min(step, size - off))
                                       for off in range(0, size, step)))
            finally:
                os.close(fd)
        except BaseException:
            self._store.abort(object_id)
            raise
        self._store.seal(object_id)
        self.received_bytes += size
        self._spiller.sources[object_id] = source  # a copy: evicted, not spilled, when room is needed

    def _read_range(self, address: tuple[str, int], object_id: bytes, fd: int, offset: int, length: int) -> None:
        """Blocking, in a thread: one range straight into the new object's file."""
        where = f"object {object_id.hex()} from {address[0]}:{address[1]}"
        try:
            with socket.create_connection(address, timeout=_TIMEOUT_S) as sock:
                sock.sendall(self._hello + object_id + _RANGE.pack(offset, length))
                status, count = _REPLY.unpack(_recv_exactly(sock, _REPLY.size))
                if status == NOT_FOUND:
                    raise NotFound(f"{where}: the source does not have it")
                if status != OK:
                    raise Unavailable(f"{where}: the source refused the request "
                                      f"({'bad token' if status == BAD_TOKEN else 'bad range'})")
                if count != length:
                    raise Unavailable(f"{where}: the source has {count} bytes at offset {offset}, {length} expected")
                try:
                    _splice_range(sock, fd, offset, length, where)
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise
                    _copy_range(sock, fd, offset, length, where)  # a kernel or file that cannot splice
        except OSError as e:
            raise Unavailable(f"reading {where} failed: {e}") from None


def _splice_range(sock: socket.socket, fd: int, offset: int, length: int, where: str) -> None:
    """Move a range from the socket into the file at `offset` through a pipe:
    the kernel hands the socket's pages to the pipe and copies them into the
    file once, with no mapping of ours to fault in page by page (about twice
    as fast as recv_into a fresh mapping: bench/transfer.py)."""
    r, w = os.pipe()
    try:
        try:
            fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:
            pass  # the default pipe size (64 KiB) works, in more calls
        sock.setblocking(False)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        pos = 0
        while pos < length:
            try:
                n = os.splice(sock.fileno(), w, min(length - pos, _PIPE_BYTES))
            except BlockingIOError:
                if not poller.poll(_TIMEOUT_S * 1000):
                    raise Unavailable(f"{where}: nothing came for {_TIMEOUT_S:g} s after {pos} of {length} bytes")
                continue
            if n == 0:
                raise Unavailable(f"{where}: the source closed after {pos} of {length} bytes")
            moved = 0
            while moved < n:  # the pipe holds n bytes: this never waits
                moved += os.splice(r, fd, n - moved, offset_dst=offset + pos + moved)
            pos += n
    finally:
        os.close(r)
        os.close(w)


def _copy_range(sock: socket.socket, fd: int, offset: int, length: int, where: str) -> None:
    sock.settimeout(_TIMEOUT_S)
    buffer = bytearray(min(length, _RECV))
    view, pos = memoryview(buffer), 0
    while pos < length:
        got = sock.recv_into(view, min(length - pos, len(buffer)))
        if got == 0:
            raise Unavailable(f"{where}: the source closed after {pos} of {length} bytes")
        os.pwrite(fd, view[:got], offset + pos)
        pos += got


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the source closed the connection")
        data += chunk
    return data
