"""Python values in the language-neutral encoding (ember_common.neutral_values,
docs/other-languages.md): what a worker reads from, and sends back to, a
caller that is not Python, and what `ember.get` makes of an object a client
in another language put.

Natural values both ways: None, bool, int, float, str, bytes, list (tuples
go as lists), dict with str keys, `pyarrow.Table` (a RecordBatch goes as a
table), ObjectRef. Anything else fails with NotNeutralError naming its type.
"""

from __future__ import annotations

import json
import traceback
from typing import Any

from ember import exceptions
from ember_common import neutral_values
from ember_common.neutral_values import NeutralDecodeError, NotNeutralError
from ember_common.object_layout import Failure, FailureType, Kind, SerializedObject

__all__ = ["NeutralDecodeError", "NotNeutralError", "decode_document", "deserialize_code_error", "serialize",
           "serialize_error", "unpack_args"]


def _ref_id(value: Any) -> bytes | None:
    from ember._private.object_ref import ObjectRef

    return value.binary() if isinstance(value, ObjectRef) else None


def _table_bytes(value: Any) -> bytes | None:
    if not type(value).__module__.startswith("pyarrow"):
        return None
    import pyarrow as pa

    if isinstance(value, pa.RecordBatch):
        value = pa.Table.from_batches([value])
    if not isinstance(value, pa.Table):
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, value.schema) as writer:
        writer.write_table(value)
    return sink.getvalue().to_pybytes()


def _make_ref(object_id: bytes) -> Any:
    from ember._private.object_ref import _rebuild_ref

    return _rebuild_ref(object_id)  # counted by this process's client, as an unpickled ref is


def _make_table(ipc: bytes | memoryview) -> Any:
    import pyarrow as pa

    return pa.ipc.open_stream(pa.py_buffer(ipc)).read_all()


def serialize(value: Any) -> SerializedObject:
    """A value as a neutral object: ARROW for a table, else MSGPACK.
    Raises NotNeutralError naming what cannot be expressed."""
    table = _table_bytes(value)
    if table is not None:
        return SerializedObject(Kind.ARROW, b"table", [memoryview(table)], [])
    document, refs = neutral_values.encode(value, _ref_id, _table_bytes)
    return SerializedObject(Kind.MSGPACK, document, [], refs)


def decode_document(document: bytes | memoryview) -> Any:
    """The Python value of a neutral document (an object's MSGPACK inband)."""
    return neutral_values.decode(document, _make_ref, _make_table)


def unpack_args(document: bytes, dependencies: list[bytes], dep_values: list[Any]) -> tuple[tuple[Any, ...],
                                                                                              dict[str, Any]]:
    """A neutral call's arguments: the document is [args array, kwargs map];
    a top-level argument that is a ref to one of the task's dependencies is
    replaced by that object's value (as a Python caller's ObjectRef argument
    is); refs nested deeper stay ObjectRefs."""
    values = dict(zip(dependencies, dep_values))
    call = neutral_values.decode(document, neutral_values.RefPlaceholder, _make_table)
    if not (isinstance(call, list) and len(call) == 2 and isinstance(call[0], list) and isinstance(call[1], dict)):
        raise NeutralDecodeError("a neutral call's arguments must be a 2-element array: [args array, kwargs map]")

    def resolve(a: Any, top: bool) -> Any:
        if isinstance(a, neutral_values.RefPlaceholder):
            if top and a.object_id in values:
                return values[a.object_id]
            return _make_ref(a.object_id)
        if isinstance(a, list):
            return [resolve(x, False) for x in a]
        if isinstance(a, dict):
            return {k: resolve(v, False) for k, v in a.items()}
        return a

    return tuple(resolve(a, True) for a in call[0]), {k: resolve(v, True) for k, v in call[1].items()}


def serialize_error(error: BaseException, function_name: str) -> SerializedObject:
    """An exception for a caller that is not Python: a runtime failure as
    SYSTEM_ERROR, anything else as CODE_ERROR (type name, message, traceback)."""
    failure_names = {t.value: t for t in FailureType}
    kind_name = type(error).__name__
    if isinstance(error, exceptions.EmberError) and kind_name in failure_names:
        return Failure(failure_names[kind_name], str(error)).to_object()
    cause = error.cause if isinstance(error, exceptions.TaskError) and error.cause is not None else error
    tb = getattr(error, "traceback_str", None) or "".join(
        traceback.format_exception(type(error), error, error.__traceback__))
    body = json.dumps({"type": type(cause).__name__, "message": str(cause), "traceback": tb,
                       "function": function_name})
    return SerializedObject(Kind.CODE_ERROR, body.encode(), [], [])


def deserialize_code_error(inband: bytes | memoryview) -> exceptions.TaskError:
    """A CODE_ERROR object as Python raises it: a TaskError with the remote traceback."""
    fields = json.loads(bytes(inband))
    return exceptions.TaskError(str(fields.get("function", "<unknown>")),
                                f"{fields.get('traceback') or ''}".rstrip() or
                                f"{fields.get('type')}: {fields.get('message')}")
