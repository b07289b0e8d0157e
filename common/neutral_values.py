"""The language-neutral value encoding (docs/other-languages.md is its
specification): how values travel between Ember and clients or callers that
are not Python.

A value is one MessagePack document. MessagePack's own types carry null,
booleans, integers (64-bit), floats, UTF-8 strings, raw bytes (bin), arrays
and maps whose keys are strings. Two extension types carry the rest:

    ext 1  ObjectRef    data: the 20-byte object id
    ext 2  Arrow table  data: an Arrow IPC stream (schema, then record batches)

Stored as an object (the object layout, `object_layout.Kind`), a neutral
value is kind MSGPACK (inband: the document), except that a document that
is exactly one Arrow table is kind ARROW (its IPC stream as the one
out-of-band buffer), as a Python `pyarrow.Table` is: so a table put from
any language is read zero-copy by Python, and one Python puts is read by any
language. `wire_chunks` turns any neutral object back into the document.

No pyarrow and no gRPC here: services validate and convert documents with
it; `make_table` / `table_bytes` hooks let the Python SDK bring pyarrow in.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterator

import msgpack

from ember_common.object_layout import Kind, SerializedObject, parse

EXT_OBJECT_REF = 1
EXT_ARROW_TABLE = 2
OBJECT_ID_SIZE = 20
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1  # (uint64 values decode too; encoders write int64)
# Nesting deeper than this is refused (a hostile document must not blow the stack).
MAX_DEPTH = 100


class NotNeutralError(TypeError):
    """A value has no neutral encoding; the message names its type and where it is."""


class NeutralDecodeError(ValueError):
    """Bytes that are not a valid neutral document; the message says what is wrong."""


class RefPlaceholder:
    """An ObjectRef found while checking a document without a runtime."""

    __slots__ = ("object_id",)

    def __init__(self, object_id: bytes) -> None:
        self.object_id = object_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RefPlaceholder) and other.object_id == self.object_id

    def __hash__(self) -> int:
        return hash(self.object_id)

    def __repr__(self) -> str:
        return f"RefPlaceholder({self.object_id.hex()})"


class TablePlaceholder:
    """An Arrow table found while checking a document without pyarrow: its IPC bytes."""

    __slots__ = ("ipc",)

    def __init__(self, ipc: bytes) -> None:
        self.ipc = ipc


# ---- encoding ---------------------------------------------------------------


def encode(value: Any, ref_id: Callable[[Any], bytes | None] = lambda v: None,
           table_bytes: Callable[[Any], bytes | None] = lambda v: None) -> tuple[bytes, list[bytes]]:
    """The document of `value`, and the object ids of the refs inside it.
    `ref_id(v)` says whether v is an object ref (its id) and `table_bytes(v)`
    whether it is a table (its IPC stream). Raises NotNeutralError naming the
    first part that has no neutral encoding."""
    refs: list[bytes] = []
    packer = msgpack.Packer(use_bin_type=True, strict_types=True, autoreset=True)
    out = bytearray()
    _encode_into(value, out, packer, refs, ref_id, table_bytes, "value", 0)
    return bytes(out), refs


def _encode_into(value: Any, out: bytearray, packer: msgpack.Packer, refs: list[bytes],
                 ref_id: Callable[[Any], bytes | None], table_bytes: Callable[[Any], bytes | None],
                 where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise NotNeutralError(f"{where} nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        out += packer.pack(value)
    elif isinstance(value, float):
        out += packer.pack(float(value))  # (numpy.float64 is a float)
    elif isinstance(value, str):
        out += packer.pack(str(value))
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise NotNeutralError(f"{where} is an int out of the 64-bit range ({value})")
        out += packer.pack(int(value))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out += packer.pack(bytes(value))
    elif isinstance(value, (list, tuple)):
        out += packer.pack_array_header(len(value))
        for i, item in enumerate(value):
            _encode_into(item, out, packer, refs, ref_id, table_bytes, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        out += packer.pack_map_header(len(value))
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotNeutralError(f"{where} has a key of type {_type_name(key)} ({key!r}): "
                                      "map keys must be strings")
            out += packer.pack(key)
            _encode_into(item, out, packer, refs, ref_id, table_bytes, f"{where}[{key!r}]", depth + 1)
    else:
        object_id = ref_id(value)
        if object_id is not None:
            refs.append(object_id)
            out += packer.pack(msgpack.ExtType(EXT_OBJECT_REF, object_id))
            return
        ipc = table_bytes(value)
        if ipc is not None:
            out += ext_header(EXT_ARROW_TABLE, len(ipc))
            out += ipc
            return
        raise NotNeutralError(
            f"{where} is of type {_type_name(value)}, which has no language-neutral encoding: send None, bool, int, "
            "float, str, bytes, list/tuple, dict with str keys, pyarrow.Table or ObjectRef values")


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def ext_header(code: int, length: int) -> bytes:
    """The MessagePack header of an ext value of `length` bytes (ext 32 past
    64 KiB, so a large table's bytes follow the header without copying)."""
    if length < 1 << 8:
        return struct.pack(">BBb", 0xC7, length, code)
    if length < 1 << 16:
        return struct.pack(">BHb", 0xC8, length, code)
    return struct.pack(">BIb", 0xC9, length, code)


def bin_header(length: int) -> bytes:
    if length < 1 << 8:
        return struct.pack(">BB", 0xC4, length)
    if length < 1 << 16:
        return struct.pack(">BH", 0xC5, length)
    return struct.pack(">BI", 0xC6, length)


# ---- decoding ---------------------------------------------------------------


def decode(data: bytes | memoryview, make_ref: Callable[[bytes], Any] = RefPlaceholder,
           make_table: Callable[[bytes | memoryview], Any] = TablePlaceholder) -> Any:
    """The value of a document. Raises NeutralDecodeError if it is not one."""
    def ext_hook(code: int, payload: bytes) -> Any:
        if code == EXT_OBJECT_REF:
            if len(payload) != OBJECT_ID_SIZE:
                raise NeutralDecodeError(f"an ObjectRef (ext 1) must hold a {OBJECT_ID_SIZE}-byte object id, "
                                         f"got {len(payload)} bytes")
            return make_ref(payload)
        if code == EXT_ARROW_TABLE:
            return make_table(payload)
        raise NeutralDecodeError(f"unknown MessagePack extension type {code} (Ember uses 1: ObjectRef, "
                                 "2: Arrow table)")

    table = table_document(data)
    if table is not None:  # (no copy of a large table's bytes)
        return make_table(table)
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True, ext_hook=ext_hook)
    except NeutralDecodeError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
            msgpack.OutOfData) as e:
        raise NeutralDecodeError(f"not a valid MessagePack document: {type(e).__name__}: {e}") from None
    _check_keys(value, 0)
    return value


