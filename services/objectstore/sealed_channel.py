"""A TLS transfer connection after its handshake: sealed frames
(sealed_frames.py) over the TCP socket in both directions, and the puller's
pool of such connections, so later ranges from the same source skip the
handshake (the bulk of a small object's transfer time over TLS).

Blocking sockets: both ends use them from pool threads (transfer.py)."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from typing import Callable

from ember_objectstore import sealed_frames as sf
from ember_objectstore.sealed_frames import Kind

class PeerClosed(ConnectionError):
    """The peer closed the connection (or reset it) before the first byte of
    a message: between messages, not inside one."""


@dataclasses.dataclass(eq=False)
class SealedChannel:
    """One connection: frames we send in one direction, frames we receive
    in the other. Buffers are a message's (reused for its frames), so an
    idle connection holds none."""

    sock: socket.socket
    sealer: sf.Sealer
    opener: sf.Opener
    idle_since: float = 0.0

    @classmethod
    def after_handshake(cls, sock: socket.socket, puller_random: bytes, source_random: bytes,
                        we_are_source: bool) -> SealedChannel:
        send, receive = ((sf.SOURCE_TO_PULLER, sf.PULLER_TO_SOURCE) if we_are_source
                         else (sf.PULLER_TO_SOURCE, sf.SOURCE_TO_PULLER))
        return cls(sock, sf.Sealer(sf.derive_key(puller_random, source_random, send), send),
                   sf.Opener(sf.derive_key(puller_random, source_random, receive), receive))

    def send(self, kind: Kind, data: memoryview, about: bytes = b"") -> None:
        """One message: `data` (any length, frame by frame)."""
        self.sealer.begin(kind, len(data), about)
        out = memoryview(bytearray(sf.HEADER.size + min(len(data), sf.FRAME_BYTES) + sf.TAG_BYTES))
        while not self.sealer.done:
            self.sock.sendall(self.sealer.seal(data[self.sealer.pos:self.sealer.pos + sf.FRAME_BYTES], out))

    def receive(self, kind: Kind, count: int, about: bytes, write: Callable[[int, memoryview], None]) -> None:
        """One message of `count` bytes, handed to `write(position, bytes)`
        frame by frame, each only once its tag verified. PeerClosed if the
        connection ends before the message's first byte; SealedFrameError
        if it ends inside it."""
        self.opener.begin(kind, count, about)
        header = memoryview(bytearray(sf.HEADER.size))
        sealed = memoryview(bytearray(min(count, sf.FRAME_BYTES) + sf.TAG_BYTES))
        plain = memoryview(bytearray(min(count, sf.FRAME_BYTES)))
        first = True
        while not self.opener.done:
            start = self.opener.pos
            self._fill(header, start, first)
            first = False
            size = self.opener.expect(bytes(header))  # (never more than the message's rest: sealed fits it)
            self._fill(sealed[:size], start, False)
            n = self.opener.open(sealed[:size], plain)
            write(start, plain[:n])

    def receive_bytes(self, kind: Kind, count: int, about: bytes = b"") -> bytes:
        parts: list[bytes] = []
        self.receive(kind, count, about, lambda _, chunk: parts.append(bytes(chunk)))
        return b"".join(parts)

    def _fill(self, view: memoryview, pos: int, first: bool) -> None:
        filled = 0
        while filled < len(view):
            try:
                got = self.sock.recv_into(view[filled:])
            except ConnectionResetError:
                got = 0
                if not (first and filled == 0):
                    raise
            if got == 0:
                if first and filled == 0:
                    raise PeerClosed("the peer closed the connection")
                # (a truncation: as untrustworthy as a frame that fails its tag)
                raise sf.SealedFrameError(f"the connection ended after {pos} of {self.opener.count} bytes of a "
                                          f"{self.opener.kind.name} message, before its authenticated last frame")
            filled += got

    def close(self) -> None:
        self.sock.close()


def file_writer(fd: int, offset: int) -> Callable[[int, memoryview], None]:
    """Writes a message's bytes into a file at `offset` on (positional
    writes: no mapping to fault in page by page)."""
    return lambda pos, chunk: _pwrite_all(fd, chunk, offset + pos)


def _pwrite_all(fd: int, chunk: memoryview, at: int) -> None:
    while chunk:
        n = os.pwrite(fd, chunk, at)
        chunk, at = chunk[n:], at + n


class ChannelPool:
    """A puller's idle connections, per source address: at most `per_source`
    each, used again only within `max_idle_s` (the source closes them after
    longer: transfer.py's _IDLE_S)."""

    def __init__(self, per_source: int, max_idle_s: float) -> None:
        self._per_source, self._max_idle_s = per_source, max_idle_s
        self._idle: dict[tuple[str, int], list[SealedChannel]] = {}
        self._lock = threading.Lock()  # (ranges of several pulls take and give at once, from threads)

    def take(self, address: tuple[str, int]) -> SealedChannel | None:
        now, stale, found = time.monotonic(), [], None
        with self._lock:
            idle = self._idle.get(address, [])
            while idle and found is None:
                channel = idle.pop()  # the most recently used
                if now - channel.idle_since <= self._max_idle_s:
                    found = channel
                else:
                    stale.append(channel)
        for channel in stale:
            channel.close()
        return found

    def give(self, address: tuple[str, int], channel: SealedChannel) -> None:
        channel.idle_since = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(address, [])
            if len(idle) < self._per_source:
                idle.append(channel)
                return
        channel.close()

    def close(self) -> None:
        with self._lock:
            channels = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for channel in channels:
            channel.close()
