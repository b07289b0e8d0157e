"""The language-neutral value encoding (docs/other-languages.md), without
sockets: documents both ways, Python's natural values, clear errors."""

import json
import struct

import msgpack
import pyarrow as pa
import pytest

from ember import exceptions
from ember._private import neutral, serialization
from ember._private.object_ref import ObjectRef
from ember_common import neutral_values
from ember_common.neutral_values import NeutralDecodeError, NotNeutralError
from ember_common.object_layout import Kind, SerializedObject, parse

REF = bytes(range(20))


def _roundtrip(value):
    so = neutral.serialize(value)
    got, is_error = serialization.deserialize(so.to_bytes())
    assert not is_error
    return so, got


@pytest.mark.parametrize("value", [None, True, False, 0, -1, 2**63 - 1, -(2**63), 1.5, "", "héllo", b"", b"\x00\xff",
                                   [], [1, "a", None], {"a": {"b": [1.0, b"x"]}}])
def test_plain_values_round_trip_through_an_object(value):
    so, got = _roundtrip(value)
    assert so.kind == Kind.MSGPACK
    assert got == value and type(got) is type(value)


def test_documents_are_plain_msgpack_with_bin_for_bytes_and_str_for_text():
    document, refs = neutral_values.encode({"k": [b"\x01", "t", 7]})
    assert refs == []
    assert msgpack.unpackb(document, raw=True) == {b"k": [b"\x01", b"t", 7]}
    assert document == msgpack.packb({"k": [b"\x01", "t", 7]}, use_bin_type=True)


def test_tuples_go_as_lists():
    assert _roundtrip((1, (2, 3)))[1] == [1, [2, 3]]


def test_a_table_is_an_arrow_object_and_reads_back_as_a_table():
    table = pa.table({"x": [1, 2, 3], "s": ["a", "b", None]})
    so, got = _roundtrip(table)
    assert so.kind == Kind.ARROW
    assert isinstance(got, pa.Table) and got.equals(table)
    # Its neutral document is one ext 2 holding the IPC stream, read by any Arrow reader.
    document = b"".join(bytes(c) for c in neutral_values.wire_chunks(so.to_bytes(), 1 << 20))
    ext = msgpack.unpackb(document, ext_hook=lambda code, data: (code, data))
    assert ext[0] == neutral_values.EXT_ARROW_TABLE
    assert pa.ipc.open_stream(ext[1]).read_all().equals(table)


def test_a_table_put_by_python_is_readable_as_a_neutral_document():
    table = pa.table({"v": [1.5]})
    so = serialization.serialize(table)  # the Python SDK's own put
    document = b"".join(bytes(c) for c in neutral_values.wire_chunks(so.to_bytes(), 7))
    assert neutral.decode_document(document).equals(table)


def test_tables_nested_in_a_map_and_a_record_batch():
    table = pa.table({"x": [1]})
    _, got = _roundtrip({"t": table, "b": pa.record_batch([pa.array([2])], names=["y"])})
    assert got["t"].equals(table)
    assert isinstance(got["b"], pa.Table) and got["b"].column("y").to_pylist() == [2]


def test_a_document_of_one_table_is_stored_as_arrow_without_parsing():
    ipc = neutral._table_bytes(pa.table({"x": list(range(100_000))}))
    document = neutral_values.ext_header(2, len(ipc)) + ipc
    so = neutral_values.to_object(document, [])
    assert so.kind == Kind.ARROW and bytes(so.buffers[0]) == ipc
    assert neutral_values.to_object(msgpack.packb([1]), []).kind == Kind.MSGPACK


def test_refs_are_ext_1_and_listed_as_nested():
    ref = ObjectRef(REF)
    document, refs = neutral_values.encode({"r": [ref]}, neutral._ref_id)
    assert refs == [REF]
    decoded = msgpack.unpackb(document, ext_hook=lambda code, data: (code, data))
    assert decoded == {"r": [(1, REF)]}
    so = neutral.serialize({"r": [ref]})
    assert so.nested_ids == [REF]
    assert neutral_values.refs_in(neutral_values.decode(document)) == [REF]


def test_decoded_refs_are_object_refs():
    got = neutral.decode_document(msgpack.packb([msgpack.ExtType(1, REF)]))
    assert isinstance(got[0], ObjectRef) and got[0].binary() == REF


