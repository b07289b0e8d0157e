"""Sealed frames: how a TLS transfer carries an object's bytes after mutual
TLS has authenticated both ends (transfer.py).

Python's ssl moves 16 KiB records through Python one call at a time and
reaches about 1 GB/s here; AES-GCM over 1 MiB buffers (the `cryptography`
package, into buffers we reuse) runs at 5-8 GB/s per core. So a TLS
connection does only the handshake, the token, the request and a key
exchange inside TLS, then both ends close TLS (close_notify) and the bulk
bytes follow on the same TCP connection as AES-GCM frames:

- Key: HKDF-SHA256 over 32 random bytes from each end (sent inside TLS, so
  only the two authenticated ends know them), one 128-bit key per
  connection and direction (the direction is in the HKDF label).
- Messages: a range's bytes (DATA, source to puller) and, when the puller
  reuses the connection for another range, its request (REQUEST, puller to
  source) and the source's reply (REPLY). Each is one or more frames; the
  receiver knows each message's length before it starts.
- Frame on the wire: a header (plaintext length as uint32, flags byte; LAST
  marks a message's final frame), then the ciphertext and its 16-byte tag.
- Nonce: the direction (4 bytes) and the frame's sequence number in that
  direction (8 bytes), counted over the whole connection by both ends and
  never sent: a fresh key per connection and a counter never repeat a nonce.
- Associated data: the header, the sequence number, the message's kind and
  length, and what it is about (a DATA message: the object id and range; a
  REPLY: the request it answers), so a frame cannot be altered, reordered,
  dropped, replayed or moved to another message, object or range without
  its tag failing.
- End: a message's last frame carries LAST (authenticated), so a connection
  cut short, or a forged close, is a truncation the receiver detects.

Any failure raises `SealedFrameError`; the puller then aborts the object,
so nothing it received is stored, and closes the connection. Pure logic:
no sockets here (sealed_channel.py carries the frames).
"""

from __future__ import annotations

import enum
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FRAME_BYTES = 1 << 20  # plaintext per frame
TAG_BYTES = 16
RANDOM_BYTES = 32  # each end's contribution to the keys
HEADER = struct.Struct("<IB")  # plaintext length, flags
LAST = 0x01
SOURCE_TO_PULLER, PULLER_TO_SOURCE = 1, 2  # the directions, in the nonce and the key's label


class Kind(enum.IntEnum):
    DATA = 0
    REQUEST = 1
    REPLY = 2


_NONCE = struct.Struct(">IQ")  # direction, sequence
_AAD = struct.Struct("<IBQBQ")  # header, sequence, message kind, message length; then what it is about
_RANGE = struct.Struct("<QQ")
_KEY_LABEL = b"ember object transfer v1 key, direction %d"


class SealedFrameError(ValueError):
    """A frame failed authentication, broke the protocol, or a message
    ended without its last frame: the transfer is not to be trusted."""


def new_random() -> bytes:
    return os.urandom(RANDOM_BYTES)


def derive_key(puller_random: bytes, source_random: bytes, direction: int) -> bytes:
    """The connection's AES-128 key for one direction."""
    if len(puller_random) != RANDOM_BYTES or len(source_random) != RANDOM_BYTES:
        raise SealedFrameError("a key contribution has the wrong length")
    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None,
                info=_KEY_LABEL % direction).derive(puller_random + source_random)


def range_binding(object_id: bytes, offset: int, length: int) -> bytes:
    """What a DATA message (or the REPLY to a request for it) is about."""
    return object_id + _RANGE.pack(offset, length)


class _Direction:
    """One direction of a connection: its key, its frame counter (over every
    message), and the message in progress."""

    def __init__(self, key: bytes, direction: int) -> None:
        self._aead = AESGCM(key)
        self._direction = direction
        self.seq = 0
        self.kind, self.count, self._about = Kind.DATA, 0, b""
        self.pos = 0  # plaintext bytes of the message so far
        self.done = True  # no message in progress

    def begin(self, kind: Kind, count: int, about: bytes = b"") -> None:
        """Start a message of `count` bytes (what it is `about` goes into
        every frame's associated data)."""
        if not self.done:
            raise SealedFrameError(f"a {kind.name} message began before the {self.kind.name} one ended")
        self.kind, self.count, self._about, self.pos, self.done = kind, count, about, 0, False

    def _nonce_and_aad(self, length: int, flags: int) -> tuple[bytes, bytes]:
        return (_NONCE.pack(self._direction, self.seq),
                _AAD.pack(length, flags, self.seq, self.kind, self.count) + self._about)


class Sealer(_Direction):
    """The sending side of a direction."""

    def seal(self, plain: memoryview, out: memoryview) -> memoryview:
        """The message's next frame (header, ciphertext, tag) of `plain`, its
        next bytes (at most FRAME_BYTES), written into `out`."""
        n = len(plain)
        if self.done or n > FRAME_BYTES or self.pos + n > self.count:
            raise SealedFrameError(f"a frame of {n} bytes at {self.pos} does not fit a message of {self.count}")
        flags = LAST if self.pos + n == self.count else 0
        nonce, aad = self._nonce_and_aad(n, flags)
        out[:HEADER.size] = HEADER.pack(n, flags)
        end = HEADER.size + n + TAG_BYTES
        self._aead.encrypt_into(nonce, plain, aad, out[HEADER.size:end])
        self.seq += 1
        self.pos += n
        self.done = bool(flags)
        return out[:end]


class Opener(_Direction):
    """The receiving side of a direction: checks each header, then opens
    its frame."""

    def __init__(self, key: bytes, direction: int) -> None:
        super().__init__(key, direction)
        self._pending: tuple[int, int] | None = None

    def expect(self, header: bytes) -> int:
        """How many bytes (ciphertext and tag) follow this frame header."""
        if self.done or self._pending is not None:
            raise SealedFrameError("a frame header out of turn")
        n, flags = HEADER.unpack(header)
        last = self.pos + n == self.count
        if n > FRAME_BYTES or self.pos + n > self.count or flags & ~LAST or bool(flags & LAST) != last:
            raise SealedFrameError(f"a malformed frame header (frame {self.seq}: {n} bytes, flags {flags:#x}, "
                                   f"at {self.pos} of a {self.kind.name} message of {self.count})")
        self._pending = (n, flags)
        return n + TAG_BYTES

    def open(self, sealed: memoryview, out: memoryview) -> int:
        """Decrypt the frame announced by `expect` into `out`; its plaintext
        length. Raises SealedFrameError when its tag does not verify."""
        if self._pending is None:
            raise SealedFrameError("a frame without its header")
        n, flags = self._pending
        self._pending = None
        if len(sealed) != n + TAG_BYTES:
            raise SealedFrameError(f"frame {self.seq} has {len(sealed)} bytes, {n + TAG_BYTES} announced")
        nonce, aad = self._nonce_and_aad(n, flags)
        try:
            self._aead.decrypt_into(nonce, sealed, aad, out[:n])
        except InvalidTag:
            raise SealedFrameError(f"frame {self.seq} (bytes {self.pos}-{self.pos + n} of a {self.kind.name} "
                                   "message) failed authentication: the data was altered in transit") from None
        self.seq += 1
        self.pos += n
        self.done = bool(flags & LAST)
        return n
