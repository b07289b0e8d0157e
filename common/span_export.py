"""Spans recorded by Ember's own code, and their export over OTLP/gRPC as
the standard OTEL_* variables say, without the OpenTelemetry SDK.

Why not the SDK: a span through it costs ~80-100 Python calls (sampler,
span object, processor, exporter encoding), several per task; a
`SpanRecord` is one object whose fields are written as OTLP protobuf (an
`ExportTraceServiceRequest`) on the exporter's thread. The services (GCS, raylet, object store) use only this; drivers and
workers use it for Ember's own spans beside the SDK the application's spans
go through.

Nothing here imports OpenTelemetry, nor needs it installed: the spans are
written in OTLP's protobuf wire format by ember_common.otlp_encoding and
sent with gRPC, both loaded when an `OtlpExporter` is made, i.e. only when
tracing is on (`wanted()`).

Settings (the OpenTelemetry specification's names and defaults):
OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT (http://host:port: plaintext;
https://: TLS), _INSECURE, _CERTIFICATE, _HEADERS, _TIMEOUT (ms),
_COMPRESSION (gzip); OTEL_BSP_SCHEDULE_DELAY (ms), OTEL_BSP_MAX_QUEUE_SIZE,
OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_EXPORT_TIMEOUT (ms);
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time
import urllib.parse
import weakref
from typing import Any, Mapping

log = logging.getLogger(__name__)

# The standard variables that name an OTLP endpoint for traces.
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

# OTLP/gRPC: opentelemetry-proto's collector TraceService.
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# OTLP SpanKind values.
INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
# OTLP Status codes.
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* settings ask for spans over OTLP: an endpoint is
    set, the SDK is not disabled, and the traces exporter is OTLP (the
    default) and not "none"."""
    if not any(environ.get(name) for name in ENDPOINT_VARS):
        return False
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    return "otlp" in exporters


def sampled(traceparent: str) -> bool:
    """Whether a (checked) W3C traceparent's sampled flag is set."""
    return len(traceparent) >= 55 and bool(int(traceparent[53:55], 16) & 1)


_HEX = frozenset("0123456789abcdef")


def parse_traceparent(traceparent: str) -> tuple[str, str, int] | None:
    """(trace id, parent span id, flags), in lowercase hex, of a
    version-00-shaped traceparent, or None."""
    if len(traceparent) < 55 or traceparent[2] != "-" or traceparent[35] != "-" or traceparent[52] != "-":
        return None
    trace_id, parent_id, flags = traceparent[3:35], traceparent[36:52], traceparent[53:55]
    if not _HEX.issuperset(trace_id + parent_id + flags):
        return None
    return trace_id, parent_id, int(flags, 16)


_getrandbits = random.Random().getrandbits  # (a generator of its own: the application may seed the global one)
# The last hex digit of a sampled traceparent's flags (a W3C traceparent's
# characters 53-54; the low bit is "sampled"): `traceparent[54:55] in SAMPLED_DIGITS`.
SAMPLED_DIGITS = frozenset("13579bdf")


def new_span_id() -> str:
    """A random span id, 16 lowercase hex digits (never all zeros)."""
    return f"{_getrandbits(64) or 1:016x}"


def new_trace_id() -> str:
    return f"{_getrandbits(128) or 1:032x}"


