"""Binary identifiers and their checks.

Sizes are part of the wire format (proto/ember/v1/common.proto): services
reject any other size with INVALID_ARGUMENT.
"""

from __future__ import annotations

import os
import struct
import threading

from ember_common.errors import InvalidArgument

UNIQUE_ID_SIZE = 16  # node, worker, task, actor, client
OBJECT_ID_SIZE = 20  # task id + big-endian uint32 index
JOB_ID_SIZE = 4

_INDEX = struct.Struct(">I")


class _Entropy:
    """os.urandom read 4 KiB at a time and handed out in slices. Each read
    lets go of the GIL, and in a driver the reader thread takes it: a
    hand-over on every `.remote()` (7% of a driver's submit time under
    cProfile). A lock keeps two threads from taking one slice; a forked
    child (a zygote's worker) drops what it inherited, or it would hand out
    its parent's next ids."""

    _CHUNK = 4096

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            at = self._at
            if at + n > len(self._buffer):
                self._buffer, at = os.urandom(self._CHUNK), 0
            self._at = at + n
            return self._buffer[at:at + n]


_entropy = _Entropy()


def new_unique_id() -> bytes:
    return _entropy.take(UNIQUE_ID_SIZE)


# The low bit of a task id's last byte tells an actor method call (set) from
# any other task (clear), so any process holding only a ref knows which
# rules apply to it (ember.cancel refuses force=True for actor calls, as Ray).
_ACTOR_CALL_BIT = 0x01
_BYTES = [bytes([i]) for i in range(256)]


def new_task_id(actor_call: bool = False) -> bytes:
    raw = _entropy.take(UNIQUE_ID_SIZE)
    last = raw[-1]
    flagged = (last | _ACTOR_CALL_BIT) if actor_call else (last & ~_ACTOR_CALL_BIT)
    return raw if flagged == last else raw[:-1] + _BYTES[flagged]  # (no bytearray round trip: per task)


def is_actor_call(task_id: bytes) -> bool:
    return bool(task_id[UNIQUE_ID_SIZE - 1] & _ACTOR_CALL_BIT)


def object_id_for(task_id: bytes, index: int) -> bytes:
    """The id of return value `index` (1-based) of a task; index 0 is a put."""
    return task_id + _INDEX.pack(index)


def new_put_id() -> bytes:
    return object_id_for(new_task_id(), 0)


def task_id_of(object_id: bytes) -> bytes:
    return object_id[:UNIQUE_ID_SIZE]


def index_of(object_id: bytes) -> int:
    """Which return of its task an object is (0: a put)."""
    return _INDEX.unpack_from(object_id, UNIQUE_ID_SIZE)[0]


def check(value: bytes, size: int, what: str) -> bytes:
    """Raise InvalidArgument (a ValueError) with a clear message unless `value` has `size` bytes."""
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        got = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise InvalidArgument(f"{what} must be {size} bytes, got {got}")
    return bytes(value)


def job_id_from_int(n: int) -> bytes:
    return _INDEX.pack(n)


def job_id_to_int(job_id: bytes) -> int:
    return _INDEX.unpack(job_id)[0]
