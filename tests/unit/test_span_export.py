"""ember_common.span_export and service_spans: the spans Ember records
itself, their OTLP encoding (sent to a real OTLP/gRPC receiver,
tests/otlp_receiver.py), the OTEL_* settings, parent-based sampling in the
services, and nothing of OpenTelemetry loaded when tracing is off."""

import os
import subprocess
import sys
import time

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ember_common import otlp_encoding, service_spans, span_export
from ember_objectstore import transfer_spans
from tests.helpers import wait_until
from tests.otlp_receiver import OtlpReceiver

SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


@pytest.fixture
def receiver():
    r = OtlpReceiver().start()
    yield r
    r.stop()


def _env(receiver, **more):
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50", **more}


def test_traceparents_are_read_as_w3c_says():
    assert span_export.parse_traceparent(SAMPLED) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1)
    assert span_export.sampled(SAMPLED) and not span_export.sampled(UNSAMPLED)
    assert span_export.sampled(SAMPLED[:-2] + "03")  # (0x02 is "random", not "sampled")
    for bad in ("", "00-xyz", SAMPLED.upper(), SAMPLED.replace("-", "_"), "00-" + "g" * 32 + SAMPLED[35:]):
        assert span_export.parse_traceparent(bad) is None, bad
    ids = {span_export.new_span_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 16 and int(i, 16) for i in ids)
    assert len(span_export.new_trace_id()) == 32