class SpanRecord:
    """One span: ids in lowercase hex (as traceparents carry them; made
    bytes on the exporter's thread), times in ns since the epoch,
    attributes a dict of str/bool/int/float/list values, or bytes (ids:
    exported as lowercase hex, converted on the exporter's thread), links
    (trace id, span id) pairs. `end()` hands it to the exporter it was made for."""

    __slots__ = ("trace_id", "span_id", "parent_id", "trace_state", "name", "kind", "start_ns", "end_ns",
                 "attributes", "links", "events", "status_code", "status_message", "_exporter")

    def __init__(self, exporter: "OtlpExporter", trace_id: str, parent_id: str, name: str, kind: int = INTERNAL,
                 start_ns: int = 0, attributes: dict[str, Any] | None = None, trace_state: str = "",
                 links: list[tuple[str, str]] | None = None, span_id: str = "") -> None:
        self._exporter = exporter
        self.trace_id = trace_id
        self.span_id = span_id or f"{_getrandbits(64) or 1:016x}"
        self.parent_id = parent_id
        self.trace_state = trace_state
        self.name = name
        self.kind = kind
        self.start_ns = start_ns or time.time_ns()
        self.end_ns = 0
        self.attributes = attributes if attributes is not None else {}
        self.links = links
        self.events: list[tuple[str, int, dict[str, Any]]] | None = None
        self.status_code = STATUS_UNSET
        self.status_message = ""

    @property
    def traceparent(self) -> str:
        """This span as the W3C traceparent of what it causes (sampled)."""
        return f"00-{self.trace_id}-{self.span_id}-01"

    def add_event(self, name: str, attributes: dict[str, Any] | None = None, time_ns: int = 0) -> None:
        if self.events is None:
            self.events = []
        self.events.append((name, time_ns or time.time_ns(), attributes or {}))

    def fail(self, message: str) -> None:
        self.status_code = STATUS_ERROR
        self.status_message = message[:200]

    def closed(self) -> tuple[Any, ...]:
        """This span as the exporter queues it (ClosedSpan's fields)."""
        return (self.trace_id, self.span_id, self.parent_id, self.trace_state, self.name, self.kind, self.start_ns,
                self.end_ns, self.attributes, self.links, self.events, self.status_code, self.status_message)

    def end(self, end_ns: int = 0) -> None:
        if self.end_ns:
            return  # (ended once)
        self.end_ns = end_ns or time.time_ns()
        exporter = self._exporter
        queue = exporter._queue
        queued = len(queue)  # (OtlpExporter.add, inline: one call less a span)
        span = (self.trace_id, self.span_id, self.parent_id, self.trace_state, self.name, self.kind, self.start_ns,
                self.end_ns, self.attributes, self.links, self.events, self.status_code, self.status_message)
        if queued >= exporter._max_queue or queued + 1 == exporter._batch or exporter._thread is None:
            exporter.add(span)
        else:
            queue.append(span)


# What an exporter queues for an ended span: a plain tuple, (trace_id,
# span_id, parent_id, trace_state, name, kind, start_ns, end_ns, attributes,
# links, events, status_code, status_message), ids in hex. A tuple (and an
# attribute dict of ids, names and numbers) is one allocation the garbage
# collector stops tracking at its first pass; thousands of span objects
# waiting for their batch would be carried through its older generations.
ClosedSpan = tuple


def _int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(environ.get(name, "") or default)
    except ValueError:
        log.warning("%s=%r is not an integer; using %d", name, environ.get(name), default)
        return default


def _setting(environ: Mapping[str, str], suffix: str) -> str:
    """OTEL_EXPORTER_OTLP_TRACES_<suffix>, else OTEL_EXPORTER_OTLP_<suffix>."""
    return environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{suffix}") or environ.get(f"OTEL_EXPORTER_OTLP_{suffix}", "")


