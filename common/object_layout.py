"""Ember's object layout: how an encoded value is laid out in bytes, inline
in messages and in shared-memory files alike, so a reader on the node maps a
file and rebuilds numpy arrays (pickle protocol 5 out-of-band buffers) over
that memory without copying:

    header  "EMB1" | kind u8 | 3 pad | n_buffers u32 | inband_len u64
            (offset u64, length u64) * n_buffers
    inband  pickle stream (or raw bytes), at a 64-byte aligned offset
    buffers each at a 64-byte aligned offset

The kinds are in `Kind`. Services write SYSTEM_ERROR themselves (and, for
clients in other languages, MSGPACK and ARROW values they put):
a failure of the runtime (a worker crashed, an actor died, an object was
lost) as UTF-8 JSON `{"type": NAME, "message": TEXT}`, where NAME is the
`ember.exceptions` class a Python reader raises; it needs no pickle, so any
language can read it. How Python values become the other kinds is the SDK's
part (`ember._private.serialization`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import struct
from typing import Any

from ember_common.parallel_copy import copy_into

MAGIC = b"EMB1"


class Kind(enum.IntEnum):
    PICKLE = 0
    ERROR = 1  # a pickled exception (a task's own, or one it could not pickle, kept as text)
    RAW = 2
    ARROW = 3  # inband: b"table" or b"batch"; one buffer: an Arrow IPC stream
    SYSTEM_ERROR = 4  # JSON {"type", "message"}: see the module docstring
    # The language-neutral kinds (ember_common.neutral_values, docs/other-languages.md):
    MSGPACK = 5  # inband: one msgpack document (Ember's ext types for refs and tables)
    CODE_ERROR = 6  # JSON {"type", "message", "traceback", "function"}: user code raised, for a non-Python caller


_HEADER = struct.Struct("<4sBxxxIQ")
_BUF = struct.Struct("<QQ")
ALIGN = 64


def align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


class SerializedObject:
    """An encoded value: what `total_size` bytes of the layout hold."""

    __slots__ = ("kind", "inband", "buffers", "nested_ids", "_offsets", "_size")

    def __init__(
        self, kind: int, inband: bytes, buffers: list[memoryview], nested_ids: list[bytes]
    ) -> None:
        self.kind = kind
        self.inband = inband
        self.buffers = buffers
        self.nested_ids = nested_ids
        header = _HEADER.size + _BUF.size * len(buffers)
        pos = align(header) if buffers else header
        self._offsets: list[int] = []
        pos += len(inband)
        for buf in buffers:
            pos = align(pos)
            self._offsets.append(pos)
            pos += buf.nbytes
        self._size = pos

    @property
    def total_size(self) -> int:
        return self._size

    def write_into(self, out: memoryview) -> None:
        """Write the layout into `out` (at least total_size bytes)."""
        n = len(self.buffers)
        _HEADER.pack_into(out, 0, MAGIC, self.kind, n, len(self.inband))
        pos = _HEADER.size
        for off, buf in zip(self._offsets, self.buffers):
            _BUF.pack_into(out, pos, off, buf.nbytes)
            pos += _BUF.size
        if n:
            pos = align(pos)
        out[pos : pos + len(self.inband)] = self.inband
        for off, buf in zip(self._offsets, self.buffers):
            copy_into(out[off : off + buf.nbytes], buf.cast("B") if buf.ndim != 1 or buf.format != "B" else buf)

    def to_bytes(self) -> bytes:
        if not self.buffers:
            return _HEADER.pack(MAGIC, self.kind, 0, len(self.inband)) + self.inband
        out = bytearray(self._size)
        self.write_into(memoryview(out))
        return bytes(out)


def serialize_raw(data: bytes) -> SerializedObject:
    return SerializedObject(Kind.RAW, bytes(data), [], [])


def parse(view: memoryview) -> tuple[int, memoryview, list[memoryview]]:
    """Split an encoded object into (kind, inband, buffers), without copying."""
    if view.nbytes < _HEADER.size:
        raise ValueError(f"encoded object too short ({view.nbytes} bytes)")
    magic, kind, n, inband_len = _HEADER.unpack_from(view, 0)
    if magic != MAGIC:
        raise ValueError("not an encoded Ember object (bad magic)")
    pos = _HEADER.size
    buffers = []
    for _ in range(n):
        off, length = _BUF.unpack_from(view, pos)
        pos += _BUF.size
        buffers.append(view[off : off + length])
    if n:
        pos = align(pos)
    return kind, view[pos : pos + inband_len], buffers


class FailureType(enum.Enum):
    """The runtime failures a service reports; each value names the
    `ember.exceptions` class a Python reader raises for it."""

    WORKER_CRASHED = "WorkerCrashedError"
    NODE_DIED = "NodeDiedError"
    TASK_UNSCHEDULABLE = "TaskUnschedulableError"
    TASK_CANCELLED = "TaskCancelledError"
    ACTOR_DIED = "ActorDiedError"
    OBJECT_LOST = "ObjectLostError"
    OWNER_DIED = "OwnerDiedError"
    OUT_OF_MEMORY = "OutOfMemoryError"  # the raylet's memory monitor killed its worker
    RUNTIME_ENV_SETUP_FAILED = "RuntimeEnvSetupError"


@dataclasses.dataclass(frozen=True)
class Failure:
    """A failure of the runtime, stored in place of the value it stops."""

    type: FailureType
    message: str

    def to_object(self) -> SerializedObject:
        body = json.dumps({"type": self.type.value, "message": self.message}).encode()
        return SerializedObject(Kind.SYSTEM_ERROR, body, [], [])

    def encode(self) -> bytes:
        return self.to_object().to_bytes()

    @classmethod
    def decode(cls, inband: memoryview | bytes) -> "Failure":
        fields: Any = json.loads(bytes(inband))
        return cls(FailureType(fields["type"]), str(fields["message"]))