def test_the_resource_takes_the_standard_variables():
    resource = span_export.resource_attributes("ember-raylet", {"ember.node_id": "ab"}, {
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%20b", "OTEL_SERVICE_NAME": ""})
    assert resource["service.name"] == "ember-raylet" and resource["team"] == "a b"
    assert resource["deployment.environment"] == "prod" and resource["ember.node_id"] == "ab"
    assert resource["process.pid"] == os.getpid()
    named = span_export.resource_attributes("ember-raylet", {}, {"OTEL_SERVICE_NAME": "mine"})
    assert named["service.name"] == "mine"


def test_the_encoding_is_otlps_protobuf():
    """Ember's hand-written wire format, read back by opentelemetry-proto's
    generated classes: every field Ember writes, long values included."""
    writer = otlp_encoding.RequestWriter({"service.name": "s", "process.pid": 7}, "ember")
    long_text = "y" * 300
    span = span_export.SpanRecord(None, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "n" * 200,
                                  span_export.CONSUMER, 5, {"s": "x", "id": b"\x01\xff", "i": -3, "big": 1 << 40,
                                                            "f": 1.5, "t": True, "no": False, "l": [1, "a"],
                                                            "long": long_text},
                                  "congo=t61rcWkgMzE", [("1" * 32, "2" * 16)], span_id="00f067aa0ba902b7")
    span.end_ns = 9
    span.add_event("exception", {"exception.type": "ValueError"}, 8)
    span.fail("broke")
    root = span_export.SpanRecord(None, "1" * 32, "", "root", span_export.SERVER, 1)
    root.end_ns = 2
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(writer.request([span, root]))
    (resource_spans,) = request.resource_spans
    assert {kv.key: kv.value.WhichOneof("value") for kv in resource_spans.resource.attributes} == {
        "service.name": "string_value", "process.pid": "int_value"}
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "ember"
    got, got_root = scope_spans.spans
    assert (got.trace_id.hex(), got.span_id.hex(), got.parent_span_id.hex()) == (
        "0af7651916cd43dd8448eb211c80319c", "00f067aa0ba902b7", "b7ad6b7169203331")
    assert (got.name, got.kind, got.start_time_unix_nano, got.end_time_unix_nano, got.trace_state, got.flags) == (
        "n" * 200, span_export.CONSUMER, 5, 9, "congo=t61rcWkgMzE", 1)
    values = {kv.key: kv.value for kv in got.attributes}
    assert values["s"].string_value == "x" and values["id"].string_value == "01ff"
    assert values["i"].int_value == -3 and values["big"].int_value == 1 << 40 and values["f"].double_value == 1.5
    assert values["t"].bool_value is True and values["no"].HasField("bool_value") and not values["no"].bool_value
    assert [v.WhichOneof("value") for v in values["l"].array_value.values] == ["int_value", "string_value"]
    assert values["long"].string_value == long_text
    (event,) = got.events
    assert (event.name, event.time_unix_nano, event.attributes[0].value.string_value) == ("exception", 8, "ValueError")
    (link,) = got.links
    assert (link.trace_id.hex(), link.span_id.hex()) == ("1" * 32, "2" * 16)
    assert (got.status.code, got.status.message) == (span_export.STATUS_ERROR, "broke")
    assert got_root.parent_span_id == b"" and got_root.kind == span_export.SERVER and not got_root.attributes


def test_spans_arrive_over_otlp_with_everything_they_carry(receiver):
    exporter = span_export.OtlpExporter("ember-test", {"ember.node_id": "ab"}, _env(receiver))
    span = span_export.SpanRecord(exporter, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "work",
                                  span_export.SERVER, attributes={"s": "x", "i": 3, "f": 0.5, "b": True, "l": ["p", "q"]},
                                  trace_state="congo=t61rcWkgMzE", links=[("1" * 32, "2" * 16)])
    span.add_event("note", {"k": 1})
    span.fail("it broke")
    span.end()
    span.end()  # (once)
    got = wait_until(receiver.spans, timeout=10, what="the span")
    (s,) = got
    assert (s.name, s.trace_id, s.parent_span_id, s.span_id, s.kind) == (
        "work", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", span.span_id, span_export.SERVER)
    assert s.attributes == {"s": "x", "i": 3, "f": 0.5, "b": True, "l": ["p", "q"]}
    assert s.links == (("1" * 32, "2" * 16),) and s.status_code == span_export.STATUS_ERROR
    assert s.start_ns <= s.end_ns and s.resource["service.name"] == "ember-test" and s.resource["ember.node_id"] == "ab"
    exporter.close()


def test_a_full_queue_drops_spans_with_a_counted_warning_and_never_blocks(receiver, caplog):
    caplog.set_level("WARNING", logger=span_export.__name__)
    exporter = span_export.OtlpExporter("t", {}, _env(receiver, OTEL_BSP_MAX_QUEUE_SIZE="5",
                                                      OTEL_BSP_SCHEDULE_DELAY="60000"))
    with exporter._lock:  # the exporter's thread cannot take spans off meanwhile: the queue stays full
        for i in range(8):
            span_export.SpanRecord(exporter, "1" * 32, "", f"s{i}").end()  # (returns: the span is dropped)
        assert exporter.dropped == 3
    exporter.flush()
    assert sorted(s.name for s in receiver.spans()) == [f"s{i}" for i in range(5)]
    (warning,) = [r.getMessage() for r in caplog.records if "span queue was full" in r.getMessage()]
    assert "3 spans dropped" in warning and "OTEL_BSP_MAX_QUEUE_SIZE=5" in warning
    caplog.clear()
    exporter.flush()  # (nothing more dropped: no second warning)
    assert not [r for r in caplog.records if "span queue was full" in r.getMessage()]
    exporter.close()


def test_a_steady_trickle_of_spans_goes_out_in_full_batches(receiver):
    """Spans ending one by one while a batch is sent wait for the next full
    batch (or the schedule delay): never a gRPC call per span or two."""
    exporter = span_export.OtlpExporter("t", {}, _env(receiver, OTEL_BSP_MAX_EXPORT_BATCH_SIZE="20",
                                                      OTEL_BSP_SCHEDULE_DELAY="60000"))
    for i in range(200):
        span_export.SpanRecord(exporter, "1" * 32, "", f"s{i}").end()
        time.sleep(0.0005)  # (a trickle: the thread wakes between spans)
    wait_until(lambda: len(receiver.spans()) == 200, timeout=10, what="10 full batches")
    assert receiver.request_sizes() == [20] * 10
    assert [s.name for s in receiver.spans()] == [f"s{i}" for i in range(200)]  # in order, none lost
    span_export.SpanRecord(exporter, "1" * 32, "", "last").end()
    exporter.flush()  # (a partial batch: at the schedule delay, or a flush)
    assert receiver.request_sizes()[-1] == 1 and exporter.exported == 201 and exporter.dropped == 0
    exporter.close()


def test_a_span_that_cannot_be_encoded_loses_its_batch_not_the_exporter(receiver, caplog):
    exporter = span_export.OtlpExporter("t", {}, _env(receiver, OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2",
                                                      OTEL_BSP_SCHEDULE_DELAY="60000"))
    exporter.record("not hex", "", "bad", span_export.INTERNAL, 1, 2, {})
    span_export.SpanRecord(exporter, "1" * 32, "", "with the bad one").end()  # (a full batch: sent at once)
    wait_until(lambda: exporter.failed == 2, timeout=10, what="the bad batch counted as failed")
    assert any("could not be encoded" in r.getMessage() for r in caplog.records)
    for name in ("after 1", "after 2"):  # the exporter's thread is still there: the next batch arrives
        span_export.SpanRecord(exporter, "1" * 32, "", name).end()
    wait_until(lambda: sorted(s.name for s in receiver.spans()) == ["after 1", "after 2"], timeout=10,
               what="the next batch")
    exporter.close()


def test_a_partial_batch_goes_out_at_the_schedule_delay(receiver):
    exporter = span_export.OtlpExporter("t", {}, _env(receiver, OTEL_BSP_SCHEDULE_DELAY="100"))
    for i in range(3):
        span_export.SpanRecord(exporter, "1" * 32, "", f"s{i}").end()
    wait_until(lambda: len(receiver.spans()) == 3, timeout=10, what="the 3 spans, without a flush")
    exporter.close()


def test_a_collector_that_is_down_loses_spans_but_nothing_else():
    exporter = span_export.OtlpExporter("t", {}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                                  "OTEL_EXPORTER_OTLP_TIMEOUT": "500"})
    span_export.SpanRecord(exporter, "1" * 32, "", "lost").end()
    exporter.export_queued()
    assert exporter.failed == 1 and exporter.exported == 0
    exporter.close()


def test_services_record_only_under_a_sampled_parent(receiver):
    assert service_spans.configure("ember-test", {}, _env(receiver))
    try:
        spans = service_spans.active
        assert spans.start(UNSAMPLED, "no") is None and spans.start("", "no") is None
        assert spans.start("garbage", "no") is None
        spans.record(SAMPLED, "yes", start_ns=1)
        assert service_spans.metadata(UNSAMPLED) is None and service_spans.metadata("") is None
        assert service_spans.metadata(SAMPLED, "a=b") == (("traceparent", SAMPLED), ("tracestate", "a=b"))
        (s,) = wait_until(receiver.spans, timeout=10, what="the span")
        assert s.name == "yes" and s.parent_span_id == "b7ad6b7169203331" and s.start_ns == 1
    finally:
        service_spans.shutdown()
    assert service_spans.active is None
    assert not service_spans.configure("t", {}, _env(receiver, OTEL_TRACES_SAMPLER="always_off"))
    assert not service_spans.configure("t", {}, {})


class _Context:
    def __init__(self, metadata):
        self._metadata = metadata

    def invocation_metadata(self):
        return self._metadata


def test_an_rpc_span_is_a_child_of_the_callers_context_and_says_when_it_failed(receiver):
    service_spans.configure("ember-test", {}, _env(receiver))
    try:
        with service_spans.rpc_span(_Context([("traceparent", UNSAMPLED)]), "quiet") as span:
            assert span is None
        with service_spans.rpc_span(_Context([("authorization", "x")]), "quiet") as span:
            assert span is None
        with pytest.raises(ValueError):
            with service_spans.rpc_span(_Context([("traceparent", SAMPLED), ("tracestate", "a=b")]), "call") as span:
                raise ValueError("bad")
        (s,) = wait_until(receiver.spans, timeout=10, what="the span")
        assert s.name == "call" and s.kind == span_export.SERVER and s.status_code == span_export.STATUS_ERROR
        assert s.parent_span_id == "b7ad6b7169203331"
    finally:
        service_spans.shutdown()


def test_a_transfer_request_carries_the_pulls_context():
    field = transfer_spans.context_bytes(SAMPLED)
    assert len(field) == transfer_spans.CONTEXT_BYTES and field[:16].hex() == SAMPLED[3:35] and field[24] == 1
    assert transfer_spans.context_bytes(UNSAMPLED) == transfer_spans.context_bytes("") == transfer_spans.NO_CONTEXT


def test_off_the_shared_package_loads_nothing_of_opentelemetry():
    code = """if True:
        import sys
        from ember_common import service_spans
        assert not service_spans.configure("t", {}, {})
        with service_spans.rpc_span(None, "x") as span:
            assert span is None
        loaded = [m for m in sys.modules if m.startswith("opentelemetry")]
        assert not loaded, loaded
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