def resource_attributes(service_name: str, attributes: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The resource: OTEL_RESOURCE_ATTRIBUTES, then Ember's own, then
    service.name (OTEL_SERVICE_NAME, else `service_name`)."""
    out: dict[str, Any] = {}
    for item in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, eq, value = item.partition("=")
        if eq and key.strip():
            out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    out["process.pid"] = os.getpid()
    out.update(attributes)
    out["service.name"] = environ.get("OTEL_SERVICE_NAME") or out.get("service.name") or service_name
    return out


class OtlpExporter:
    """Ended spans, queued (bounded: past OTEL_BSP_MAX_QUEUE_SIZE they are
    dropped and counted) and sent in batches from a thread of its own,
    started at the first span (so a process forked after this was made, as
    workers are from a zygote, starts its own)."""

    def __init__(self, service_name: str, attributes: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                 scope: str = "ember") -> None:
        import grpc

        from ember_common.otlp_encoding import RequestWriter

        env = os.environ if environ is None else environ
        self.resource = resource_attributes(service_name, attributes, env)
        self._writer = RequestWriter(self.resource, scope)
        self._delay_s = _int_env(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000
        self._max_queue = _int_env(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        self._batch = max(1, min(_int_env(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), self._max_queue))
        self._timeout_s = _int_env(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                                   _int_env(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10000)) / 1000
        endpoint = _setting(env, "ENDPOINT") or "http://localhost:4317"
        url = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
        target = url.netloc or endpoint
        insecure = url.scheme == "http" or (url.scheme == "" and _setting(env, "INSECURE").lower() == "true")
        self._metadata = tuple((urllib.parse.unquote(k.strip()).lower(), urllib.parse.unquote(v.strip()))
                               for k, eq, v in (h.partition("=") for h in _setting(env, "HEADERS").split(","))
                               if eq and k.strip())
        compression = grpc.Compression.Gzip if _setting(env, "COMPRESSION").lower() == "gzip" else None
        if insecure:
            channel = grpc.insecure_channel(target, compression=compression)
        else:
            certificate = _setting(env, "CERTIFICATE")
            roots = open(certificate, "rb").read() if certificate else None
            channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots), compression=compression)
        self._channel = channel
        # The collector's TraceService.Export, sent as bytes (otlp_encoding); its reply is not read.
        self._export = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
        self._rpc_error = grpc.RpcError
        self._queue: collections.deque[ClosedSpan] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one export at a time (the thread's, or a flush's)
        self._thread: threading.Thread | None = None
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (exporter := me()) is not None and exporter._forked())
        self.dropped = 0  # spans dropped for a full queue
        self._dropped_warned = 0
        self._next_drop_warning = 0.0
        self.exported = 0
        self.failed = 0
        self._warned = False

    # ---- the hot side: a span ended ---------------------------------------

    def record(self, trace_id: str, parent_id: str, name: str, kind: int, start_ns: int, end_ns: int,
               attributes: dict[str, Any], trace_state: str = "") -> None:
        """A span already over (no SpanRecord made: the services' and the
        submitters' spans that nothing changes once begun)."""
        span = (trace_id, f"{_getrandbits(64) or 1:016x}", parent_id, trace_state, name, kind, start_ns, end_ns,
                attributes, None, None, STATUS_UNSET, "")
        queue = self._queue
        queued = len(queue)
        if queued >= self._max_queue or queued + 1 == self._batch or self._thread is None:
            self.add(span)
        else:
            queue.append(span)

    def add(self, span: "ClosedSpan | SpanRecord") -> None:
        if type(span) is not tuple:
            span = span.closed()
        queue = self._queue
        queued = len(queue)
        if queued >= self._max_queue:
            self.dropped += 1  # (counted here; the exporter's thread warns: no logging on the hot path)
            return
        queue.append(span)
        if self._thread is None:
            self._start()
        if queued + 1 == self._batch:  # a full batch (the queue passes this size on every way up): the thread sends it
            self._wake.set()

    def _start(self) -> None:
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="ember-span-export", daemon=True)
        self._thread.start()

    def _forked(self) -> None:
        """In a child just forked (a worker from its zygote): the parent's
        thread is not here, nor are its spans ours to send."""
        self._thread = None
        self._queue.clear()

    # ---- the exporter's thread -------------------------------------------

    def _run(self) -> None:
        """Full batches as soon as they are there; what is left, every
        OTEL_BSP_SCHEDULE_DELAY. Never a batch per span: spans that come
        while a batch is sent wait for theirs (a steady trickle sent as it
        came would cost a gRPC call per span or two)."""
        queue, batch, delay = self._queue, self._batch, self._delay_s
        deadline = time.monotonic() + delay
        while True:
            if len(queue) < batch:
                self._wake.wait(max(0.0, deadline - time.monotonic()))
            self._wake.clear()  # (then the queue's length is read: a wake set before this is not lost)
            with self._lock:
                while len(queue) >= batch:
                    self._send(batch)
                self._warn_dropped()
            now = time.monotonic()
            if now >= deadline:
                self.export_queued()
                deadline = now + delay

    def _send(self, n: int) -> None:
        """Send the `n` oldest queued spans (the caller holds the lock)."""
        queue = self._queue
        spans = [queue.popleft() for _ in range(min(n, len(queue)))]
        try:
            request = self._writer.request(spans)
        except Exception:  # (a span the encoder cannot write, e.g. a malformed id: the batch is lost, not the thread)
            self.failed += len(spans)
            log.exception("%d spans could not be encoded as OTLP and are lost", len(spans))
            return
        try:
            self._export(request, timeout=self._timeout_s, metadata=self._metadata or None)
            self.exported += len(spans)
        except self._rpc_error as e:  # the collector is down or refuses: these spans are lost
            self.failed += len(spans)
            if not self._warned:
                self._warned = True
                log.warning("exporting %d spans over OTLP failed (%s); later failures are not logged",
                            len(spans), getattr(e, "code", lambda: e)())

    def _warn_dropped(self) -> None:
        """A warning when spans were dropped for a full queue: at the first,
        then at most once a minute, with the count. (The caller holds the lock.)"""
        dropped = self.dropped
        if dropped > self._dropped_warned and time.monotonic() >= self._next_drop_warning:
            log.warning("the span queue was full (OTEL_BSP_MAX_QUEUE_SIZE=%d): %d spans dropped (%d in all)",
                        self._max_queue, dropped - self._dropped_warned, dropped)
            self._dropped_warned = dropped
            self._next_drop_warning = time.monotonic() + 60

    def export_queued(self) -> None:
        """Send what is queued, in batches."""
        with self._lock:
            queue = self._queue
            while queue:
                self._send(self._batch)
            self._warn_dropped()

    def flush(self, timeout_s: float = 5.0) -> None:
        """Send what is queued now, and wait for a send under way (before
        the process exits)."""
        done = threading.Thread(target=self.export_queued, daemon=True)
        done.start()
        done.join(timeout_s)

    def close(self) -> None:
        self.flush()
        self._channel.close()
