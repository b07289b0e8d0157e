"""Length-prefixed frames, the wire format of Ember's unix-socket transports
(a client's socket to its raylet, a caller's socket to an actor): a
little-endian u32 length, then the bytes of one protobuf message. The first
frame on a connection is the cluster token, so nothing is parsed from a peer
that has not shown it."""

from __future__ import annotations

import socket
import struct
from typing import Iterator

FRAME_LEN = struct.Struct("<I")
MAX_FRAME = 512 * 1024 * 1024
MAX_TOKEN_FRAME = 4096


def send_frame(sock: socket.socket, data: bytes) -> None:
    sock.sendall(FRAME_LEN.pack(len(data)) + data)


def recv_frame(sock: socket.socket, limit: int = MAX_FRAME) -> bytes:
    """One frame, for a handshake (ConnectionError if the peer closes first)."""
    (n,) = FRAME_LEN.unpack(_recv_exact(sock, FRAME_LEN.size))
    if n > limit:
        raise ConnectionError(f"frame of {n} bytes exceeds the limit of {limit}")
    return _recv_exact(sock, n)


def read_frames(sock: socket.socket, limit: int = MAX_FRAME) -> Iterator[bytes]:
    """Frames until the peer closes (a cut-off frame ends it too)."""
    with sock.makefile("rb", buffering=1 << 16) as file:
        read = file.read
        while True:
            header = read(FRAME_LEN.size)
            if len(header) < FRAME_LEN.size:
                return
            (n,) = FRAME_LEN.unpack(header)
            if n > limit:
                raise ConnectionError(f"frame of {n} bytes exceeds the limit of {limit}")
            data = read(n)
            if len(data) < n:
                return
            yield data


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        data += chunk
    return bytes(data)
