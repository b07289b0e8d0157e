"""W3C Trace Context through tasks, exported over OTLP to a real receiver
(tests/otlp_receiver.py: a gRPC server from opentelemetry-proto's collector
TraceService) by the driver and by the workers of a real two-node cluster:
a driver span, its task, the task's nested task and an actor call on the
other node arrive as one trace with the right edges; a direct actor call
too; an unsampled trace records nothing; a queue hand-over is a link;
tracestate and baggage reach nested tasks whole. Off, nothing is imported."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import ember
from ember._private import runtime
from ember.util.queue import Queue
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from ember.v1 import raylet_pb2, raylet_pb2_grpc
from ember_common import auth, rpc
from tests.conftest import multinode_cluster
from tests.helpers import wait_until
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The driver's own spans, also kept here to check what it recorded at once.
_driver_memory = InMemorySpanExporter()


@pytest.fixture(scope="module")
def receiver():
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def traced_cluster(receiver):
    """Two nodes whose workers export to the receiver (the standard OTEL_*
    variables, inherited from the driver as an operator's `ember start`
    would be), and this driver with an OpenTelemetry SDK of its own, as an
    application sets one up."""
    provider = TracerProvider(resource=Resource.create({"service.name": "test-driver"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True),
                                                   schedule_delay_millis=100))
    provider.add_span_processor(SimpleSpanProcessor(_driver_memory))
    trace.set_tracer_provider(provider)  # (once per process: this module's)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: the workers' batches go out soon
        with multinode_cluster({"num_cpus": 2}, {"num_cpus": 2, "resources": {"other": 1}}) as (c, (other,)):
            yield c, other
    provider.force_flush()


tracer = trace.get_tracer("tests.tracing")


@ember.remote
class Echo:
    def call(self, x):
        return x

    def node(self):
        return ember.get_runtime_context().get_node_id()


@ember.remote
def inner(x):
    return x + 1


@ember.remote
def outer(x, actor):
    return ember.get(inner.remote(x)) + ember.get(actor.call.remote(10))


def _trace(receiver: OtlpReceiver, trace_id: str) -> list[ReceivedSpan]:
    return [s for s in receiver.spans() if s.trace_id == trace_id]


def _wait_for_spans(receiver: OtlpReceiver, trace_id: str, names: list[str]) -> dict[str, ReceivedSpan]:
    """The trace's spans by name, once every name in `names` arrived (each once)."""
    def complete():
        got = {s.name: s for s in _trace(receiver, trace_id)}
        return got if all(n in got for n in names) else None
    spans = wait_until(complete, timeout=30, what=f"spans {names} of trace {trace_id}")
    counts = [s.name for s in _trace(receiver, trace_id)]
    assert all(counts.count(n) == 1 for n in names), counts
    return spans


def test_a_driver_span_a_task_its_nested_task_and_an_actor_on_another_node_are_one_trace(traced_cluster, receiver):
    with tracer.start_as_current_span("driver") as root:
        actor = Echo.options(resources={"other": 1}).remote()
        here = ember.get_runtime_context().get_node_id()
        assert ember.get(outer.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
                         .remote(1, actor)) == 12
        actor_node = ember.get(actor.node.remote())
    assert actor_node != here, "the actor should run on the other node"
    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")
    spans = _wait_for_spans(receiver, trace_id, [
        "driver", "submit outer", "schedule outer", "execute outer", "submit inner", "schedule inner",
        "execute inner", "submit Echo.call", "execute Echo.call", "submit Echo.__init__",
        "execute Echo.__init__"])
    # The driver's current span is the parent of the task's spans...
    for name in ("submit outer", "schedule outer", "execute outer", "submit Echo.__init__", "execute Echo.__init__"):
        assert spans[name].parent_span_id == root_id, name
    # ...and the task's execute span the parent of what it submits and calls.
    execute_outer = spans["execute outer"].span_id
    for name in ("submit inner", "schedule inner", "execute inner", "submit Echo.call", "execute Echo.call"):
        assert spans[name].parent_span_id == execute_outer, name
    assert spans["execute outer"].resource["ember.node_id"] == here
    assert spans["execute Echo.call"].resource["ember.node_id"] == actor_node  # across nodes
    assert spans["execute outer"].resource["service.name"] == "ember-worker"
    assert spans["driver"].resource["service.name"] == "test-driver"  # the application's own provider
    # schedule = queue time, the raylet's: from submission until a worker is leased, before execution.
    assert spans["submit outer"].start_ns <= spans["schedule outer"].start_ns
    assert spans["schedule outer"].start_ns <= spans["schedule outer"].end_ns <= spans["execute outer"].start_ns
    assert spans["schedule outer"].resource["service.name"] == "ember-raylet"
    assert spans["schedule outer"].attributes["ember.task_id"] == spans["execute outer"].attributes["ember.task_id"]
    assert spans["execute outer"].attributes["ember.task_id"] == spans["submit outer"].attributes["ember.task_id"]
    assert spans["execute Echo.call"].attributes["ember.actor_id"] == actor._actor_id.hex()
    gets = [g for g in _trace(receiver, trace_id) if g.name == "ember.get"]
    assert {g.parent_span_id for g in gets} >= {root_id, execute_outer}  # the driver's gets, and the task's


