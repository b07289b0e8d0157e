import pickle

import numpy as np
import pytest

from ember import exceptions
from ember._private import serialization
from ember_common import object_layout


def roundtrip(value):
    so = serialization.serialize(value)
    data = so.to_bytes()
    assert len(data) == so.total_size
    return serialization.deserialize(data)


@pytest.mark.parametrize("value", [None, 1, "text", b"bytes", [1, {"a": (2, 3)}], {1, 2}, 3.5])
def test_plain_values_roundtrip(value):
    assert roundtrip(value) == (value, False)


def test_large_numpy_goes_out_of_band_and_aligned():
    a = np.arange(1_000_000, dtype=np.int64)
    so = serialization.serialize(a)
    assert len(so.buffers) == 1
    data = bytearray(so.total_size)
    so.write_into(memoryview(data))
    kind, _inband, buffers = serialization.parse(memoryview(data))
    assert kind == object_layout.Kind.PICKLE
    # Buffers sit at 64-byte aligned offsets of the layout.
    offset = buffers[0].obj is not None and (np.frombuffer(buffers[0], dtype=np.uint8).ctypes.data - np.frombuffer(data, dtype=np.uint8).ctypes.data)
    assert offset % object_layout.ALIGN == 0
    out, is_error = serialization.deserialize(memoryview(data))
    assert not is_error and np.array_equal(out, a)


def test_read_only_source_gives_read_only_array():
    a = np.ones(100_000)
    data = serialization.serialize(a).to_bytes()  # bytes are immutable
    out, _ = serialization.deserialize(data)
    assert not out.flags.writeable
    assert np.shares_memory(out, np.frombuffer(data, dtype=np.uint8))


def test_unpicklable_value_is_a_type_error():
    import threading

    with pytest.raises(TypeError, match="cannot serialize"):
        serialization.serialize(threading.Lock())


def test_error_roundtrip_and_unpicklable_cause():
    import threading

    class Weird(Exception):
        def __init__(self):
            super().__init__("weird")
            self.lock = threading.Lock()

    err = exceptions.TaskError("f", "Traceback: boom", Weird(), 1)
    out, is_error = serialization.deserialize(serialization.serialize_error(err).to_bytes())
    assert is_error and isinstance(out, exceptions.TaskError)
    assert "could not be pickled" in out.traceback_str


def test_bad_magic_rejected():
    with pytest.raises(ValueError, match="magic"):
        serialization.deserialize(b"X" * 32)


def test_task_error_is_instance_of_cause():
    err = exceptions.TaskError("f", "tb", KeyError("k"), 7).as_instanceof_cause()
    assert isinstance(err, KeyError) and isinstance(err, exceptions.TaskError)
    assert "tb" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, exceptions.TaskError)


def test_arrow_tables_and_batches_are_arrow_ipc_read_without_copying():
    import pyarrow as pa

    table = pa.table({"x": list(range(100_000)), "s": [str(i) for i in range(100_000)]})
    so = serialization.serialize(table)
    assert so.kind == object_layout.Kind.ARROW
    out = bytearray(so.total_size)
    so.write_into(memoryview(out))
    _, _, buffers = serialization.parse(memoryview(out))
    # Any Arrow reader can read the stored bytes: they are an IPC stream.
    assert pa.ipc.open_stream(pa.py_buffer(bytes(buffers[0]))).read_all().equals(table)
    got, is_error = serialization.deserialize(memoryview(out))
    assert not is_error and got.equals(table)
    base = pa.py_buffer(memoryview(out)).address
    column = got.column("x").chunk(0).buffers()[1]
    assert base <= column.address < base + len(out)  # built over the encoded bytes: zero-copy
    batch = table.to_batches()[0]
    back, _ = serialization.deserialize(serialization.serialize(batch).to_bytes())
    assert isinstance(back, pa.RecordBatch) and back.equals(batch)


def test_a_cancel_while_pickling_stays_a_cancel():
    # The cancel signal raises TaskCancelledError wherever the task is,
    # pickling its return included: that is not an unpicklable value.
    class Cancelled:
        def __reduce__(self):
            raise exceptions.TaskCancelledError("the task was cancelled while it ran")

    with pytest.raises(exceptions.TaskCancelledError):
        serialization.serialize([1, Cancelled()])
