"""How a CoreClient's batches reach its raylet and come back: the local
unix socket of length-prefixed frames, or a gRPC Connect stream.

The two differ in who sends. On the local socket the process's own threads
write each batch as they drain the client's queue (`pulls` is False). A
Connect stream pulls its requests on gRPC's own thread, from the
`next_batch` callback it is opened with (`pulls` is True; `send` is not
used).
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterator, Protocol

from ember import exceptions
from ember.v1 import raylet_pb2
from ember_common.frames import read_frames, send_frame

LOCAL_PREFIX = "local:"


class ConnectionLost(exceptions.EmberError):
    """The stream to the raylet broke (the raylet or node died)."""


class Transport(Protocol):
    pulls: bool  # True: the transport pulls batches from `next_batch` on its own thread

    def open(self, register: raylet_pb2.ClientBatch,
             next_batch: Callable[[], raylet_pb2.ClientBatch | None]) -> Iterator[raylet_pb2.RayletBatch]:
        """Start the session with `register`; the raylet's batches, until the
        stream ends (it raises if the stream breaks)."""
        ...

    def send(self, batch: raylet_pb2.ClientBatch) -> None:
        """Send one batch from the calling thread (only if not `pulls`)."""
        ...

    def shutdown_write(self) -> None:
        """No more batches: the raylet sees the end of our stream."""
        ...

    def close(self) -> None:
        ...


def connect(raylet_address: str, token: str | None) -> Transport:
    """The transport for `raylet_address`: `local:PATH` is the raylet's unix
    socket of frames, anything else a gRPC target."""
    if raylet_address.startswith(LOCAL_PREFIX):
        return LocalTransport(raylet_address.removeprefix(LOCAL_PREFIX), token or "")
    return GrpcTransport(raylet_address, token)


class LocalTransport:
    """The raylet's local transport (services/raylet/local_transport.py):
    length-prefixed protobuf frames on a unix socket; the token goes first."""

    pulls = False

    def __init__(self, path: str, token: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + 30
        while True:
            try:
                self._sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        send_frame(self._sock, token.encode())

    def open(self, register: raylet_pb2.ClientBatch,
             next_batch: Callable[[], raylet_pb2.ClientBatch | None]) -> Iterator[raylet_pb2.RayletBatch]:
        self.send(register)
        return self._incoming()

    def send(self, batch: raylet_pb2.ClientBatch) -> None:
        send_frame(self._sock, batch.SerializeToString())

    def shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _incoming(self) -> Iterator[raylet_pb2.RayletBatch]:
        for data in read_frames(self._sock):
            batch = raylet_pb2.RayletBatch.FromString(data)
            if batch.error:
                raise ConnectionLost(f"the raylet closed the session: {batch.error}")
            yield batch

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


class GrpcTransport:
    """The raylet's Connect stream. gRPC is imported here only: a worker on
    the local socket stays ~8 MB smaller and faster to start without it."""

    pulls = True

    def __init__(self, address: str, token: str | None) -> None:
        from ember_common import rpc

        self._channel = rpc.channel(address, token)
        self._call: Any = None

    def open(self, register: raylet_pb2.ClientBatch,
             next_batch: Callable[[], raylet_pb2.ClientBatch | None]) -> Iterator[raylet_pb2.RayletBatch]:
        from ember.v1 import raylet_pb2_grpc

        def requests() -> Iterator[raylet_pb2.ClientBatch]:
            yield register
            while (batch := next_batch()) is not None:
                if batch.ByteSize():
                    yield batch

        self._call = raylet_pb2_grpc.RayletStub(self._channel).Connect(requests(), wait_for_ready=True)
        return self._call

    def send(self, batch: raylet_pb2.ClientBatch) -> None:
        raise TypeError("the Connect stream pulls its batches (next_batch)")

    def shutdown_write(self) -> None:
        pass  # the request iterator ends when next_batch returns None

    def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        self._channel.close()