def test_every_sampled_task_and_calls_spans_arrive_when_they_outnumber_a_batch(traced_cluster, receiver):
    """More spans than an export batch holds (512), ending while batches go
    out: each task's submit, schedule and execute span and each direct
    call's submit and execute span arrive, once."""
    here = ember.get_runtime_context().get_node_id()
    actor = Echo.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
    ember.get(actor.call.remote(0))
    n = 700
    with tracer.start_as_current_span("many") as root:
        tasks = [inner.remote(i) for i in range(n)]
        calls = [actor.call.remote(i) for i in range(n)]
        assert ember.get(tasks) == [i + 1 for i in range(n)] and ember.get(calls) == list(range(n))
    trace_id = format(root.get_span_context().trace_id, "032x")
    wanted = {(name, r.task_id().hex()) for r in tasks for name in ("submit inner", "schedule inner", "execute inner")}
    wanted |= {(name, r.task_id().hex()) for r in calls for name in ("submit Echo.call", "execute Echo.call")}

    def arrived():
        got = [(s.name, s.attributes.get("ember.task_id")) for s in _trace(receiver, trace_id)]
        return got if wanted <= set(got) else None
    got = wait_until(arrived, timeout=60, what=f"{len(wanted)} spans of {n} tasks and {n} calls")
    assert len([g for g in got if g in wanted]) == len(wanted)  # (each once)


