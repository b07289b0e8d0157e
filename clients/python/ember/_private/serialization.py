"""How a Python value becomes bytes and back, in the object layout of
`ember_common.object_layout` (pickle protocol 5, large buffers out of band so
a reader on the node rebuilds numpy arrays over shared memory without copying).

ObjectRefs inside a value are pickled by id; the ids are collected while
encoding (`SerializedObject.nested_ids`) so the owner can pin them.

`pyarrow.Table` and `RecordBatch` values are kind ARROW: one buffer holding
an Arrow IPC stream (schema, then the record batches), so any Arrow reader
(another language's client too) can read a stored object, and a reader on
the node gets a table built over the store's memory without copying.
"""

from __future__ import annotations

import collections
import io
import marshal
import pickle
import threading
import traceback
import types
from typing import Any, Callable

import cloudpickle

from ember import exceptions
from ember_common.object_layout import Failure, Kind, SerializedObject, parse, serialize_raw

__all__ = ["SerializedObject", "deserialize", "dumps_function", "loads_function", "note_nested_ref", "parse",
           "serialize", "serialize_error", "serialize_raw"]

# Buffers smaller than this stay in-band: an out-of-band slot costs more.
_OOB_MIN = 4096
# The kinds as plain ints: every get and put compares or packs one, and an
# enum member's lookup and comparison cost several times an int's.
_PICKLE, _ERROR, _RAW, _ARROW, _SYSTEM_ERROR, _MSGPACK, _CODE_ERROR = (
    int(k) for k in (Kind.PICKLE, Kind.ERROR, Kind.RAW, Kind.ARROW, Kind.SYSTEM_ERROR, Kind.MSGPACK, Kind.CODE_ERROR))


class _Context(threading.local):
    def __init__(self) -> None:
        self.nested: list[bytes] | None = None


_context = _Context()


def note_nested_ref(object_id: bytes) -> None:
    """Called by ObjectRef.__reduce__ while a value is being encoded."""
    if _context.nested is not None:
        _context.nested.append(object_id)


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
    return SerializedObject(_ARROW, kind, [memoryview(sink.getvalue())], [])


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
    except exceptions.EmberError:
        raise  # not a pickling error: a cancel that landed meanwhile, a get in a __reduce__ that failed
    except Exception as e:  # pickling errors come in many types
        raise TypeError(f"cannot serialize {type(value).__name__} value: {why_unpicklable(value)}") from e
    finally:
        _context.nested = outer
    return SerializedObject(_PICKLE, data, buffers, nested)


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
    return SerializedObject(_ERROR, data, [], [])


def deserialize(data: bytes | memoryview) -> tuple[Any, bool]:
    """Decode an object: (value, is_error). Buffers stay views of `data`."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    kind, inband, buffers = parse(view)
    if kind == _PICKLE:
        return pickle.loads(inband, buffers=buffers), False
    if kind == _RAW:
        return bytes(inband), False
    if kind == _ERROR:
        return pickle.loads(inband), True
    if kind == _SYSTEM_ERROR:
        failure = Failure.decode(inband)
        return getattr(exceptions, failure.type.value)(failure.message), True
    if kind == _ARROW:
        return _deserialize_arrow(inband, buffers), False
    if kind == _MSGPACK:  # put (or returned to) a client in another language
        from ember._private import neutral

        return neutral.decode_document(inband), False
    if kind == _CODE_ERROR:
        from ember._private import neutral

        return neutral.deserialize_code_error(inband), True
    raise ValueError(f"unknown object kind {kind}")


def dumps_function(fn: Any) -> bytes:
    """Pickle a remote function or actor class. Raises TypeError naming
    what it captured that cannot be pickled."""
    out = io.BytesIO()
    try:
        _FunctionPickler(out, protocol=5).dump(fn)
    except Exception as e:  # pickling errors come in many types
        raise TypeError(f"cannot send {getattr(fn, '__qualname__', fn)!r} to workers: {why_unpicklable(fn)}") from e
    return out.getvalue()


def _code_reduce(code: types.CodeType) -> Any:
    return marshal.loads, (marshal.dumps(code),)


class _FunctionPickler(cloudpickle.Pickler):
    """cloudpickle, except that code pickled by value keeps its file name
    (cloudpickle writes "<dynamic-code>"): a remote traceback then names the
    user's file and line, with the source line where the file is readable.
    (Code is marshalled as in .pyc files: workers run the driver's Python.)"""

    dispatch_table = collections.ChainMap({types.CodeType: _code_reduce}, cloudpickle.Pickler.dispatch_table)


def why_unpicklable(value: Any) -> str:
    """What in `value` cannot be pickled, for error messages (as Ray's
    inspect_serializability), e.g. "a _thread.lock cannot be pickled", or
    "a Holder cannot be pickled (.jobs[0].lock is a _thread.lock)", or for a
    function "... (it captures 'lock', a _thread.lock)"."""
    path, culprit = _unpicklable_part(value, _SEARCH_DEPTH)
    text = f"{_a(value)} cannot be pickled"
    if not path:
        return text
    where = ""
    for step in path:
        if step.startswith("'"):  # a variable a function captures
            where += f" captures {step}" if where else f"it captures {step}"
        else:
            where += step
    return f"{text} ({where}, {_a(culprit)})" if path[-1].startswith("'") else f"{text} ({where} is {_a(culprit)})"


_SEARCH_DEPTH = 4  # how deep why_unpicklable looks into containers and objects


def _picklable(value: Any) -> bool:
    try:
        cloudpickle.dumps(value, protocol=5)
        return True
    except Exception:
        return False


def _unpicklable_part(value: Any, depth: int) -> tuple[list[str], Any]:
    """(path to the innermost part that fails, that part); ([], value) if no
    part alone fails (or the search is too deep)."""
    if depth == 0:
        return [], value
    for step, part in _parts(value):
        if not _picklable(part):
            path, culprit = _unpicklable_part(part, depth - 1)
            return [step, *path], culprit
    return [], value


def _parts(value: Any) -> list[tuple[str, Any]]:
    """The parts of a value that pickling it pickles, each with its step in
    a path: a function's captured variables and globals, items, attributes."""
    import inspect
    import types

    if isinstance(value, types.FunctionType):
        try:
            captured = inspect.getclosurevars(value)
        except (TypeError, ValueError):
            return []
        return [(f"'{k}'", v) for k, v in {**captured.nonlocals, **captured.globals}.items()
                if not isinstance(v, types.ModuleType)]
    if isinstance(value, type):
        return [(f".{k}", v) for k, v in vars(value).items() if isinstance(v, types.FunctionType)]
    if isinstance(value, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return [("{...}", v) for v in value]
    if isinstance(value, dict):
        return [(f"[{k!r}]", v) for k, v in value.items()]
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        return [(f".{k}", v) for k, v in attributes.items()]
    return []


def _a(value: Any) -> str:
    """'a _thread.lock', 'function process', 'class Holder'."""
    import types

    if isinstance(value, types.FunctionType):
        return f"function {value.__qualname__}"
    if isinstance(value, type):
        return f"class {value.__qualname__}"
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ in ("builtins", "__main__") else f"{kind.__module__}.{kind.__qualname__}"
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def loads_function(data: bytes) -> Any:
    return pickle.loads(data)
