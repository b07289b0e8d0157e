"""Spans from the services (GCS, raylet, object store): the control-plane
work a traced task causes and node-to-node object transfers, each a child
of the task's W3C context (docs/tracing.md).

`active` is None unless `configure()` found tracing asked for by the
OTEL_* variables (ember_common.span_export.wanted); the hot paths test
`service_spans.active is not None` (an attribute read) and do nothing else
when it is None, and nothing of OpenTelemetry is imported. On, a span is
recorded only under a sampled parent (parent-based sampling: the services
start no trace of their own; OTEL_TRACES_SAMPLER=always_off records
nothing at all).

A caller passes its context to an RPC as the gRPC metadata `traceparent`
(and `tracestate`), as OpenTelemetry's gRPC instrumentation does:
`metadata(traceparent)` on the client side, `rpc_span(context, ...)` in a
servicer.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from typing import Any, Callable, Iterator, Mapping

from ember_common import span_export
from ember_common.span_export import SpanRecord

log = logging.getLogger(__name__)

active: "ServiceSpans | None" = None


class ServiceSpans:
    """The spans of one service process, exported by an OtlpExporter."""

    def __init__(self, exporter: span_export.OtlpExporter) -> None:
        self.exporter = exporter

    def start(self, traceparent: str, name: str, attributes: dict[str, Any] | None = None,
              kind: int = span_export.INTERNAL, start_ns: int = 0, tracestate: str = "") -> SpanRecord | None:
        """A span, child of `traceparent`, begun now (or at `start_ns`);
        None unless that context is sampled. The caller ends it."""
        parsed = span_export.parse_traceparent(traceparent)
        if parsed is None or not parsed[2] & 1:
            return None
        trace_id, parent_id, _ = parsed
        return SpanRecord(self.exporter, trace_id, parent_id, name, kind, start_ns, attributes, tracestate)

    def record(self, traceparent: str, name: str, start_ns: int, attributes: dict[str, Any] | None = None,
               kind: int = span_export.INTERNAL) -> None:
        """A span from `start_ns` to now, child of `traceparent` (if sampled)."""
        parsed = span_export.parse_traceparent(traceparent)
        if parsed is not None and parsed[2] & 1:
            self.exporter.record(parsed[0], parsed[1], name, kind, start_ns or time.time_ns(), time.time_ns(),
                                 attributes if attributes is not None else {})


def configure(service_name: str, attributes: Mapping[str, Any] | None = None,
              environ: Mapping[str, str] | None = None) -> bool:
    """Turn the service's spans on if the OTEL_* settings ask for them;
    whether they are on. (No OpenTelemetry package is needed: the spans are
    written as OTLP protobuf by ember_common.otlp_encoding.)"""
    global active
    env = os.environ if environ is None else environ
    if not span_export.wanted(env) or env.get("OTEL_TRACES_SAMPLER", "").strip().lower() == "always_off":
        active = None
        return False
    try:
        exporter = span_export.OtlpExporter(service_name, attributes or {}, env)
    except (OSError, ValueError) as e:  # (a certificate file that cannot be read, a malformed endpoint)
        log.warning("the OTLP exporter cannot be set up (%s): the service exports no spans", e)
        active = None
        return False
    active = ServiceSpans(exporter)
    log.info("%s exports spans over OTLP (service.name %s)", service_name, exporter.resource["service.name"])
    return True


def shutdown() -> None:
    """Send what is buffered and stop (a service's clean stop)."""
    global active
    spans, active = active, None
    if spans is not None:
        spans.exporter.close()


def metadata(traceparent: str, tracestate: str = "") -> tuple[tuple[str, str], ...] | None:
    """gRPC call metadata carrying a context to the called service (None:
    nothing to carry, or not sampled)."""
    if not traceparent or not span_export.sampled(traceparent):
        return None
    if tracestate:
        return (("traceparent", traceparent), ("tracestate", tracestate))
    return (("traceparent", traceparent),)


def incoming(context: Any) -> tuple[str, str]:
    """The traceparent and tracestate a gRPC call's metadata carries ("" if none)."""
    traceparent = tracestate = ""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent":
            traceparent = value if isinstance(value, str) else value.decode("ascii", "replace")
        elif key == "tracestate":
            tracestate = value if isinstance(value, str) else value.decode("ascii", "replace")
    return traceparent, tracestate


@contextlib.contextmanager
def rpc_span(context: Any, name: str, attributes: dict[str, Any] | None = None) -> Iterator[SpanRecord | None]:
    """A SERVER span for the RPC being served, child of the context the
    caller sent in its metadata; None (nothing recorded) when tracing is
    off, the call carries no context or an unsampled one. An error raised
    inside marks the span failed."""
    spans = active
    if spans is None:
        yield None
        return
    traceparent, tracestate = incoming(context)
    span = spans.start(traceparent, name, attributes, span_export.SERVER, tracestate=tracestate) if traceparent else None
    if span is None:
        yield None
        return
    try:
        yield span
    except BaseException as e:
        span.fail(f"{type(e).__name__}: {e}")
        raise
    finally:
        span.end()


def traced(name: str, attributes_of: Callable[[Any], dict[str, Any]] | None = None) -> Callable[[Any], Any]:
    """Decorates an async servicer method: its call is an `rpc_span` named
    `name`, with `attributes_of(request)`. Off, one attribute read more per
    call. (Put it under the error-mapping decorator: it sees the raised error.)"""
    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        async def call(self: Any, request: Any, context: Any) -> Any:
            if active is None:
                return await method(self, request, context)
            with rpc_span(context, name) as span:
                if span is not None and attributes_of is not None:
                    span.attributes.update(attributes_of(request))
                return await method(self, request, context)
        return call
    return wrap
