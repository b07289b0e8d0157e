"""SpanRecords (ember_common.span_export) as OTLP protobuf bytes: an
`ExportTraceServiceRequest` (opentelemetry-proto's
opentelemetry/proto/collector/trace/v1/trace_service.proto and the
trace/common/resource protos it uses), written field by field.

Why by hand: building the generated messages costs ~18 us a span in
Python (a KeyValue and an AnyValue object per attribute); writing the wire
format directly, with the attribute keys' bytes kept, costs a few. Only
what Ember's spans use is written; field numbers and wire types are the
protos' (checked against the generated classes in
tests/unit/test_span_export.py).
"""

from __future__ import annotations

import binascii
import struct
from typing import Any, Iterable, Mapping

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_hexlify = binascii.hexlify


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), length, payload."""
    n = len(payload)
    return tag + (bytes((n,)) if n < 0x80 else _varint(n)) + payload


# AnyValue: string_value = 1, bool_value = 2, int_value = 3, double_value = 4, array_value = 5.
def any_value(value: Any) -> bytes:
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, bytes):  # (Ember's ids: as lowercase hex, as traceparents write them)
        return _field(b"\x0a", value.hex().encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)  # (int64: two's complement, as protobuf writes it)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, (list, tuple)):  # ArrayValue { repeated AnyValue values = 1; }
        return _field(b"\x2a", b"".join(_field(b"\x0a", any_value(v)) for v in value))
    return _field(b"\x0a", str(value).encode())


class AttributeWriter:
    """KeyValue lists (key = 1, value = 2), each key's bytes made once."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    def key_values(self, tag: bytes, attributes: Mapping[str, Any]) -> bytes:
        """`attributes` as repeated KeyValue fields under `tag` (one byte)."""
        keys = self._keys
        out = []
        for key, value in attributes.items():
            encoded_key = keys.get(key)
            if encoded_key is None:
                encoded_key = keys[key] = _field(b"\x0a", key.encode())
            kind = type(value)
            if kind is bytes or kind is str:  # (the common case, written in one formatting)
                text = _hexlify(value) if kind is bytes else value.encode()
                n = len(text)
                size = len(encoded_key) + n + 4
                if size < 0x80:
                    out.append(b"%b%c%b\x12%c\x0a%c%b" % (tag, size, encoded_key, n + 2, n, text))
                    continue
            out.append(_field(tag, encoded_key + _field(b"\x12", any_value(value))))
        return b"".join(out)


_TIMES = struct.Struct("<BQBQ").pack  # start_time_unix_nano = 7, end_time_unix_nano = 8 (fixed64)
_KINDS = [b"\x30%c" % k for k in range(6)]  # kind = 6
_FLAGS = b"\x85\x01" + _FIXED32(1)  # flags = 16 (fixed32): the sampled trace flag


class RequestWriter:
    """ExportTraceServiceRequest bytes for batches of spans of one
    resource and instrumentation scope."""

    def __init__(self, resource: Mapping[str, Any], scope: str) -> None:
        self._attributes = AttributeWriter()
        # Resource { repeated KeyValue attributes = 1; }
        self._resource_field = _field(b"\x0a", self._attributes.key_values(b"\x0a", resource))  # ResourceSpans.resource = 1
        # InstrumentationScope { string name = 1; }
        self._scope_field = _field(b"\x0a", _field(b"\x0a", scope.encode()))  # ScopeSpans.scope = 1
        self._names: dict[str, bytes] = {}  # span name -> its field (names repeat: one per function)
        # parent span id (hex) -> (its trace id, hex; the trace_id and parent_span_id fields): the spans of
        # a batch mostly share a parent (every task of one driver span, every call of one task)
        self._parents: dict[str, tuple[str, bytes]] = {}

    def request(self, spans: Iterable[Any]) -> bytes:
        span = self.span
        span_fields = b"".join([span(s) for s in spans])  # ScopeSpans.spans = 2 (each a field already)
        scope_spans = _field(b"\x12", self._scope_field + span_fields)  # ResourceSpans.scope_spans = 2
        return _field(b"\x0a", self._resource_field + scope_spans)  # ExportTraceServiceRequest.resource_spans = 1

    def span(self, s: Any) -> bytes:
        """One Span message as a ScopeSpans.spans field (tag, length, the
        message), from a ClosedSpan (ember_common.span_export; or a
        SpanRecord): trace_id = 1, span_id = 2, trace_state = 3,
        parent_span_id = 4, name = 5, kind = 6, start/end_time_unix_nano =
        7/8 (fixed64), attributes = 9, events = 11, links = 13, status =
        15, flags = 16 (fixed32). (Fields in any order: protobuf readers
        take them so; the ids come first, as the cache below has them.)"""
        if type(s) is not tuple:
            s = s.closed()
        (trace_id, span_id, parent_id, trace_state, span_name, kind, start_ns, end_ns, attributes, links, events,
         status_code, status_message) = s
        fromhex = bytes.fromhex
        name = self._names.get(span_name)
        if name is None:
            name = _field(b"\x2a", span_name.encode())
            if len(self._names) < 10_000:
                self._names[span_name] = name
        if parent_id:
            cached = self._parents.get(parent_id)
            if cached is None or cached[0] != trace_id:
                if len(self._parents) >= 4096:
                    self._parents.clear()
                cached = self._parents[parent_id] = (
                    trace_id, b"\x0a\x10%b\x22\x08%b" % (fromhex(trace_id), fromhex(parent_id)))
            ids = cached[1]
        else:
            ids = b"\x0a\x10" + fromhex(trace_id)
        parts = [ids, b"\x12\x08", fromhex(span_id), name, _KINDS[kind], _TIMES(0x39, start_ns, 0x41, end_ns)]
        if trace_state:
            parts.append(_field(b"\x1a", trace_state.encode()))
        if attributes:
            parts.append(self._attributes.key_values(b"\x4a", attributes))
        if events:
            for event_name, time_ns, event_attributes in events:  # Event: time_unix_nano = 1, name = 2, attributes = 3
                parts.append(_field(b"\x5a", b"\x09" + _FIXED64(time_ns) + _field(b"\x12", event_name.encode())
                                    + self._attributes.key_values(b"\x1a", event_attributes)))
        if links:
            for link_trace_id, link_span_id in links:  # Link: trace_id = 1, span_id = 2, flags = 6 (fixed32)
                parts.append(_field(b"\x6a", b"\x0a\x10" + fromhex(link_trace_id) + b"\x12\x08"
                                    + fromhex(link_span_id) + b"\x35" + _FIXED32(1)))
        if status_code:  # Status: message = 2, code = 3
            parts.append(_field(b"\x7a", _field(b"\x12", status_message.encode()) + b"\x18" + bytes((status_code,))))
        parts.append(_FLAGS)
        message = b"".join(parts)
        n = len(message)
        if n < 0x80:
            return b"\x12%c%b" % (n, message)
        if n < 0x4000:  # (most spans: a two-byte length)
            return b"\x12%c%c%b" % ((n & 0x7F) | 0x80, n >> 7, message)
        return b"\x12" + _varint(n) + message
