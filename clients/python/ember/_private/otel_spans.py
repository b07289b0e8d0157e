"""The spans of a process that traces (ember._private.tracing turned it on):
task submit and execute, object get and put, and the
link a queue item carries from its producer to its consumer. Loaded only
then: it imports the OpenTelemetry API and SDK.

A task's W3C context (TaskSpec.traceparent, tracestate, baggage) is its
submitter's current span: a span active in a driver becomes the parent of
the task's spans, and a task's execute span, current while it runs, the
parent of what it submits. Sampling is parent-based by default (the
OTEL_TRACES_SAMPLER setting): a task whose traceparent is not sampled
records nothing and passes the unsampled flag on to its own tasks.

Ember's own spans are `SpanRecord`s exported by ember_common.span_export
(a few Python calls each, not the SDK's ~100): the sampling decision comes
first, and an unsampled task or submission makes no span object at all.
The application's spans (a tracer it gets from the OpenTelemetry API, in a
driver or inside a task) go through the SDK as usual, as children of
Ember's: the execute span is current in the OpenTelemetry context while
the task runs. A driver whose application set up its own TracerProvider
keeps it, and Ember's driver-side spans go through that provider (the
application chose where they go).
"""

from __future__ import annotations

import contextvars
import os
import time
import traceback
from typing import Any, Callable, Mapping

from opentelemetry import baggage, context, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

from ember._private.tracing import QueueItem
from ember_common import span_export
from ember_common.span_export import CONSUMER, INTERNAL, PRODUCER, SAMPLED_DIGITS, SpanRecord, new_trace_id

_TRACE_CONTEXT = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()
TRACER_NAME = "ember"
_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)


def _context_access() -> tuple[Callable[[], Any], Callable[[Any], Any], Callable[[Any], None], str, str]:
    """The current OpenTelemetry context's get / attach / detach, and the
    keys its span and its baggage are kept under. With the API's default
    runtime context (a ContextVar, found through the token attach returns)
    these are the ContextVar's own methods and a dict lookup: a few calls
    per task instead of a dozen through the API's layers. Otherwise the
    API's functions (the same effect)."""
    span_key = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, context.Context())))
    baggage_key = next(iter(baggage.set_baggage("k", "v", context.Context())))
    token = context.attach(context.get_current())
    context.detach(token)
    var = getattr(token, "var", None)
    if isinstance(token, contextvars.Token) and isinstance(var, contextvars.ContextVar):
        return var.get, var.set, var.reset, span_key, baggage_key
    return context.get_current, context.attach, context.detach, span_key, baggage_key


_get_context, _attach, _detach, _SPAN_KEY, _BAGGAGE_KEY = _context_access()
_EMPTY = context.Context()
_getrandbits = span_export._getrandbits


