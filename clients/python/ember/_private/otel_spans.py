"""The spans of a process that traces (ember._private.tracing turned it on):
task submit, schedule (queue time) and execute, object get and put, and the
link a queue item carries from its producer to its consumer. Loaded only
then: it imports the OpenTelemetry SDK and its OTLP/gRPC exporter.

A task's W3C context (TaskSpec.traceparent, tracestate, baggage) is its
submitter's current span: a span active in a driver becomes the parent of
the task's spans, and a task's execute span, current while it runs, the
parent of what it submits. Sampling is the parent's (the SDK's
parent-based default): a task whose traceparent is not sampled records
nothing and passes the unsampled flag on to its own tasks.
"""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry import baggage, context, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

from ember._private.tracing import QueueItem

_TRACE_CONTEXT = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()
TRACER_NAME = "ember"


class RunningTask:
    """A task's execute span while it runs (None when its trace is not
    sampled), and the context made current for it."""

    __slots__ = ("span", "_token")

    def __init__(self, span: trace.Span | None, token: object) -> None:
        self.span = span
        self._token = token

    def end(self) -> None:
        context.detach(self._token)
        if self.span is not None:
            self.span.end()


class UnsampledSubmission:
    """A submission under an unsampled span: no span, and the task carries
    that span's context on as it is (0% sampling must cost next to nothing)."""

    __slots__ = ("_span_context", "_context")

    def __init__(self, span_context: trace.SpanContext, ctx: context.Context) -> None:
        self._span_context = span_context
        self._context = ctx

    def stamp(self, spec: Any) -> None:
        _stamp(spec, self._span_context, self._context)

    def end(self) -> None:
        pass


def _stamp(spec: Any, sc: trace.SpanContext, ctx: context.Context) -> None:
    """A task's W3C context: span context `sc`, with the baggage of `ctx`.
    (Formatted here, not by the propagators: a few calls, not dozens.)"""
    spec.traceparent = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}"
    if sc.trace_state:
        spec.tracestate = sc.trace_state.to_header()
    if baggage.get_all(ctx):
        carrier: dict[str, str] = {}
        _BAGGAGE.inject(carrier, ctx)
        spec.baggage = carrier.get("baggage", "")


class Submission:
    """A task's submit span, from its .remote() call until it is queued."""

    __slots__ = ("span", "_context")

    def __init__(self, span: trace.Span, ctx: context.Context) -> None:
        self.span = span
        self._context = ctx

    def stamp(self, spec: Any) -> None:
        """Put the task's trace context in its spec: the submitter's current
        span, or with none, this submit span (the root of a new trace)."""
        ctx = self._context
        current = trace.get_current_span(ctx).get_span_context()
        _stamp(spec, current if current.is_valid else self.span.get_span_context(), ctx)
        spec.submit_time_ns = time.time_ns()
        if self.span.is_recording():
            self.span.set_attribute("ember.task_id", spec.task_id.hex())

    def end(self) -> None:
        self.span.end()


