"""The local transport: the Connect session's messages as length-prefixed
frames on a unix socket, for drivers and workers on this node.

A gRPC round trip costs ~0.4 ms in Python; a frame on a unix socket a small
fraction of that, and a task crosses two hops (driver-raylet, raylet-worker).
The first frame is the cluster token, compared in constant time before
anything else is read; the socket lives in the 0700 session directory.

Each connection is an asyncio Protocol, not a stream: frames are handled as
the bytes arrive, and what they made for any client leaves at once, one
write per client, when the received bytes are handled (output made
elsewhere, say by a peer or a timer, leaves in the next loop turn). No
reader or writer task wakes per message, and no loop turn passes between a
call coming in and going on to the worker (the raylet's share of a sync
round trip is most of its CPU).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os

from ember_common.frames import FRAME_LEN, MAX_FRAME, MAX_TOKEN_FRAME
from ember.v1 import raylet_pb2
from google.protobuf.message import DecodeError

from ember_common.errors import ProtocolError
from ember_raylet.client_session import ClientSession
from ember_raylet.client_stream import open_session
from ember_raylet.node_manager import NodeManager

log = logging.getLogger(__name__)


class LocalTransport:
    def __init__(self, path: str, token: str, nm: NodeManager, registered: raylet_pb2.ClientRegistered) -> None:
        self._path = path
        self._token = token.encode()
        self._nm = nm
        self._registered = registered
        self._server: asyncio.AbstractServer | None = None
        self._pending = _PendingOutput()

    async def start(self) -> None:
        if os.path.exists(self._path):
            os.unlink(self._path)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            lambda: _Connection(self._token, self._nm, self._registered, self._pending), path=self._path)
        os.chmod(self._path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if os.path.exists(self._path):
            os.unlink(self._path)


class _PendingOutput:
    """The connections with output to send, flushed together: when the
    input that made it is handled, or in the next loop turn otherwise."""

    def __init__(self) -> None:
        self._connections: list[_Connection] = []

    def add(self, connection: "_Connection") -> None:
        if not self._connections:
            asyncio.get_running_loop().call_soon(self.flush)  # output made outside data_received
        self._connections.append(connection)

    def flush(self) -> None:
        while self._connections:
            self._connections.pop()._flush()


class _Connection(asyncio.Protocol):
    """One client: token frame, then ClientBatch frames in, RayletBatch frames out."""

    def __init__(self, token: bytes, nm: NodeManager, registered: raylet_pb2.ClientRegistered,
                 pending: _PendingOutput) -> None:
        self._token = token
        self._pending = pending
        self._nm = nm
        self._registered = registered
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._authenticated = False
        self._session: ClientSession | None = None
        self._flush_scheduled = False
        self._paused = False
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        offset = 0
        try:
            while not self._closing and len(buffer) - offset >= 4:
                (n,) = FRAME_LEN.unpack_from(buffer, offset)
                limit = MAX_FRAME if self._authenticated else MAX_TOKEN_FRAME
                if n > limit:
                    raise ConnectionError(f"frame of {n} bytes exceeds the limit of {limit}")
                if len(buffer) - offset - 4 < n:
                    break
                frame = bytes(buffer[offset + 4:offset + 4 + n])
                offset += 4 + n
                self._frame(frame)
        except ProtocolError as e:
            self._fail(f"INVALID_ARGUMENT: {e}")
        except ConnectionError as e:
            log.warning("local client: %s", e)
            self._close()
        except Exception as e:
            log.exception("local client failed")
            self._fail(f"INTERNAL: {type(e).__name__}: {e}")
        finally:
            del buffer[:offset]
            self._pending.flush()  # what this input produced, for any client, leaves now

    def _frame(self, frame: bytes) -> None:
        if not self._authenticated:
            if not hmac.compare_digest(frame, self._token):
                self._fail("UNAUTHENTICATED: missing or wrong cluster token")
                return
            self._authenticated = True
            return
        try:
            batch = raylet_pb2.ClientBatch.FromString(frame)
        except DecodeError as e:
            raise ProtocolError(f"malformed ClientBatch frame: {e}") from None
        if self._session is None:
            self._session = open_session(self._nm, self._registered, batch)
            self._session.notify = self._schedule_flush
            self._schedule_flush()
        else:
            self._nm.handle_batch(self._session, batch)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._closing:
            self._flush_scheduled = True
            self._pending.add(self)

    def _flush(self) -> None:
        """Send what the raylet produced for this client in this loop turn."""
        self._flush_scheduled = False
        session, transport = self._session, self._transport
        if session is None or transport is None or self._paused or self._closing:
            return
        batch = session.take()
        if batch is not None:
            data = batch.SerializeToString()
            transport.write(FRAME_LEN.pack(len(data)) + data)
        if session.closed:
            self._close()

    def pause_writing(self) -> None:  # the client reads slower than we write
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._schedule_flush()

    def _fail(self, error: str) -> None:
        """Tell the client why (the last frame it gets), then close."""
        if self._transport is not None and not self._closing:
            data = raylet_pb2.RayletBatch(error=error).SerializeToString()
            self._transport.write(FRAME_LEN.pack(len(data)) + data)
        self._close()

    def _close(self) -> None:
        if not self._closing:
            self._closing = True
            if self._transport is not None:
                self._transport.close()  # flushes what is buffered first

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        session, self._session = self._session, None
        if session is not None:
            session.notify = None
            self._nm.disconnect(session)