class CurrentSpan(trace.Span):
    """An Ember span (a SpanRecord) as the OpenTelemetry API sees it while
    it is current: the application's spans become its children, and
    `trace.get_current_span()` inside a task can set attributes, events and
    a status on it."""

    __slots__ = ("record", "_trace_state", "_context")

    def __init__(self, record: SpanRecord, trace_state: str = "") -> None:
        self.record = record
        self._trace_state = trace_state
        self._context: trace.SpanContext | None = None

    def get_span_context(self) -> trace.SpanContext:
        sc = self._context
        if sc is None:
            r = self.record
            sc = self._context = trace.SpanContext(
                int(r.trace_id, 16), int(r.span_id, 16), False, _SAMPLED,
                TraceState.from_header([self._trace_state]) if self._trace_state else None)
        return sc

    def is_recording(self) -> bool:
        return not self.record.end_ns

    def set_attribute(self, key: str, value: Any) -> None:
        self.record.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.record.attributes.update(attributes)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self.record.add_event(name, dict(attributes or {}), timestamp or 0)

    def add_link(self, context: trace.SpanContext, attributes: Any = None) -> None:
        if context.is_valid:
            r = self.record
            r.links = [*(r.links or ()), (f"{context.trace_id:032x}", f"{context.span_id:016x}")]

    def update_name(self, name: str) -> None:
        self.record.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        code = status.status_code if isinstance(status, Status) else status
        message = (status.description if isinstance(status, Status) else description) or ""
        if code is StatusCode.ERROR:
            self.record.fail(message)
        elif code is StatusCode.OK:
            self.record.status_code, self.record.status_message = span_export.STATUS_OK, ""

    def record_exception(self, exception: BaseException, attributes: Any = None, timestamp: int | None = None,
                         escaped: bool = False) -> None:
        self.record.add_event("exception", {
            "exception.type": type(exception).__qualname__, "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)), **dict(attributes or {})},
            timestamp or 0)

    def end(self, end_time: int | None = None) -> None:
        self.record.end(end_time or 0)


class UnsampledParent(trace.NonRecordingSpan):
    """The current span in a task whose trace is not sampled: its
    submitter's, not recording. What the task submits carries its context
    on (unsampled), and a span of the application's in it is not sampled
    either. Its SpanContext is made only if asked for (0% sampling must
    cost next to nothing)."""

    def __init__(self, traceparent: str, tracestate: str) -> None:  # (NonRecordingSpan's own: not called)
        self._context = None  # type: ignore[assignment]
        self.traceparent = traceparent
        self.tracestate = tracestate

    def get_span_context(self) -> trace.SpanContext:
        sc = self._context
        if sc is None:
            traceparent = self.traceparent
            sc = self._context = trace.SpanContext(
                int(traceparent[3:35], 16), int(traceparent[36:52], 16), True,
                trace.TraceFlags(int(traceparent[53:55], 16)),
                TraceState.from_header([self.tracestate]) if self.tracestate else None)
        return sc


class RunningTask:
    """A task's execute span while it runs (None when its trace is not
    sampled), and the context made current for it."""

    __slots__ = ("span", "_token")

    def __init__(self, span: SpanRecord | None, token: object) -> None:
        self.span = span
        self._token = token

    def end(self) -> None:
        _detach(self._token)
        if self.span is not None:
            self.span.end()


def _baggage_header(ctx: context.Context) -> str:
    if not ctx.get(_BAGGAGE_KEY):
        return ""
    carrier: dict[str, str] = {}
    _BAGGAGE.inject(carrier, ctx)
    return carrier.get("baggage", "")


def _stamp(spec: Any, traceparent: str, tracestate: str, ctx: context.Context | None) -> None:
    """A task's trace context, from its submission."""
    spec.traceparent = traceparent
    if tracestate:
        spec.tracestate = tracestate
    if ctx and ctx.get(_BAGGAGE_KEY):  # (an empty context, the common case, is not asked)
        spec.baggage = _baggage_header(ctx)


class UnsampledSubmission:
    """A submission in a trace that is not sampled: no span, and the task
    carries the context on as it is (0% sampling must cost next to nothing)."""

    __slots__ = ("_traceparent", "_tracestate", "_context")

    def __init__(self, traceparent: str, tracestate: str, ctx: context.Context | None) -> None:
        self._traceparent = traceparent
        self._tracestate = tracestate
        self._context = ctx

    def stamp(self, spec: Any) -> None:
        _stamp(spec, self._traceparent, self._tracestate, self._context)

    def end(self) -> None:
        pass


class Submission(SpanRecord):
    """A task's submit span (ours), from its .remote() call until it is
    queued; the task's context is the submitter's current span, or with
    none, this span (the root of a new trace). (The span itself: one
    object a submission, not a span and a wrapper.)"""

    __slots__ = ("_traceparent", "_tracestate", "_context")

    def __init__(self, exporter: span_export.OtlpExporter, trace_id: str, parent_id: str, name: str,
                 traceparent: str, tracestate: str, ctx: context.Context) -> None:
        # (SpanRecord's fields set here, not through its __init__: one call less a submission)
        self._exporter = exporter
        self.trace_id = trace_id
        self.span_id = span_id = f"{_getrandbits(64) or 1:016x}"
        self.parent_id = parent_id
        self.trace_state = tracestate
        self.name = name
        self.kind = PRODUCER
        self.start_ns = time.time_ns()
        self.end_ns = 0
        self.attributes = {}
        self.links = self.events = None
        self.status_code = span_export.STATUS_UNSET
        self.status_message = ""
        self._traceparent = traceparent or f"00-{trace_id}-{span_id}-01"
        self._tracestate = tracestate
        self._context = ctx

    def stamp(self, spec: Any) -> None:
        spec.traceparent = self._traceparent
        if self._tracestate:
            spec.tracestate = self._tracestate
        ctx = self._context
        if ctx and ctx.get(_BAGGAGE_KEY):  # (an empty context, the common case, is not asked)
            spec.baggage = _baggage_header(ctx)
        spec.submit_time_ns = self.start_ns
        self.attributes["ember.task_id"] = spec.task_id  # (bytes: made hex when exported)


class SdkSubmission:
    """A task's submit span through the application's own TracerProvider."""

    __slots__ = ("span", "_context")

    def __init__(self, span: trace.Span, ctx: context.Context) -> None:
        self.span = span
        self._context = ctx

    def stamp(self, spec: Any) -> None:
        ctx = self._context
        current = trace.get_current_span(ctx).get_span_context()
        sc = current if current.is_valid else self.span.get_span_context()
        spec.traceparent = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}"
        if sc.trace_state:
            spec.tracestate = sc.trace_state.to_header()
        header = _baggage_header(ctx)
        if header:
            spec.baggage = header
        spec.submit_time_ns = time.time_ns()
        if self.span.is_recording():
            self.span.set_attribute("ember.task_id", spec.task_id.hex())

    def end(self) -> None:
        self.span.end()