@pytest.mark.parametrize("value,names", [
    (object(), "value is of type object"),
    ({"a": [1, {2}]}, "value['a'][1] is of type set"),
    ({1: "x"}, "key of type int"),
    (2**64, "out of the 64-bit range"),
    (pytest, "of type module"),
])
def test_values_without_an_encoding_fail_naming_the_type(value, names):
    with pytest.raises(NotNeutralError, match="no language-neutral encoding|key of type|64-bit") as info:
        neutral.serialize(value)
    assert names in str(info.value)


def test_a_custom_class_is_named_in_the_error():
    class Point:
        pass

    with pytest.raises(NotNeutralError, match=r"value\[0\] is of type .*Point"):
        neutral.serialize([Point()])


@pytest.mark.parametrize("document,match", [
    (b"\xc1", "not a valid MessagePack"),
    (msgpack.packb([1, 2]) + b"\x01", "not a valid MessagePack"),
    (msgpack.packb({1: "a"}), "map key"),
    (msgpack.packb(msgpack.ExtType(9, b"x")), "unknown MessagePack extension type 9"),
    (msgpack.packb(msgpack.ExtType(1, b"short")), "20-byte object id"),
    (b"", "not a valid MessagePack"),
])
def test_bad_documents_are_refused_with_the_reason(document, match):
    with pytest.raises(NeutralDecodeError, match=match):
        neutral_values.decode(document)


def test_deep_nesting_is_refused():
    document = b"\x91" * 200 + b"\xc0"
    with pytest.raises(NeutralDecodeError):
        neutral_values.decode(document)


def test_call_arguments_resolve_top_level_dependencies_only():
    dep = bytes([7]) * 20
    document = msgpack.packb([[msgpack.ExtType(1, dep), [msgpack.ExtType(1, dep)]], {"k": msgpack.ExtType(1, dep)}])
    args, kwargs = neutral.unpack_args(document, [dep], ["VALUE"])
    assert args[0] == "VALUE"
    assert isinstance(args[1][0], ObjectRef) and args[1][0].binary() == dep
    assert kwargs == {"k": "VALUE"}
    with pytest.raises(NeutralDecodeError, match="2-element array"):
        neutral.unpack_args(msgpack.packb([1, 2, 3]), [], [])


def test_errors_for_other_languages_carry_type_message_and_traceback():
    try:
        raise ValueError("bad input 7")
    except ValueError as e:
        so = neutral.serialize_error(e, "mod.fn")
    assert so.kind == Kind.CODE_ERROR
    fields = json.loads(so.inband)
    assert fields["type"] == "ValueError" and fields["message"] == "bad input 7"
    assert "Traceback" in fields["traceback"] and fields["function"] == "mod.fn"
    error, is_error = serialization.deserialize(so.to_bytes())
    assert is_error and isinstance(error, exceptions.TaskError) and "bad input 7" in str(error)


def test_runtime_failures_stay_system_errors():
    so = neutral.serialize_error(exceptions.TaskCancelledError("cancelled"), "f")
    assert so.kind == Kind.SYSTEM_ERROR
    error, is_error = serialization.deserialize(so.to_bytes())
    assert is_error and type(error) is exceptions.TaskCancelledError


def test_python_only_objects_are_named_when_asked_for_a_document():
    so = serialization.serialize({"a": 1})
    with pytest.raises(NotNeutralError, match="Python-only value"):
        list(neutral_values.wire_chunks(so.to_bytes(), 100))


def test_wire_chunks_are_bounded_and_join_to_the_document():
    value = {"blob": b"x" * 10_000}
    so = neutral.serialize(value)
    chunks = list(neutral_values.wire_chunks(so.to_bytes(), 4096))
    assert all(len(c) <= 4096 for c in chunks) and len(chunks) == 3
    assert msgpack.unpackb(b"".join(bytes(c) for c in chunks)) == value


def test_ext_headers_match_msgpack():
    for n in (0, 255, 256, 65535, 65536):
        assert neutral_values.ext_header(2, n) == msgpack.packb(msgpack.ExtType(2, b"\0" * n))[:len(
            neutral_values.ext_header(2, n))]
    assert neutral_values.bin_header(300) == struct.pack(">BH", 0xC5, 300)
    raw = SerializedObject(Kind.RAW, b"abc", [], []).to_bytes()
    assert msgpack.unpackb(b"".join(bytes(c) for c in neutral_values.wire_chunks(raw, 2))) == b"abc"
    assert parse(memoryview(raw))[0] == Kind.RAW