def _raylet_stub(c) -> raylet_pb2_grpc.RayletStub:
    (node,) = [n for n in ember.nodes() if n["NodeID"] == ember.get_runtime_context().get_node_id()]
    token = auth.read_token(pathlib.Path(c.head_node.session_dir) / "token")
    return raylet_pb2_grpc.RayletStub(rpc.channel(f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}", token))


def test_a_direct_actor_call_is_a_child_of_the_callers_span(traced_cluster, receiver):
    c, _ = traced_cluster
    raylet = _raylet_stub(c)
    here = ember.get_runtime_context().get_node_id()
    actor = Echo.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()

    def went_direct():  # a result the raylet never heard of came straight from the actor
        ref = actor.call.remote(1)
        ember.get(ref)
        return ref.binary() not in {o.object_id for o in raylet.ListObjects(raylet_pb2.ListObjectsRequest(),
                                                                              timeout=10).objects}
    wait_until(lambda: went_direct() and runtime.client().direct_worker(actor._actor_id), timeout=20,
               what="calls going direct")
    with tracer.start_as_current_span("direct caller") as root:
        ref = actor.call.remote(5)
        assert ember.get(ref) == 5
    assert ref.binary() not in {o.object_id for o in raylet.ListObjects(raylet_pb2.ListObjectsRequest(),
                                                                          timeout=10).objects}
    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = _wait_for_spans(receiver, trace_id, ["direct caller", "submit Echo.call", "execute Echo.call"])
    root_id = format(root.get_span_context().span_id, "016x")
    assert spans["execute Echo.call"].parent_span_id == root_id
    assert spans["submit Echo.call"].parent_span_id == root_id


def _seen() -> dict:
    """What a task sees of its trace: its current span's context and baggage."""
    ctx = trace.get_current_span().get_span_context()
    return {"trace_id": format(ctx.trace_id, "032x"), "sampled": ctx.trace_flags.sampled,
            "recording": trace.get_current_span().is_recording(), "tracestate": ctx.trace_state.to_header(),
            "user": baggage.get_baggage("user")}


report_context = ember.remote(_seen)


@ember.remote
def nested_report(actor):
    return [_seen(), ember.get(report_context.remote()), ember.get(actor.report.remote())]


@ember.remote
class Reporter:
    def report(self):
        return _seen()


def test_an_unsampled_trace_records_nothing_and_says_so_downstream(traced_cluster, receiver):
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("unsampled")
    actor = Reporter.options(resources={"other": 1}).remote()
    ember.get(actor.report.remote())  # (created outside the trace)
    _driver_memory.clear()
    with unsampled.start_as_current_span("not sampled") as root:
        trace_id = format(root.get_span_context().trace_id, "032x")
        seen = ember.get(nested_report.remote(actor))
        ember.get(ember.put(1))
    assert not root.get_span_context().trace_flags.sampled
    for where in seen:  # the task, its nested task and an actor call on the other node
        assert where == {"trace_id": trace_id, "sampled": False, "recording": False, "tracestate": "",
                         "user": None}, where
    assert [s.name for s in _driver_memory.get_finished_spans()] == []  # the driver recorded nothing
    # The same work in a sampled trace: once its spans are in, none of the unsampled one came.
    with tracer.start_as_current_span("sampled") as marker:
        ember.get(nested_report.remote(actor))
    _wait_for_spans(receiver, format(marker.get_span_context().trace_id, "032x"),
                    ["sampled", "execute nested_report", "execute _seen", "execute Reporter.report"])
    assert _trace(receiver, trace_id) == []


@pytest.mark.parametrize("flags", ["01", "00"])  # sampled upstream, or not
def test_tracestate_and_baggage_reach_nested_tasks_whole(traced_cluster, flags):
    tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    upstream = TraceContextTextMapPropagator().extract({
        "traceparent": f"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-{flags}", "tracestate": tracestate})
    token = context.attach(baggage.set_baggage("user", "alice", upstream))
    try:
        with tracer.start_as_current_span("with state"):
            actor = Reporter.options(resources={"other": 1}).remote()
            seen = ember.get(nested_report.remote(actor))
    finally:
        context.detach(token)
    for where in seen:
        assert where["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
        assert where["sampled"] == where["recording"] == (flags == "01")
        assert where["tracestate"] == tracestate
        assert where["user"] == "alice"


@ember.remote
def produce(q):
    q.put("item")


@ember.remote
def consume(q):
    return q.get(timeout=30)


def test_a_queue_hand_over_is_a_link_not_a_parent(traced_cluster, receiver):
    with tracer.start_as_current_span("hand-over") as root:
        q = Queue()
        ember.get(produce.remote(q))
        assert ember.get(consume.remote(q)) == "item"
    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = _wait_for_spans(receiver, trace_id, ["execute produce", "execute consume", "queue put", "queue get"])
    put, got = spans["queue put"], spans["queue get"]
    assert put.parent_span_id == spans["execute produce"].span_id
    assert got.parent_span_id == spans["execute consume"].span_id  # the consumer's own span...
    assert got.links == ((trace_id, put.span_id),)  # ...linked to the producer's


_OFF_DRIVER = textwrap.dedent("""
    import sys
    import ember
    from ember._private import runtime
    from ember.util.placement_group import placement_group
    from ember.util.queue import Queue

    def loaded():
        return sorted(m for m in sys.modules if m.startswith("opentelemetry"))

    @ember.remote
    def task():
        return loaded()

    @ember.remote
    class Actor:
        def call(self):
            return loaded()

    ember.init(num_cpus=2)
    a = Actor.remote()
    q = Queue()
    q.put(1)
    assert q.get() == 1
    worker_side = ember.get(task.remote()) + ember.get(a.call.remote())
    ember.get(placement_group([{"CPU": 1}]).ready(), timeout=30)  # (the GCS's spans' paths)
    assert len(ember.get(ember.put(b"x" * 2_000_000))) == 2_000_000  # (the store's)
    print("loaded:", loaded() + worker_side)
    print("session:", runtime._state.session_dir)
    ember.shutdown()
""")


@pytest.mark.parametrize("settings", [{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"},
                                      {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "none"}])
def test_off_nothing_of_opentelemetry_is_imported(tmp_path, settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(settings)
    env["PYTHONPROFILEIMPORTTIME"] = "1"  # (every process logs its imports: the services' go to their .out files)
    script = tmp_path / "driver.py"
    script.write_text(_OFF_DRIVER)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout, done.stdout + done.stderr
    assert _service_imports(done.stdout) == {"gcs": [], "objectstore": [], "raylet": []}


def _service_imports(driver_output: str) -> dict[str, list[str]]:
    """The tracing modules (OpenTelemetry's, and Ember's OTLP encoder) each
    service of the driver's cluster imported, from the import log
    (PYTHONPROFILEIMPORTTIME) in its output file."""
    session = pathlib.Path(driver_output.split("session: ")[1].split()[0])
    found: dict[str, list[str]] = {}
    for out in sorted((session / "logs").glob("*.out")):
        service = out.name.split("-")[0].split(".")[0]
        if service in ("gcs", "objectstore", "raylet"):
            lines = out.read_text().splitlines()
            assert any("import time:" in line for line in lines), f"{out} has no import log"
            found[service] = sorted({line.rsplit("|", 1)[1].strip() for line in lines if "import time:" in line
                                     and line.rsplit("|", 1)[1].strip().startswith(
                                         ("opentelemetry", "ember_common.otlp_encoding"))})
    return found


def test_on_the_services_load_their_otlp_encoder_and_nothing_of_opentelemetry(tmp_path, receiver):
    """The other side of the test above: with tracing on, the import log
    does show the services loading their tracing (the check can fail), and
    that is Ember's own OTLP encoder: no OpenTelemetry package in a service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "PYTHONPROFILEIMPORTTIME": "1"})
    script = tmp_path / "driver.py"
    script.write_text(_OFF_DRIVER)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert _service_imports(done.stdout) == {service: ["ember_common.otlp_encoding"]
                                             for service in ("gcs", "objectstore", "raylet")}


# ---- the services' spans -------------------------------------------------------------------------------------

@ember.remote
def make_blob(n):
    return b"x" * n


@ember.remote
def blob_length(blob):
    return len(blob)


def _by_service(spans: list[ReceivedSpan], service: str, name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.resource["service.name"] == service and s.name == name]


def test_one_trace_shows_a_task_across_driver_raylets_workers_and_stores_with_a_cross_node_argument(
        traced_cluster, receiver):
    """A task on the other node makes a 4 MB value; a task here takes it
    (a pull from the other node's store): the raylets' schedule and forward
    spans, the stores' create/seal, pull and push spans, and the workers'
    spans are one trace, each service's spans under the right parent and
    named by service and node."""
    c, other = traced_cluster
    here = ember.get_runtime_context().get_node_id()
    far = other.node_id.hex()
    size = 4_000_000
    with tracer.start_as_current_span("transfer") as root:
        blob = make_blob.options(resources={"other": 1}).remote(size)
        assert ember.get(blob_length.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
                         .remote(blob)) == size
    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")

    def arrived():
        spans = _trace(receiver, trace_id)
        names = {(s.resource["service.name"], s.name) for s in spans}
        wanted = {("ember-raylet", "forward make_blob"), ("ember-raylet", "schedule make_blob"),
                  ("ember-raylet", "schedule blob_length"), ("ember-worker", "execute make_blob"),
                  ("ember-worker", "execute blob_length"), ("ember-objectstore", "object create"),
                  ("ember-objectstore", "object seal"), ("ember-objectstore", "object pull"),
                  ("ember-objectstore", "object push")}
        return spans if wanted <= names else None
    spans = wait_until(arrived, timeout=30, what="the services' spans of the trace")
    (execute_make,) = _by_service(spans, "ember-worker", "execute make_blob")
    # The raylets: the head's forwards make_blob to the other node, whose raylet leases it a worker (its schedule span: from the submission).
    (forward,) = _by_service(spans, "ember-raylet", "forward make_blob")
    (lease_make,) = _by_service(spans, "ember-raylet", "schedule make_blob")
    (lease_length,) = _by_service(spans, "ember-raylet", "schedule blob_length")
    assert forward.parent_span_id == lease_make.parent_span_id == lease_length.parent_span_id == root_id
    assert forward.resource["ember.node_id"] == here and forward.attributes["ember.to_node_id"] == far
    assert lease_make.resource["ember.node_id"] == far and lease_length.resource["ember.node_id"] == here
    assert lease_make.attributes["ember.task_id"] == execute_make.attributes["ember.task_id"]
    assert forward.end_ns <= lease_make.end_ns <= execute_make.start_ns
    assert lease_make.start_ns <= forward.start_ns  # (from the submission: the forward is part of its queue time)
    # The other node's store made the value, under the task that returned it.
    (create,) = _by_service(spans, "ember-objectstore", "object create")
    (seal,) = _by_service(spans, "ember-objectstore", "object seal")
    assert create.parent_span_id == seal.parent_span_id == execute_make.span_id
    assert create.resource["ember.node_id"] == seal.resource["ember.node_id"] == far
    assert create.attributes["ember.object_id"] == blob.hex() and create.attributes["ember.bytes"] >= size
    # This node's store pulled it for blob_length (under blob_length's context), the other pushed it.
    (pull,) = _by_service(spans, "ember-objectstore", "object pull")
    pushes = _by_service(spans, "ember-objectstore", "object push")
    assert pull.parent_span_id == root_id and pull.resource["ember.node_id"] == here
    assert pull.attributes["ember.object_id"] == blob.hex() and pull.attributes["ember.bytes"] >= size
    assert pushes and all(p.parent_span_id == pull.span_id and p.resource["ember.node_id"] == far for p in pushes)
    assert sum(p.attributes["ember.bytes"] for p in pushes) == pull.attributes["ember.bytes"]
    assert pull.start_ns <= min(p.start_ns for p in pushes) and max(p.end_ns for p in pushes) <= pull.end_ns
    (execute_length,) = _by_service(spans, "ember-worker", "execute blob_length")
    assert pull.end_ns <= execute_length.start_ns
    for s in spans:
        if s.resource["service.name"] != "test-driver":
            assert s.resource["process.pid"] > 0


def test_the_gcs_spans_placement_group_scheduling_and_actor_registration(traced_cluster, receiver):
    from ember.util.placement_group import placement_group, remove_placement_group

    with tracer.start_as_current_span("control plane") as root:
        pg = placement_group([{"CPU": 1}, {"other": 1}], strategy="SPREAD")
        ember.get(pg.ready(), timeout=30)
        actor = Echo.remote()
        ember.get(actor.call.remote(1))
    remove_placement_group(pg)
    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")
    spans = _wait_for_spans(receiver, trace_id, ["placement group create", "placement group schedule",
                                                  "actor register", "execute Echo.__init__"])
    for name in ("placement group create", "placement group schedule", "actor register"):
        assert spans[name].resource["service.name"] == "ember-gcs", name
        assert spans[name].parent_span_id == root_id, name
    assert spans["placement group create"].kind == 2  # SERVER
    schedule = spans["placement group schedule"]
    assert schedule.attributes["ember.placement_group_id"] == pg.id.hex()
    assert sorted(schedule.attributes["ember.node_ids"]) == sorted(n["NodeID"] for n in ember.nodes())
    assert spans["placement group create"].start_ns <= schedule.start_ns <= schedule.end_ns
    assert spans["actor register"].attributes["ember.actor_id"] == actor._actor_id.hex()


def test_an_unsampled_trace_records_nothing_in_the_services(traced_cluster, receiver):
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("unsampled")
    here = ember.get_runtime_context().get_node_id()
    with unsampled.start_as_current_span("not sampled") as root:
        blob = make_blob.options(resources={"other": 1}).remote(2_000_000)
        assert ember.get(blob_length.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
                         .remote(blob)) == 2_000_000
        ember.get(Echo.remote().call.remote(1))
    with tracer.start_as_current_span("sampled") as marker:  # the same work, sampled: once it is in...
        blob = make_blob.options(resources={"other": 1}).remote(2_000_000)
        ember.get(blob_length.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
                  .remote(blob))
        ember.get(Echo.remote().call.remote(1))
    _wait_for_spans(receiver, format(marker.get_span_context().trace_id, "032x"),
                    ["schedule make_blob", "object pull", "object push", "object seal", "actor register"])
    assert _trace(receiver, format(root.get_span_context().trace_id, "032x")) == []  # ...none of this came


# ---- a late call to a detached actor --------------------------------------------------------------------------

def test_a_late_call_to_a_detached_actor_links_to_its_creation(traced_cluster, receiver):
    """The creation's trace ends; a call in a later trace is a child of its
    caller's span with a link to the actor's creation span, as a queue
    hand-over is; a call inside the creation's trace stays a plain child."""
    with tracer.start_as_current_span("creator") as creator:
        actor = Echo.options(lifetime="detached", name="late-called", resources={"other": 1}).remote()
        assert ember.get(actor.call.remote(1)) == 1  # in the creation's trace
    try:
        with tracer.start_as_current_span("later") as later:
            assert ember.get(ember.get_actor("late-called").call.remote(2)) == 2
        creation_trace = format(creator.get_span_context().trace_id, "032x")
        created = _wait_for_spans(receiver, creation_trace, ["execute Echo.__init__", "execute Echo.call"])
        late = _wait_for_spans(receiver, format(later.get_span_context().trace_id, "032x"), ["execute Echo.call"])
    finally:
        ember.kill(actor)  # (after its spans are in: a killed worker's last batch is lost)
    creation_span = created["execute Echo.__init__"]
    assert late["execute Echo.call"].parent_span_id == format(later.get_span_context().span_id, "016x")
    assert late["execute Echo.call"].links == ((creation_trace, creation_span.span_id),)
    assert created["execute Echo.call"].links == ()
    assert created["execute Echo.call"].parent_span_id == format(creator.get_span_context().span_id, "016x")