def root_sampler(environ: Mapping[str, str]) -> tuple[Callable[[str], bool], bool]:
    """The OTEL_TRACES_SAMPLER decision for a trace id (hex) with no
    sampled parent to follow, and whether children follow their parent's
    flag (the parentbased_* samplers) rather than deciding the same way."""
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower() or "parentbased_always_on"
    follows_parent = name.startswith("parentbased_")
    root = name.removeprefix("parentbased_")
    if root == "always_off":
        return (lambda _trace_id: False), follows_parent
    if root == "traceidratio":
        try:
            rate = min(1.0, max(0.0, float(environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))))
        except ValueError:
            rate = 1.0
        bound = round(rate * (1 << 64))  # (the SDK's TraceIdRatioBased: the trace id's low 64 bits below it)
        return (lambda trace_id: int(trace_id[16:], 16) < bound), follows_parent
    return (lambda _trace_id: True), follows_parent  # always_on (and samplers not known here)


class OtelSpans:
    """This process's tracing: Ember's spans as SpanRecords exported over
    OTLP/gRPC as the OTEL_* variables say; the application's through the
    SDK's TracerProvider (its own if it set one up, else one made here
    exporting the same way)."""

    def __init__(self, service_name: str, attributes: dict[str, Any]) -> None:
        provider = trace.get_tracer_provider()
        # Whether Ember's driver-side spans are ours (no provider of the application's).
        self.own = isinstance(provider, trace.ProxyTracerProvider)
        if self.own:
            provider = _otlp_provider(service_name, attributes)
            trace.set_tracer_provider(provider)
        self.tracer = provider.get_tracer(TRACER_NAME)
        self.exporter = span_export.OtlpExporter(service_name, attributes)
        self.root_sampled, self.follows_parent = root_sampler(os.environ)
        self.never_root = not self.root_sampled("0" * 32)  # (always_off, or a ratio of 0: no trace id is sampled)
        # The creation span (trace id, span id) of the detached actor this
        # worker hosts: a call in a later trace links to it (a hand-over,
        # not a parent: OpenTelemetry's guidance for messaging).
        self.detached_creation: tuple[str, str] | None = None
        self._baggage_key = ""
        self._baggage_ctx = _EMPTY
        # (span, traceparent, tracestate, sampled) of the last application span we parented on.
        self._last_parent: tuple[Any, str, str, bool] = (None, "", "", False)

    def flush(self, timeout_s: float) -> None:
        self.exporter.flush(timeout_s)
        force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if force_flush is not None:
            force_flush(int(timeout_s * 1000))

    def _sampled(self, trace_id: str, parent_sampled: bool) -> bool:
        return parent_sampled if self.follows_parent else self.root_sampled(trace_id)

    @staticmethod
    def current_metadata() -> tuple[tuple[str, str], ...] | None:
        """gRPC metadata with the current span's context, if it is sampled."""
        span = trace.get_current_span()
        if type(span) is CurrentSpan:
            traceparent = ("traceparent", span.record.traceparent)
            return (traceparent, ("tracestate", span._trace_state)) if span._trace_state else (traceparent,)
        sc = span.get_span_context()
        if not sc.is_valid or not sc.trace_flags.sampled:
            return None
        traceparent = ("traceparent", f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{sc.trace_flags:02x}")
        if sc.trace_state:
            return (traceparent, ("tracestate", sc.trace_state.to_header()))
        return (traceparent,)

    # ---- a submitter --------------------------------------------------------

    def start_submit(self, name: str) -> Submission | UnsampledSubmission | SdkSubmission:
        ctx = _get_context()
        current = ctx.get(_SPAN_KEY)
        if current is None:  # no current span: a new trace
            if not self.own:
                return SdkSubmission(self.tracer.start_span(f"submit {name}", ctx, SpanKind.PRODUCER), ctx)
            bits = _getrandbits(192)  # (a trace id and a span id in one draw)
            trace_id = f"{bits >> 64 or 1:032x}"
            if self.never_root or not self.root_sampled(trace_id):  # not sampled: its ids and flag go on
                return UnsampledSubmission(f"00-{trace_id}-{bits & 0xFFFFFFFFFFFFFFFF or 1:016x}-00", "", ctx)
            return Submission(self.exporter, trace_id, "", f"submit {name}", "", "", ctx)
        kind = type(current)
        if kind is UnsampledParent:  # in a task whose trace is not sampled
            return UnsampledSubmission(current.traceparent, current.tracestate, ctx)
        if kind is CurrentSpan:  # in a task: its execute span (sampled)
            r = current.record
            return Submission(self.exporter, r.trace_id, r.span_id, f"submit {name}", r.traceparent,
                              current._trace_state, ctx)
        last = self._last_parent
        parent = None if last[0] is current and not last[3] else self._parent_of(current)  # (the cache, inline)
        if parent is None:
            last = self._last_parent
            return UnsampledSubmission(last[1], last[2], ctx)
        if not self.own:
            return SdkSubmission(self.tracer.start_span(f"submit {name}", ctx, SpanKind.PRODUCER), ctx)
        traceparent, tracestate = parent
        return Submission(self.exporter, traceparent[3:35], traceparent[36:52], f"submit {name}", traceparent,
                          tracestate, ctx)

    def _parent_of(self, span: trace.Span) -> tuple[str, str] | None:
        """The W3C context (traceparent, tracestate) of an application's
        span as a parent of ours, or None if what it parents is not sampled
        (then self._last_parent[1:] is its traceparent and tracestate).
        Kept for the next call under the same span: a loop of submissions
        under one span reads its context once."""
        last = self._last_parent
        if last[0] is not span:
            sc = span.get_span_context()
            if not sc.is_valid:
                self._last_parent = last = (span, "", "", False)
            else:
                trace_id = f"{sc.trace_id:032x}"
                sampled = self._sampled(trace_id, sc.trace_flags.sampled)
                self._last_parent = last = (span, f"00-{trace_id}-{sc.span_id:016x}-{'01' if sampled else '00'}",
                                            sc.trace_state.to_header() if sc.trace_state else "", sampled)
        return (last[1], last[2]) if last[3] else None

    # ---- a worker -----------------------------------------------------------

    def start_task(self, spec: Any) -> RunningTask:
        """The execute span of a task about to run, made current until
        end(). (Its queue time is the raylet's `schedule` span.)"""
        traceparent = spec.traceparent
        if not traceparent:  # (a submitter that does not trace: a trace of the task's own)
            trace_id = new_trace_id()
            sampled = not self.never_root and self.root_sampled(trace_id)
        elif self.follows_parent:
            trace_id = traceparent[3:35]
            sampled = traceparent[54:55] in SAMPLED_DIGITS
        else:  # (a sampler that decides the same way at every span)
            trace_id = traceparent[3:35]
            sampled = not self.never_root and self.root_sampled(trace_id)
        if not sampled:
            if not traceparent:  # (its own new trace, not sampled: what it submits goes on unsampled)
                traceparent = f"00-{trace_id}-{_getrandbits(64) or 1:016x}-00"
            base = self._baggage_context(spec.baggage) if spec.baggage else _EMPTY
            return RunningTask(None, _attach(context.Context(
                {**base, _SPAN_KEY: UnsampledParent(traceparent, spec.tracestate)})))
        parent_id = traceparent[36:52]
        now = time.time_ns()
        name = spec.function_name
        attributes = {"ember.task_id": spec.task_id, "ember.job_id": spec.job_id}  # (bytes: hex when exported)
        actor_id = spec.actor_id
        if actor_id:
            attributes["ember.actor_id"] = actor_id
        if spec.attempt_number:
            attributes["ember.attempt_number"] = spec.attempt_number
        exporter = self.exporter
        tracestate = spec.tracestate
        links = None
        if actor_id:
            creation = self.detached_creation
            if creation is not None and trace_id != creation[0]:
                links = [creation]  # a call in a trace of its own, after the creation's
        record = SpanRecord(exporter, trace_id, parent_id, f"execute {name}", CONSUMER, now, attributes, tracestate,
                            links)
        if actor_id and spec.HasField("actor_creation") and spec.actor_creation.detached:
            self.detached_creation = (trace_id, record.span_id)
        base = self._baggage_context(spec.baggage) if spec.baggage else _EMPTY
        return RunningTask(record, _attach(context.Context({**base, _SPAN_KEY: CurrentSpan(record, tracestate)})))

    def _baggage_context(self, header: str) -> context.Context:
        """A context holding the baggage of `header` (kept for the next task with the same)."""
        if header != self._baggage_key:
            self._baggage_key, self._baggage_ctx = header, _BAGGAGE.extract({"baggage": header}, _EMPTY)
        return self._baggage_ctx

    @staticmethod
    def task_failed(error: BaseException) -> None:
        """The running task raised: its execute span says so."""
        span = trace.get_current_span()
        if span.is_recording():
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))

    # ---- objects ------------------------------------------------------------

    def start_object_span(self, operation: str, count: int) -> Any:
        """An ember.get / ember.put span (ended by the caller), child of the
        current span; None when that is not sampled."""
        current = _get_context().get(_SPAN_KEY)
        if current is None:
            if not self.own:  # (the application's provider: its sampler decides a root)
                return self.tracer.start_span(f"ember.{operation}", attributes={"ember.object_count": count})
            if self.never_root:
                return None
            trace_id = new_trace_id()
            if not self.root_sampled(trace_id):
                return None
            return SpanRecord(self.exporter, trace_id, "", f"ember.{operation}", INTERNAL, 0,
                              {"ember.object_count": count})
        kind = type(current)
        if kind is UnsampledParent:
            return None
        if kind is CurrentSpan:
            r = current.record
            return SpanRecord(self.exporter, r.trace_id, r.span_id, f"ember.{operation}", INTERNAL, 0,
                              {"ember.object_count": count})
        last = self._last_parent
        if last[0] is current and not last[3]:  # (the cache, inline: under an unsampled span, nothing)
            return None
        parent = self._parent_of(current)
        if parent is None:
            return None
        if not self.own:
            return self.tracer.start_span(f"ember.{operation}", attributes={"ember.object_count": count})
        traceparent = parent[0]
        return SpanRecord(self.exporter, traceparent[3:35], traceparent[36:52], f"ember.{operation}", INTERNAL, 0,
                          {"ember.object_count": count}, parent[1])

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


def _extract(traceparent: str, tracestate: str, baggage_header: str) -> context.Context:
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    ctx = _TRACE_CONTEXT.extract(carrier)
    if baggage_header:
        ctx = _BAGGAGE.extract({"baggage": baggage_header}, ctx)
    return ctx


def _otlp_provider(service_name: str, attributes: dict[str, Any]) -> Any:
    """The SDK's provider for the application's spans in this process,
    exporting as Ember's own spans are (same resource)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource(span_export.resource_attributes(service_name, attributes, os.environ))
    provider = TracerProvider(resource=resource)  # its sampler: OTEL_TRACES_SAMPLER, parent-based by default
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
