"""Spans of node-to-node object transfers (docs/tracing.md). A pull that
is traced sends its span's W3C context with each range it asks for (a
fixed-size field of the transfer request: trace id, span id, flags; all
zeros when none), and the sending store records an `object push` span,
child of that pull, with the bytes it sent."""

from __future__ import annotations

import time

from ember_common import service_spans, span_export

CONTEXT_BYTES = 16 + 8 + 1
NO_CONTEXT = bytes(CONTEXT_BYTES)


def context_bytes(traceparent: str) -> bytes:
    """The request field for a pull traced under `traceparent` ("" or unsampled: none)."""
    parsed = span_export.parse_traceparent(traceparent) if traceparent else None
    if parsed is None or not parsed[2] & 1:
        return NO_CONTEXT
    trace_id, span_id, flags = parsed
    return bytes.fromhex(trace_id + span_id) + bytes((flags,))


def pushed(context: bytes, object_id: bytes, offset: int, count: int, start_ns: int) -> None:
    """A range was sent to a puller whose request carried `context`."""
    spans = service_spans.active
    if spans is None or context == NO_CONTEXT or not context[24] & 1:
        return
    spans.exporter.record(context[:16].hex(), context[16:24].hex(), "object push", span_export.SERVER, start_ns,
                          time.time_ns(), {"ember.object_id": object_id.hex(), "ember.bytes": count, "ember.offset": offset})
