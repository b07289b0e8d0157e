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
  connection and direction. Only the source-to-puller direction carries
  frames; the puller sends nothing after TLS.
- Frame on the wire: a header (plaintext length as uint32, flags byte; LAST
  marks the range's final frame), then the ciphertext and its 16-byte tag.
- Nonce: the direction (4 bytes) and the frame's sequence number (8 bytes):
  a fresh key per connection and a counter never repeat a nonce.
- Associated data: the header, the sequence number, the object id and the
  range (offset, length), so a frame cannot be altered, reordered, dropped,
  replayed or moved to another object or range without its tag failing.
- End: the range's last frame carries LAST (authenticated), so a connection
  cut short, or a forged close, is a truncation the puller detects.

Any failure raises `SealedFrameError`; the puller then aborts the object,
so nothing it received is stored. Pure logic: no sockets here.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FRAME_BYTES = 1 << 20  # plaintext per frame
TAG_BYTES = 16
RANDOM_BYTES = 32  # each end's contribution to the key
HEADER = struct.Struct("<IB")  # plaintext length, flags
LAST = 0x01
SOURCE_TO_PULLER = 1  # the direction, in the nonce and the key's label
_NONCE = struct.Struct(">IQ")  # direction, sequence
_AAD = struct.Struct("<IBQ20sQQ")  # header, sequence, object id, range offset, range length
_KEY_LABEL = b"ember object transfer v1 key, direction %d"


class SealedFrameError(ValueError):
    """A frame failed authentication, broke the protocol, or the range
    ended without its last frame: the transfer is not to be trusted."""


def new_random() -> bytes:
    return os.urandom(RANDOM_BYTES)


def derive_key(puller_random: bytes, source_random: bytes, direction: int = SOURCE_TO_PULLER) -> bytes:
    """The connection's AES-128 key for one direction."""
    if len(puller_random) != RANDOM_BYTES or len(source_random) != RANDOM_BYTES:
        raise SealedFrameError("a key contribution has the wrong length")
    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None,
                info=_KEY_LABEL % direction).derive(puller_random + source_random)


class _Frames:
    def __init__(self, key: bytes, object_id: bytes, offset: int, count: int) -> None:
        self._aead = AESGCM(key)
        self._object_id, self._offset, self.count = object_id, offset, count
        self.seq = 0
        self.pos = 0  # plaintext bytes of the range sealed or opened so far

    def _nonce_and_aad(self, length: int, flags: int) -> tuple[bytes, bytes]:
        return (_NONCE.pack(SOURCE_TO_PULLER, self.seq),
                _AAD.pack(length, flags, self.seq, self._object_id, self._offset, self.count))


class Sealer(_Frames):
    """The source's side: seals a range's bytes frame by frame."""

    def seal(self, plain: memoryview, out: memoryview) -> memoryview:
        """The next frame (header, ciphertext, tag) of `plain`, the range's
        next bytes (at most FRAME_BYTES), written into `out`."""
        n = len(plain)
        if n > FRAME_BYTES or self.pos + n > self.count:
            raise SealedFrameError(f"a frame of {n} bytes at {self.pos} does not fit a range of {self.count}")
        flags = LAST if self.pos + n == self.count else 0
        nonce, aad = self._nonce_and_aad(n, flags)
        out[:HEADER.size] = HEADER.pack(n, flags)
        end = HEADER.size + n + TAG_BYTES
        self._aead.encrypt_into(nonce, plain, aad, out[HEADER.size:end])
        self.seq += 1
        self.pos += n
        return out[:end]

    @property
    def done(self) -> bool:
        return self.pos == self.count and self.seq > 0


class Opener(_Frames):
    """The puller's side: checks each header, then opens its frame."""

    def __init__(self, key: bytes, object_id: bytes, offset: int, count: int) -> None:
        super().__init__(key, object_id, offset, count)
        self._pending: tuple[int, int] | None = None
        self.done = False

    def expect(self, header: bytes) -> int:
        """How many bytes (ciphertext and tag) follow this frame header."""
        if self.done or self._pending is not None:
            raise SealedFrameError("a frame header out of turn")
        n, flags = HEADER.unpack(header)
        last = self.pos + n == self.count
        if n > FRAME_BYTES or self.pos + n > self.count or flags & ~LAST or bool(flags & LAST) != last:
            raise SealedFrameError(f"a malformed frame header (frame {self.seq}: {n} bytes, flags {flags:#x}, "
                                   f"at {self.pos} of {self.count})")
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
            raise SealedFrameError(f"frame {self.seq} (bytes {self.pos}-{self.pos + n} of the range) failed "
                                   "authentication: the data was altered in transit") from None
        self.seq += 1
        self.pos += n
        self.done = bool(flags & LAST)
        return n