def _check_keys(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise NeutralDecodeError(f"the document nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        for item in value:
            _check_keys(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NeutralDecodeError(f"a map key is a {type(key).__name__} ({key!r}): map keys must be strings")
            _check_keys(item, depth + 1)


def table_document(data: bytes | memoryview) -> memoryview | None:
    """The IPC bytes if the document is exactly one Arrow table (ext 2), else None."""
    view = memoryview(data)
    if len(view) < 3:
        return None
    head = view[0]
    if head == 0xC9 and len(view) >= 6:
        length, code, start = struct.unpack_from(">I", view, 1)[0], struct.unpack_from(">b", view, 5)[0], 6
    elif head == 0xC8 and len(view) >= 4:
        length, code, start = struct.unpack_from(">H", view, 1)[0], struct.unpack_from(">b", view, 3)[0], 4
    elif head == 0xC7:
        length, code, start = view[1], struct.unpack_from(">b", view, 2)[0], 3
    else:
        return None
    if code != EXT_ARROW_TABLE or start + length != len(view):
        return None
    return view[start:]


def refs_in(value: Any) -> list[bytes]:
    """The object ids of the RefPlaceholders in a decoded value."""
    found: list[bytes] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, RefPlaceholder):
            found.append(item.object_id)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


# ---- objects ------------------------------------------------------------------


def to_object(document: bytes | memoryview, nested_ids: list[bytes]) -> SerializedObject:
    """A (checked) document as an object: ARROW if it is one table, else MSGPACK."""
    table = table_document(document)
    if table is not None:
        return SerializedObject(Kind.ARROW, b"table", [table], [])
    return SerializedObject(Kind.MSGPACK, bytes(document), [], list(nested_ids))


def wire_chunks(data: bytes | memoryview, chunk_size: int) -> Iterator[memoryview | bytes]:
    """The neutral document of a stored object, in pieces of at most
    `chunk_size` bytes (no piece copies a large buffer). Raises
    NotNeutralError for kinds only Python reads (pickles)."""
    kind, inband, buffers = parse(memoryview(data))
    if kind == Kind.MSGPACK:
        parts: list[memoryview | bytes] = [inband]
    elif kind == Kind.ARROW:
        parts = [ext_header(EXT_ARROW_TABLE, buffers[0].nbytes), buffers[0]]
    elif kind == Kind.RAW:
        parts = [bin_header(inband.nbytes), inband]
    else:
        raise NotNeutralError(f"the object holds a Python-only value (object layout kind "
                              f"{Kind(kind).name}): it was written by a Python caller for Python readers")
    for part in parts:
        view = memoryview(part).cast("B") if not isinstance(part, bytes) else memoryview(part)
        for start in range(0, max(view.nbytes, 1), chunk_size):
            yield view[start:start + chunk_size]