class OtelSpans:
    """This process's tracer: the application's own TracerProvider if it set
    one up (a driver), else one of ours exporting over OTLP/gRPC as the
    OTEL_* variables say (endpoint, headers, TLS, sampler, batching)."""

    def __init__(self, service_name: str, attributes: dict[str, Any]) -> None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):  # none set up by the application
            provider = _otlp_provider(service_name, attributes)
            trace.set_tracer_provider(provider)
        self.tracer = provider.get_tracer(TRACER_NAME)
        # The creation span of the detached actor this worker hosts: a later
        # call in another trace links to it (a hand-over, not a parent).
        self.detached_creation: trace.SpanContext | None = None

    def flush(self, timeout_s: float) -> None:
        provider = trace.get_tracer_provider()
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            force_flush(int(timeout_s * 1000))

    @staticmethod
    def current_metadata() -> tuple[tuple[str, str], ...] | None:
        """gRPC metadata with the current span's context, if it is sampled."""
        sc = trace.get_current_span().get_span_context()
        if not sc.is_valid or not sc.trace_flags.sampled:
            return None
        traceparent = ("traceparent", f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}")
        if sc.trace_state:
            return (traceparent, ("tracestate", sc.trace_state.to_header()))
        return (traceparent,)

    # ---- a submitter --------------------------------------------------------

    def start_submit(self, name: str) -> Submission | UnsampledSubmission:
        ctx = context.get_current()
        current = trace.get_current_span(ctx).get_span_context()
        if current.is_valid and not current.trace_flags.sampled:
            return UnsampledSubmission(current, ctx)
        return Submission(self.tracer.start_span(f"submit {name}", ctx, SpanKind.PRODUCER), ctx)

    # ---- a worker -----------------------------------------------------------

    def start_task(self, spec: Any) -> RunningTask:
        """The spans of a task about to run: its schedule span (submit to
        now), and its execute span, made current until end()."""
        traceparent = spec.traceparent
        if traceparent[:3] == "00-" and not int(traceparent[53:55], 16) & 1:  # (0x02: "random", not "sampled")
            # Not sampled upstream: nothing is recorded here, and what the
            # task submits carries the same unsampled context on. (Read
            # without the propagator: 0% sampling must cost next to nothing;
            # the raylet checked the header's form.)
            unsampled = trace.SpanContext(int(traceparent[3:35], 16), int(traceparent[36:52], 16), True,
                                          trace.TraceFlags(int(traceparent[53:55], 16)),
                                          TraceState.from_header([spec.tracestate]) if spec.tracestate else None)
            parent = trace.set_span_in_context(trace.NonRecordingSpan(unsampled))
            if spec.baggage:
                parent = _BAGGAGE.extract({"baggage": spec.baggage}, parent)
            return RunningTask(None, context.attach(parent))
        parent = _extract(traceparent, spec.tracestate, spec.baggage)
        now = time.time_ns()
        name = spec.function_name
        attributes = {"ember.task_id": spec.task_id.hex(), "ember.job_id": spec.job_id.hex()}
        if spec.actor_id:
            attributes["ember.actor_id"] = spec.actor_id.hex()
        if spec.attempt_number:
            attributes["ember.attempt_number"] = spec.attempt_number
        if spec.submit_time_ns and spec.submit_time_ns <= now:
            self.tracer.start_span(f"schedule {name}", parent, attributes=attributes,
                                   start_time=spec.submit_time_ns).end(end_time=now)
        links = None
        creation = self.detached_creation
        if creation is not None and spec.actor_id and not spec.HasField("actor_creation"):
            if trace.get_current_span(parent).get_span_context().trace_id != creation.trace_id:
                links = [Link(creation)]  # a call in a trace of its own, made after the creation's
        span = self.tracer.start_span(f"execute {name}", parent, SpanKind.CONSUMER, attributes, links, start_time=now)
        if spec.HasField("actor_creation") and spec.actor_creation.detached and span.is_recording():
            self.detached_creation = span.get_span_context()
        return RunningTask(span, context.attach(trace.set_span_in_context(span, parent)))

    @staticmethod
    def task_failed(error: BaseException) -> None:
        """The running task raised: its execute span says so."""
        span = trace.get_current_span()
        if span.is_recording():
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))

    # ---- objects ------------------------------------------------------------

    def start_object_span(self, operation: str, count: int) -> trace.Span:
        """An ember.get / ember.put span (ended by the caller); under an
        unsampled span, none (its end() does nothing)."""
        current = trace.get_current_span()
        if not current.is_recording() and current.get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self.tracer.start_span(f"ember.{operation}", attributes={"ember.object_count": count})

    # ---- queues -------------------------------------------------------------

    def queue_item(self, value: Any) -> QueueItem:
        """A queue item carrying the producer's context (its put span's)."""
        with self.tracer.start_as_current_span("queue put", kind=SpanKind.PRODUCER):
            carrier: dict[str, str] = {}
            _TRACE_CONTEXT.inject(carrier)
            _BAGGAGE.inject(carrier)
        return QueueItem(value, carrier)

    def queue_received(self, carrier: dict[str, str], started_ns: int) -> None:
        """The consumer's span for an item it took: a child of its own
        current span, linked to (not a child of) the producer's."""
        producer = trace.get_current_span(_extract(carrier.get("traceparent", ""), carrier.get("tracestate", ""),
                                                   "")).get_span_context()
        links = [Link(producer)] if producer.is_valid else []
        self.tracer.start_span("queue get", kind=SpanKind.CONSUMER, links=links,
                               start_time=started_ns or None).end()


def _extract(traceparent: str, tracestate: str, baggage: str) -> context.Context:
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    ctx = _TRACE_CONTEXT.extract(carrier)
    if baggage:
        ctx = _BAGGAGE.extract({"baggage": baggage}, ctx)
    return ctx


def _otlp_provider(service_name: str, attributes: dict[str, Any]) -> Any:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"process.pid": os.getpid(), **attributes})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):  # OTEL_SERVICE_NAME unset
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)  # its sampler: OTEL_TRACES_SAMPLER, parent-based by default
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
