"""Ember's object layout: how a value becomes bytes and back.

One layout everywhere, inline in messages and in shared-memory files, so a
reader on the node maps a file and rebuilds numpy arrays (pickle protocol 5
out-of-band buffers) over that memory without copying:

    header  "EMB1" | kind u8 | 3 pad | n_buffers u32 | inband_len u64
            (offset u64, length u64) * n_buffers
    inband  pickle stream (or raw bytes), at a 64-byte aligned offset
    buffers each at a 64-byte aligned offset

ObjectRefs inside a value are pickled by id; the ids are collected while
encoding (`SerializedObject.nested_ids`) so the owner can pin them.

`pyarrow.Table` and `RecordBatch` values are kind ARROW: one buffer holding
an Arrow IPC stream (schema, then the record batches), so any Arrow reader
(another language's client too) can read a stored object, and a reader on
the node gets a table built over the store's memory without copying.
"""

from __future__ import annotations

import pickle
import struct
import threading
import traceback
from typing import Any, Callable

import cloudpickle

from ember import exceptions

MAGIC = b"EMB1"
KIND_PICKLE = 0
KIND_ERROR = 1
KIND_RAW = 2
KIND_ARROW = 3  # inband: b"table" or b"batch"; one buffer: an Arrow IPC stream

_HEADER = struct.Struct("<4sBxxxIQ")
_BUF = struct.Struct("<QQ")
ALIGN = 64
# Buffers smaller than this stay in-band: an out-of-band slot costs more.
_OOB_MIN = 4096


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


class _Context(threading.local):
    def __init__(self) -> None:
        self.nested: list[bytes] | None = None


_context = _Context()


def note_nested_ref(object_id: bytes) -> None:
    """Called by ObjectRef.__reduce__ while a value is being encoded."""
    if _context.nested is not None:
        _context.nested.append(object_id)


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
        pos = _align(header) if buffers else header
        self._offsets: list[int] = []
        pos += len(inband)
        for buf in buffers:
            pos = _align(pos)
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
            pos = _align(pos)
        out[pos : pos + len(self.inband)] = self.inband
        for off, buf in zip(self._offsets, self.buffers):
            out[off : off + buf.nbytes] = buf.cast("B") if buf.ndim != 1 or buf.format != "B" else buf

    def to_bytes(self) -> bytes:
        if not self.buffers:
            return _HEADER.pack(MAGIC, self.kind, 0, len(self.inband)) + self.inband
        out = bytearray(self._size)
        self.write_into(memoryview(out))
        return bytes(out)


def _buffer_callback(buffers: list[memoryview]) -> Callable[[pickle.PickleBuffer], bool]:
    def callback(buf: pickle.PickleBuffer) -> bool:
        raw = buf.raw()
        if raw.nbytes < _OOB_MIN:
            return True  # keep in-band
        buffers.append(raw)
        return False

    return callback


def _serialize_arrow(value: Any) -> SerializedObject | None:
    """Arrow tables and record batches as an IPC stream (None: not Arrow)."""
    if not type(value).__module__.startswith("pyarrow"):
        return None
    import pyarrow as pa  # only when an Arrow value is seen: it is heavy to import

    if isinstance(value, pa.Table):
        kind = b"table"
    elif isinstance(value, pa.RecordBatch):
        kind = b"batch"
    else:
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, value.schema) as writer:
        writer.write(value)
    return SerializedObject(KIND_ARROW, kind, [memoryview(sink.getvalue())], [])


def _deserialize_arrow(inband: memoryview, buffers: list[memoryview]) -> Any:
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.py_buffer(buffers[0])).read_all()  # over `buffers[0]`: no copy
    if bytes(inband) == b"batch":
        batches = table.combine_chunks().to_batches()
        return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
    return table


def serialize(value: Any) -> SerializedObject:
    """Encode a value. Raises TypeError with the reason if it cannot be pickled."""
    arrow = _serialize_arrow(value)
    if arrow is not None:
        return arrow
    buffers: list[memoryview] = []
    nested: list[bytes] = []
    outer = _context.nested
    _context.nested = nested
    try:
        data = cloudpickle.dumps(value, protocol=5, buffer_callback=_buffer_callback(buffers))
    except Exception as e:  # pickling errors come in many types
        raise TypeError(f"cannot serialize {type(value).__name__} value: {e}") from e
    finally:
        _context.nested = outer
    return SerializedObject(KIND_PICKLE, data, buffers, nested)


def serialize_error(error: BaseException) -> SerializedObject:
    """Encode an exception to be raised by whoever gets the object."""
    try:
        data = cloudpickle.dumps(error, protocol=5)
    except Exception:
        # The exception (or its cause) cannot be pickled: keep its text.
        tb = getattr(error, "traceback_str", None) or "".join(
            traceback.format_exception(type(error), error, error.__traceback__)
        )
        fallback = exceptions.TaskError(
            getattr(error, "function_name", "<unknown>"),
            f"{tb}\n(the exception could not be pickled: {type(getattr(error, 'cause', error)).__name__})",
            None,
            getattr(error, "pid", None),
        )
        data = cloudpickle.dumps(fallback, protocol=5)
    return SerializedObject(KIND_ERROR, data, [], [])


def serialize_raw(data: bytes) -> SerializedObject:
    return SerializedObject(KIND_RAW, bytes(data), [], [])


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
        pos = _align(pos)
    return kind, view[pos : pos + inband_len], buffers


def deserialize(data: bytes | memoryview) -> tuple[Any, bool]:
    """Decode an object: (value, is_error). Buffers stay views of `data`."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    kind, inband, buffers = parse(view)
    if kind == KIND_RAW:
        return bytes(inband), False
    if kind == KIND_ERROR:
        return pickle.loads(inband), True
    if kind == KIND_ARROW:
        return _deserialize_arrow(inband, buffers), False
    if kind != KIND_PICKLE:
        raise ValueError(f"unknown object kind {kind}")
    return pickle.loads(inband, buffers=buffers), False


def dumps_function(fn: Any) -> bytes:
    return cloudpickle.dumps(fn, protocol=5)


def loads_function(data: bytes) -> Any:
    return pickle.loads(data)
