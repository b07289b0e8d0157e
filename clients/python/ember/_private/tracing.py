"""Whether this process traces tasks with OpenTelemetry, and the one object
that does it when it does (docs/tracing.md).

Off unless the standard OTEL_* settings ask for OTLP trace export (and the
OpenTelemetry SDK is installed): then `enabled` is True and `spans` is an
ember._private.otel_spans.OtelSpans. The hot paths test `tracing.enabled`
(an attribute read, no call) and touch nothing else when it is False: this
module imports no OpenTelemetry, and neither does anything else until
configure() finds tracing asked for.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from ember_common.span_export import wanted

if TYPE_CHECKING:
    from ember._private.otel_spans import OtelSpans

log = logging.getLogger(__name__)

enabled = False
spans: "OtelSpans | None" = None

def configure(service_name: str, attributes: dict[str, Any] | None = None) -> bool:
    """Turn tracing on in this process if the environment asks for it and
    the SDK is there; return whether it is on. `service_name` is the OTel
    service.name when OTEL_SERVICE_NAME does not give one; `attributes` go
    into the resource of the provider made here (not an application's own)."""
    global enabled, spans
    if not wanted(os.environ):
        enabled = False
        return False
    if spans is not None:  # (a driver's later init: the same provider goes on)
        enabled = True
        return True
    try:
        from ember._private.otel_spans import OtelSpans
    except ImportError as e:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK cannot be loaded (%s): "
                    "no spans are exported (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc)",
                    e)
        return False
    spans = OtelSpans(service_name, attributes or {})
    enabled = True
    return True


def rpc_metadata() -> tuple[tuple[str, str], ...] | None:
    """gRPC call metadata carrying the current span's context to a service
    (the object store, the GCS), whose spans are then its children; None
    when there is no sampled current span."""
    if spans is None or not enabled:
        return None
    return spans.current_metadata()


def flush(timeout_s: float = 5.0) -> None:
    """Send the spans still buffered (before the process exits or disconnects)."""
    if spans is not None:
        spans.flush(timeout_s)


def disable() -> None:
    """Stop tracing (a driver's shutdown); spans still buffered are sent first."""
    global enabled
    flush()
    enabled = False


class QueueItem:
    """An item put on an ember.util.queue.Queue by a producer that traces:
    the item, and the W3C context of the producer's span, which the consumer
    links to (a hand-over is not a parent: OpenTelemetry's messaging
    guidance). Defined here, not beside the SDK, so a consumer that does not
    trace still unwraps it."""

    __slots__ = ("value", "carrier")

    def __init__(self, value: Any, carrier: dict[str, str]) -> None:
        self.value = value
        self.carrier = carrier

    def __reduce__(self) -> Any:
        return QueueItem, (self.value, self.carrier)


def received(item: QueueItem, started_ns: int = 0) -> Any:
    """The value of an item taken from a queue (the take began at
    `started_ns`), with a span linked to its producer's when this process traces."""
    if spans is not None and enabled:
        spans.queue_received(item.carrier, started_ns)
    return item.value
