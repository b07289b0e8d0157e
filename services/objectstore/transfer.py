"""Node-to-node object transfer: a plain TCP data plane next to the store's
gRPC API.

Why not gRPC: every byte through Python gRPC is copied three times (file ->
bytes -> message -> bytes) and costs CPU per message; over a plain socket the
sender `sendfile`s straight from the object's file (shared memory, or the
spill file on disk) and the receiver `splice`s from the socket into the new
object's file, so a transfer costs the kernel's socket copy and nothing
else (bench/transfer.py).

Protocol (plaintext: one range per connection): the client sends a 2-byte token length,
the cluster token (compared in constant time before anything else is read),
the 20-byte object id, the range as two little-endian uint64 (offset,
length; length 0 = to the end) and the puller's trace context (25 bytes,
zeros when none: transfer_spans.py). The server answers one status byte (0 ok,
1 not found, 2 bad token, 3 bad request) and the range's length as uint64,
then the bytes, and closes.

With TLS (`ember_common.tls`), each connection is mutual TLS first and the
same request and reply run inside it, each followed by 32 random bytes (the
puller's after its request, the source's after an OK reply) from which both
derive the connection's keys. Then both close TLS (close_notify, the TCP
connection stays open) and the range's bytes follow as AES-GCM frames
(sealed_frames.py: why, and why it is sound); user space encrypts and
decrypts them, so sendfile and splice are not used. The connection then
stays open for the puller's next range from that source: a sealed request,
a sealed reply and the bytes, with no handshake (sealed_channel.py).

A pull splits the object into ranges read over several connections at once,
each in a thread (the copy releases the GIL); concurrent pulls of one object
share one transfer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import fcntl
import functools
import hmac
import logging
import mmap
import os
import select
import socket
import ssl
import struct
import time
from typing import Any, Callable

from ember_common import ids, ports, tls
from ember_common.background import SharedRuns
from ember_common.errors import NotFound, Unavailable
from ember_objectstore import sealed_frames, transfer_spans
from ember_objectstore.sealed_channel import ChannelPool, PeerClosed, SealedChannel, file_writer
from ember_objectstore.sealed_frames import Kind
from ember_objectstore.shm_store import Entry, ShmStore
from ember_objectstore.spilling import Spiller, in_threads

log = logging.getLogger(__name__)

OK, NOT_FOUND, BAD_TOKEN, BAD_REQUEST = 0, 1, 2, 3
_RANGE = struct.Struct("<QQ")
# A request after its token: object id, range, trace context.
_HEAD_BYTES = ids.OBJECT_ID_SIZE + _RANGE.size + transfer_spans.CONTEXT_BYTES
_REPLY = struct.Struct("<BQ")
# Ranges read at once for a large object, and the smallest range worth a
# connection of its own.
MAX_STREAMS = 4
MIN_RANGE = 16 << 20
_RECV = 8 << 20  # bytes asked per recv_into (where splice cannot be used)
_PIPE_BYTES = 1 << 20  # a splice pipe's size (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_TIMEOUT_S = 30.0
# Threads serving TLS connections at once (each pull opens up to MAX_STREAMS).
_TLS_THREADS = 32
# An open TLS connection waits this long for its puller's next request (parked on the loop, no thread);
# a puller uses one again only if it has been idle for less than _REUSE_S, well inside it.
_IDLE_S = 30.0
_REUSE_S = 10.0


class TransferServer:
    """Serves ranges of this store's sealed (or spilled) objects.

    Plaintext connections are served on the event loop (sendfile). TLS ones
    each on a thread of their own pool: asyncio's TLS is pure Python over a
    memory BIO (about a tenth of the plaintext rate here), while a blocking
    SSLSocket does the handshake in OpenSSL with the GIL released; the
    frames that follow are sent from the same thread."""

    def __init__(self, store: ShmStore, spiller: Spiller, token: str) -> None:
        self._store = store
        self._spiller = spiller
        self._token = token.encode()
        self._server: asyncio.base_events.Server | None = None
        self._tls: ssl.SSLContext | None = None
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        # TLS connections waiting for their puller's next request: by descriptor, with their idle timer.
        self._parked: dict[int, tuple[SealedChannel, asyncio.TimerHandle]] = {}
        self._stopped = False
        self.sent_bytes = 0  # to other nodes, since start (metrics)

    async def start(self, host: str, port: int) -> int:
        files = tls.active()
        try:
            if files is None:
                self._server = await asyncio.start_server(self._serve, host, port)
                return self._server.sockets[0].getsockname()[1]
            self._listener = socket.create_server((host, port), backlog=128)
        except OSError as e:
            raise ports.listen_error("the object store's transfer port", host, port, e) from None
        self._tls = files.server_context()
        self._listener.setblocking(False)
        self._threads = concurrent.futures.ThreadPoolExecutor(_TLS_THREADS, thread_name_prefix="transfer-tls")
        self._accepting = asyncio.create_task(self._accept_tls())
        return self._listener.getsockname()[1]

    async def stop(self) -> None:
        self._stopped = True
        loop = asyncio.get_running_loop()
        for fd in list(self._parked):
            channel = self._unpark(fd, loop)
            if channel is not None:
                channel.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    async def _accept_tls(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None and self._threads is not None
        while True:
            conn, _ = await loop.sock_accept(self._listener)
            conn.setblocking(True)
            loop.run_in_executor(self._threads, self._serve_tls, conn, loop)

    def _open(self, object_id: bytes) -> _Source | None:
        """Where to read the object from: the arena (pinned, so the store
        neither spills nor reuses it meanwhile) or its spill file (open: a
        restore that removes the file leaves our descriptor whole)."""
        entry = self._store.locate(object_id)
        if entry is not None:
            f = open(self._store.arena_path, "rb")
            self._store.pin(entry)
            return _Source(f, entry.offset, entry.size, lambda: self._store.unpin(entry), self._store.view(entry))
        if object_id in self._spiller.spilled:  # straight from disk: no need to restore it here
            try:
                f = open(self._spiller.spill_path(object_id), "rb")
            except FileNotFoundError:
                return None
            return _Source(f, 0, self._spiller.spilled[object_id], None, None)
        return None

    def _answer(self, head: bytes) -> tuple[bytes, _Source | None, int, int]:
        """The reply header to a request (after a right token), and what
        follows it: the object's source (the caller closes it), offset
        within the object and count, or None when nothing does."""
        offset, length = _RANGE.unpack_from(head, ids.OBJECT_ID_SIZE)
        source = self._open(head[:ids.OBJECT_ID_SIZE])
        if source is None:
            return _REPLY.pack(NOT_FOUND, 0), None, 0, 0
        if offset > source.size:
            source.close()
            return _REPLY.pack(BAD_REQUEST, 0), None, 0, 0
        count = source.size - offset if length == 0 else min(length, source.size - offset)
        return _REPLY.pack(OK, count), source, offset, count

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            n = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), _TIMEOUT_S), "little")
            token = await asyncio.wait_for(reader.readexactly(n), _TIMEOUT_S)
            if not hmac.compare_digest(token, self._token):
                writer.write(_REPLY.pack(BAD_TOKEN, 0))
                return
            head = await asyncio.wait_for(reader.readexactly(_HEAD_BYTES), _TIMEOUT_S)
            start_ns = time.time_ns()
            reply, source, offset, count = self._answer(head)
            writer.write(reply)
            if source is not None:
                try:
                    if count:  # (sendfile takes no empty range)
                        await writer.drain()
                        await asyncio.get_running_loop().sendfile(writer.transport, source.file,
                                                                  source.base + offset, count)
                finally:
                    source.close()
                self.sent_bytes += count
                transfer_spans.pushed(head[-transfer_spans.CONTEXT_BYTES:], head[:ids.OBJECT_ID_SIZE], offset, count,
                                      start_ns)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass  # the client went away or never spoke
        finally:
            writer.close()

    def _count_sent(self, count: int) -> None:
        self.sent_bytes += count

    def _serve_tls(self, conn: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        """Blocking, on a pool thread: the handshake, token, first request
        and key exchange inside mutual TLS, then the range as sealed frames;
        the connection then waits (parked on the loop) for the puller's next
        request."""
        assert self._tls is not None
        conn.settimeout(_TIMEOUT_S)
        # (small writes back to back: the reply, then close_notify; Nagle would hold the second for an ACK)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock: socket.socket = conn
        channel: SealedChannel | None = None
        try:
            sock = self._tls.wrap_socket(conn, server_side=True)
            token = _recv_exactly(sock, int.from_bytes(_recv_exactly(sock, 2), "little"))
            if not hmac.compare_digest(token, self._token):
                sock.sendall(_REPLY.pack(BAD_TOKEN, 0))
                return
            head = _recv_exactly(sock, _HEAD_BYTES + sealed_frames.RANDOM_BYTES)
            puller_random, head = head[_HEAD_BYTES:], head[:_HEAD_BYTES]
            start_ns = time.time_ns()
            # (the store's state is the loop's: looked up and released there)
            reply, source, offset, count = asyncio.run_coroutine_threadsafe(_call(self._answer, head), loop).result()
            if source is None:
                sock.sendall(reply)
                return
            try:
                source_random = sealed_frames.new_random()
                sock.sendall(reply + source_random)
                sock = sock.unwrap()  # both ends' close_notify: what follows is sealed frames
                opened = SealedChannel.after_handshake(sock, puller_random, source_random, we_are_source=True)
                self._push(opened, head, source, offset, count)
            finally:
                loop.call_soon_threadsafe(source.close)
            self._pushed(head, offset, count, start_ns, loop)
            channel = opened
        except (OSError, ValueError):  # (SSLError is an OSError, SealedFrameError a ValueError)
            pass  # a failed handshake (plaintext, another CA), a client gone or never speaking
        finally:
            if channel is None:
                sock.close()
            else:
                loop.call_soon_threadsafe(self._park, channel, loop)

    def _serve_channel(self, channel: SealedChannel, loop: asyncio.AbstractEventLoop) -> None:
        """Blocking, on a pool thread: a later request on an open connection
        (its first byte has come), answered as sealed frames."""
        keep = False
        try:
            channel.sock.settimeout(_TIMEOUT_S)
            head = channel.receive_bytes(Kind.REQUEST, _HEAD_BYTES)
            start_ns = time.time_ns()
            reply, source, offset, count = asyncio.run_coroutine_threadsafe(_call(self._answer, head), loop).result()
            requested = sealed_frames.range_binding(head[:ids.OBJECT_ID_SIZE], *_RANGE.unpack_from(head, ids.OBJECT_ID_SIZE))
            if source is None:
                channel.send(Kind.REPLY, memoryview(reply), requested)
            else:
                try:
                    channel.send(Kind.REPLY, memoryview(reply), requested)
                    self._push(channel, head, source, offset, count)
                finally:
                    loop.call_soon_threadsafe(source.close)
                self._pushed(head, offset, count, start_ns, loop)
            keep = True
        except (OSError, ValueError):
            pass  # the puller closed it (between requests: PeerClosed), went away, or broke the protocol
        finally:
            if keep:
                loop.call_soon_threadsafe(self._park, channel, loop)
            else:
                channel.close()

    def _push(self, channel: SealedChannel, head: bytes, source: _Source, offset: int, count: int) -> None:
        """The range as one DATA message, from the arena's mapping or the spill file's."""
        about = sealed_frames.range_binding(head[:ids.OBJECT_ID_SIZE], offset, count)
        if source.view is not None:
            channel.send(Kind.DATA, source.view[offset:offset + count], about)
        elif count == 0:  # (an empty file cannot be mapped)
            channel.send(Kind.DATA, memoryview(b""), about)
        else:
            with mmap.mmap(source.file.fileno(), 0, prot=mmap.PROT_READ) as mapped, memoryview(mapped) as view:
                channel.send(Kind.DATA, view[offset:offset + count], about)

    def _pushed(self, head: bytes, offset: int, count: int, start_ns: int, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon_threadsafe(self._count_sent, count)  # (the counter is the loop's)
        transfer_spans.pushed(head[-transfer_spans.CONTEXT_BYTES:], head[:ids.OBJECT_ID_SIZE], offset, count, start_ns)

    # ---- open connections between requests (on the loop) ----------------------

    def _park(self, channel: SealedChannel, loop: asyncio.AbstractEventLoop) -> None:
        """Wait, without a thread, for the puller's next request on `channel`,
        for at most _IDLE_S."""
        if self._stopped:
            channel.close()
            return
        fd = channel.sock.fileno()
        loop.add_reader(fd, self._wake, fd, loop)
        self._parked[fd] = (channel, loop.call_later(_IDLE_S, self._expire, fd, loop))

    def _expire(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        channel = self._unpark(fd, loop)
        if channel is not None:
            channel.close()

    def _unpark(self, fd: int, loop: asyncio.AbstractEventLoop) -> SealedChannel | None:
        parked = self._parked.pop(fd, None)
        if parked is None:
            return None
        loop.remove_reader(fd)
        parked[1].cancel()
        return parked[0]

    def _wake(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        channel = self._unpark(fd, loop)
        if channel is not None and self._threads is not None:
            loop.run_in_executor(self._threads, self._serve_channel, channel, loop)


class Puller:
    def __init__(self, store: ShmStore, spiller: Spiller, token: str) -> None:
        self._store = store
        self._spiller = spiller
        raw = token.encode()
        self._hello = len(raw).to_bytes(2, "little") + raw
        self._inflight: SharedRuns[bytes, None] = SharedRuns()
        files = tls.active()
        self._tls = files.client_context() if files else None
        # The last TLS session with each source: the next connection resumes it (TLS 1.3 PSK with ECDHE,
        # so still forward secret) and skips the certificate signatures and checks, about half the
        # handshake's CPU; a source that forgot it (restarted) does a full handshake instead.
        self._sessions: dict[tuple[str, int], ssl.SSLSession] = {}
        self._channels = ChannelPool(MAX_STREAMS, _REUSE_S)  # open TLS connections, for later ranges
        self.received_bytes = 0  # from other nodes, since start (metrics)

    async def pull(self, object_id: bytes, source: str, size: int, traceparent: str = "") -> Entry:
        """Copy the object from the store whose transfer address is `source`
        (host:port); its entry here. `traceparent`: the pull's span, told to the source."""
        entry = self._store.locate(object_id)
        if entry is not None:
            return entry
        context = transfer_spans.context_bytes(traceparent)
        return await self._inflight.join(object_id, lambda: self._transfer(object_id, source, size, context))

    async def _transfer(self, object_id: bytes, source: str, size: int, context: bytes) -> Entry:
        host, _, port = source.rpartition(":")
        await self._spiller.make_room(size)
        entry = self._store.create(object_id, size)
        n = max(1, min(MAX_STREAMS, size // MIN_RANGE))
        step = -(-size // n)
        fd = self._store.arena_fd  # positional writes: the ranges share it
        address = (host, int(port))
        await in_threads([functools.partial(self._read_range, address, object_id, fd, entry.offset, off,
                                            min(step, size - off), context) for off in range(0, size, step)],
                         lambda: self._store.abort(object_id))
        self._store.seal(object_id)
        self.received_bytes += size
        self._spiller.sources[object_id] = source  # a copy: evicted, not spilled, when room is needed
        return entry

    def close(self) -> None:
        self._channels.close()

    def _read_range(self, address: tuple[str, int], object_id: bytes, fd: int, base: int, offset: int,
                    length: int, context: bytes = transfer_spans.NO_CONTEXT) -> None:
        """Blocking, in a thread: one range of the object straight into the
        arena (the object starts at `base` there)."""
        where = f"object {object_id.hex()} from {address[0]}:{address[1]}"
        try:
            if self._tls:
                self._read_range_tls(address, object_id, fd, base, offset, length, context, where)
                return
            with socket.create_connection(address, timeout=_TIMEOUT_S) as sock:
                sock.sendall(self._hello + object_id + _RANGE.pack(offset, length) + context)
                _check_reply(*_REPLY.unpack(_recv_exactly(sock, _REPLY.size)), offset, length, where)
                try:
                    _splice_range(sock, fd, base + offset, length, where)
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise
                    _copy_range(sock, fd, base + offset, length, where)  # a kernel or file that cannot splice
        except OSError as e:
            raise Unavailable(f"reading {where} failed: {e}") from None
        except sealed_frames.SealedFrameError as e:
            raise TransferIntegrityError(f"reading {where}: {e}; the pull is aborted and nothing of it kept") from None

    def _read_range_tls(self, address: tuple[str, int], object_id: bytes, fd: int, base: int, offset: int,
                        length: int, context: bytes, where: str) -> None:
        """On an open connection to the source if there is one (a REQUEST
        and its REPLY as sealed frames), else on a new one (mutual TLS);
        then the range as a DATA message. The connection goes back to the
        pool only after a whole, verified range."""
        head = object_id + _RANGE.pack(offset, length) + context
        channel = self._channels.take(address)
        reply: tuple[int, int] | None = None
        if channel is not None:
            try:
                channel.sock.settimeout(_TIMEOUT_S)
                channel.send(Kind.REQUEST, memoryview(head))
                status, count = _REPLY.unpack(channel.receive_bytes(Kind.REPLY, _REPLY.size,
                                                                    sealed_frames.range_binding(object_id, offset, length)))
                reply = status, count
            except (PeerClosed, BrokenPipeError, ConnectionResetError):
                channel.close()  # the source closed it while idle (restarted, or its idle time ran out)
                channel = None
            except BaseException:
                channel.close()
                raise
        if channel is None or reply is None:
            channel, reply = self._connect(address, head)
        try:
            _check_reply(*reply, offset, length, where)
            assert channel is not None  # (an OK reply comes with a connection)
            channel.receive(Kind.DATA, length, sealed_frames.range_binding(object_id, offset, length),
                            file_writer(fd, base + offset))
        except BaseException:
            if channel is not None:
                channel.close()
            raise
        self._channels.give(address, channel)

    def _connect(self, address: tuple[str, int], head: bytes) -> tuple[SealedChannel | None, tuple[int, int]]:
        """A new connection: mutual TLS (resuming our last session with this
        source), the token, the request and both ends' key material inside
        it; then TLS closes and the connection carries sealed frames. With
        the reply; no connection unless the reply is OK."""
        assert self._tls is not None
        sock = plain = socket.create_connection(address, timeout=_TIMEOUT_S)
        try:
            plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # (the request, then close_notify)
            sock = self._tls.wrap_socket(plain, server_hostname=address[0], session=self._sessions.get(address))
            puller_random = sealed_frames.new_random()
            sock.sendall(self._hello + head + puller_random)
            status, count = _REPLY.unpack(_recv_exactly(sock, _REPLY.size))
            if status != OK:
                sock.close()
                return None, (status, count)
            source_random = _recv_exactly(sock, sealed_frames.RANDOM_BYTES)
            if sock.session is not None:  # (TLS 1.3: its ticket came before the reply)
                self._sessions[address] = sock.session
            sock = sock.unwrap()  # (the same socket object: plain reads and writes from now on)
            return SealedChannel.after_handshake(sock, puller_random, source_random, we_are_source=False), (status, count)
        except BaseException:
            sock.close()  # (the TLS socket once made: wrapping detached `plain`)
            raise


def _check_reply(status: int, count: int, offset: int, length: int, where: str) -> None:
    if status == NOT_FOUND:
        raise NotFound(f"{where}: the source does not have it")
    if status != OK:
        raise Unavailable(f"{where}: the source refused the request "
                          f"({'bad token' if status == BAD_TOKEN else 'bad range'})")
    if count != length:
        raise Unavailable(f"{where}: the source has {count} bytes at offset {offset}, {length} expected")


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
    """Through a buffer (where splice cannot be used): filled, then written
    to the file in one call."""
    sock.settimeout(_TIMEOUT_S)
    buffer = bytearray(min(length, _RECV))
    view, pos = memoryview(buffer), 0
    while pos < length:
        want, filled = min(length - pos, len(buffer)), 0
        while filled < want:
            got = sock.recv_into(view[filled:want])
            if got == 0:
                raise Unavailable(f"{where}: the source closed after {pos + filled} of {length} bytes")
            filled += got
        os.pwrite(fd, view[:filled], offset + pos)
        pos += filled


class _Source:
    """An object's bytes to send: `size` bytes at `base` in `file`; `view`
    is them mapped (the arena's) or None (a spill file)."""

    def __init__(self, file: Any, base: int, size: int, release: Callable[[], None] | None,
                 view: memoryview | None) -> None:
        self.file, self.base, self.size, self._release, self.view = file, base, size, release, view

    def close(self) -> None:
        self.file.close()
        if self._release is not None:
            self._release()
            self._release = None


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


class TransferIntegrityError(Unavailable):
    """A TLS transfer's bytes failed authentication or were cut short."""


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the source closed the connection")
        data += chunk
    return data
