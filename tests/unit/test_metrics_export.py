"""Prometheus metrics without a cluster: the /metrics endpoint (a real
socket on loopback), the collectors over real tables with fake processes,
the aggregation of application metrics, the discovery file and the
client's reporter."""

import asyncio
import json
import socket
import urllib.error
import urllib.request

import pytest
from ember.v1 import common_pb2, gcs_pb2, raylet_pb2
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from ember._private.metrics_registry import MetricKind, Registry
from ember._private.metrics_reporter import MetricsReporter
from ember.util.metrics import Counter
from ember_common import ids
from ember_common.loop_metrics import LoopHistogram, cumulative_buckets
from ember_common.metrics_server import MetricsServer, make_registry
from ember_common.ports import ListenError
from ember_gcs.actor_table import ActorTable
from ember_gcs.job_table import JobTable
from ember_gcs.leader_gate import SoleLeader
from ember_gcs.metrics import GcsCollector, LeadershipCounts, RpcLatency
from ember_gcs.metrics_discovery import DiscoveryFile
from ember_gcs.node_table import NodeTable
from ember_gcs.storage import MemoryStorage
from ember_raylet.client_session import DRIVER, ClientSession
from ember_raylet.metrics import RayletCollector
from ember_raylet.user_metrics import UserMetrics
from tests.unit.test_node_manager import executed, finish, make, spec, submit

Family = raylet_pb2.UserMetricFamily


def samples(*collectors) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, as a scrape would read them."""
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class _Fixed:
    def collect(self):
        yield GaugeMetricFamily("ember_test_value", "a fixed value", value=42)


# -- the endpoint ---------------------------------------------------------------

def _get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


async def _serving(registry, check, port=0):
    server = MetricsServer(registry, "127.0.0.1", port)
    chosen = await server.start()
    try:
        return await asyncio.to_thread(check, chosen)
    finally:
        await server.stop()


def test_metrics_path_serves_the_collectors_and_other_paths_are_404():
    def check(port):
        status, kind, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and kind.startswith("text/plain; version=0.0.4")
        text = body.decode()
        assert "ember_test_value 42.0" in text
        assert "process_resident_memory_bytes" in text  # the standard process metrics come along
        assert _get(f"http://127.0.0.1:{port}/metrics?x=1")[0] == 200
        status, _, body = _get(f"http://127.0.0.1:{port}/metric")
        assert status == 404 and b"metrics are at /metrics" in body
        assert _get(f"http://127.0.0.1:{port}/")[0] == 404
        assert _get(f"http://127.0.0.1:{port}/metrics", method="POST")[0] == 405
        status, _, body = _get(f"http://127.0.0.1:{port}/metrics", method="HEAD")
        assert status == 200 and body == b""
        # Garbage instead of HTTP: answered 400, and the server keeps serving.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"nonsense\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400")
        assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 200

    asyncio.run(_serving(make_registry([_Fixed()]), check))


def test_a_metrics_port_in_use_is_refused_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}: the port is in use"):
            asyncio.run(_serving(make_registry([]), lambda p: None, port))


def test_a_failing_collector_answers_500_and_the_endpoint_stays():
    class Broken:
        def collect(self):
            raise RuntimeError("boom")

    registry = make_registry([])
    broken = Broken()

    def check(port):
        registry.register(broken)
        assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 500
        registry.unregister(broken)
        assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 200

    asyncio.run(_serving(registry, check))


# -- values kept on the loop ------------------------------------------------------

def test_loop_histogram_buckets_are_upper_bounds_and_export_cumulative():
    h = LoopHistogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    assert h.counts == [2, 1, 1] and h.sum == pytest.approx(3.65)
    assert cumulative_buckets(h.bounds, h.counts) == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]


# -- the raylet -------------------------------------------------------------------

def test_raylet_counts_outcomes_latencies_and_reads_states_at_scrape():
    nm, driver, (w1, w2), _ = make(cpus=2)
    collector = RayletCollector(nm, nm.user_metrics)
    ok, raised = spec(), spec()
    submit(nm, driver, ok, raised)
    ran_on = {e.spec.task_id: w for w in (w1, w2) for e in executed(w)}
    assert set(ran_on) == {ok.task_id, raised.task_id}
    before = samples(collector)
    assert before[("ember_tasks", (("state", "assigned"),))] == 2
    assert before[("ember_workers", (("state", "leased"),))] == 2
    assert before[("ember_drivers", ())] == 1 and before[("ember_driver_connects_total", ())] == 1
    ret = common_pb2.ObjectValue(object_id=ids.object_id_for(ok.task_id, 1), data=b"v")
    nm.handle_batch(ran_on[ok.task_id], raylet_pb2.ClientBatch(results=[
        raylet_pb2.TaskResult(task_id=ok.task_id, returns=[ret], run_time_s=0.002)]))
    finish(nm, ran_on[raised.task_id], raised.task_id, b"ERR", is_error=True, app_error=True)
    after = samples(collector)
    assert after[("ember_tasks_succeeded_total", ())] == 1
    assert after[("ember_tasks_failed_total", (("error_type", "application"),))] == 1
    assert after[("ember_task_execution_seconds_count", ())] == 1  # (the failed one did not say how long it ran)
    assert after[("ember_task_execution_seconds_bucket", (("le", "0.0025"),))] == 1
    assert after[("ember_task_execution_seconds_bucket", (("le", "0.001"),))] == 0
    assert after[("ember_task_scheduling_latency_seconds_count", ())] == 1
    assert after[("ember_tasks", (("state", "assigned"),))] == 0
    assert after[("ember_workers", (("state", "idle"),))] == 2
    nm.disconnect(driver)
    gone = samples(collector)
    assert gone[("ember_drivers", ())] == 0 and gone[("ember_driver_disconnects_total", ())] == 1
    assert gone[("ember_worker_starts_total", ())] == 2


def test_raylet_counts_runtime_failures_by_error_class():
    nm, driver, (w1,), _ = make(cpus=1)
    collector = RayletCollector(nm)
    running, waiting = spec(), spec()
    submit(nm, driver, running, waiting)
    executed(w1)
    nm.cancel(waiting.task_id, force=False, recursive=True)  # queued (or pipelined): failed at once
    nm.disconnect(w1)  # the running task's worker died; no retries left
    got = samples(collector)
    assert got[("ember_tasks_failed_total", (("error_type", "WorkerCrashedError"),))] >= 1
    assert sum(v for (name, _), v in got.items() if name == "ember_tasks_failed_total") == 2


def test_infeasible_tasks_are_a_queue_depth():
    nm, driver, _, _ = make(cpus=1)
    submit(nm, driver, spec(cpus=64))
    got = samples(RayletCollector(nm))
    assert got[("ember_tasks_infeasible", ())] == 1
    assert got[("ember_tasks", (("state", "queued"),))] == 1


# -- application metrics, aggregated on the raylet -------------------------------

def _family(name, kind, series, tag_keys=("route",), boundaries=()):
    family = Family(name=name, kind=kind, tag_keys=tag_keys, boundaries=boundaries, description=f"{name} help")
    for tags, value, extra in series:
        s = family.series.add(tag_values=tags, value=value)
        if kind == Family.HISTOGRAM:
            s.bucket_counts.extend(extra)
        else:
            s.set_time = extra
    return raylet_pb2.UserMetrics(families=[family])


def test_counters_and_histograms_sum_over_processes_and_outlive_them():
    user = UserMetrics()
    a, b = b"a" * 16, b"b" * 16
    user.report(a, _family("requests", Family.COUNTER, [(["/x"], 3, 0), (["/y"], 1, 0)]))
    user.report(b, _family("requests", Family.COUNTER, [(["/x"], 2, 0)]))
    user.report(a, _family("lat", Family.HISTOGRAM, [([], 0.5, [1, 0, 0])], (), (0.1, 1.0)))
    user.report(b, _family("lat", Family.HISTOGRAM, [([], 7.0, [0, 1, 1])], (), (0.1, 1.0)))
    got = samples(_Families(user))
    assert got[("requests_total", (("route", "/x"),))] == 5 and got[("requests_total", (("route", "/y"),))] == 1
    assert got[("lat_bucket", (("le", "0.1"),))] == 1 and got[("lat_bucket", (("le", "+Inf"),))] == 3
    assert got[("lat_sum", ())] == 7.5
    # A report replaces the process's previous one (totals, not increments).
    user.report(a, _family("requests", Family.COUNTER, [(["/x"], 4, 0), (["/y"], 1, 0)]))
    assert samples(_Families(user))[("requests_total", (("route", "/x"),))] == 6
    user.client_gone(a)  # its totals stay
    got = samples(_Families(user))
    assert got[("requests_total", (("route", "/x"),))] == 6 and got[("lat_count", ())] == 3


def test_a_gauge_is_the_last_set_among_live_processes_and_goes_with_them():
    user = UserMetrics()
    a, b = b"a" * 16, b"b" * 16
    user.report(a, _family("depth", Family.GAUGE, [(["/x"], 5, 100.0)]))
    user.report(b, _family("depth", Family.GAUGE, [(["/x"], 7, 50.0)]))
    assert samples(_Families(user))[("depth", (("route", "/x"),))] == 5  # set later, by a
    user.client_gone(a)
    assert samples(_Families(user))[("depth", (("route", "/x"),))] == 7
    user.client_gone(b)
    assert ("depth", (("route", "/x"),)) not in samples(_Families(user))


def test_malformed_or_conflicting_families_are_dropped(caplog):
    user = UserMetrics()
    c = b"c" * 16
    user.report(c, _family("hits", Family.COUNTER, [(["/x"], 1, 0)]))
    user.report(c, _family("hits", Family.GAUGE, [(["/x"], 1, 0)]))  # another kind: dropped
    user.report(c, _family("ember_tasks", Family.COUNTER, [(["/x"], 1, 0)]))  # Ember's own name
    user.report(c, _family("bad name", Family.COUNTER, []))
    user.report(c, _family("short", Family.COUNTER, [([], 1, 0)]))  # no value for the tag key
    user.report(c, _family("h", Family.HISTOGRAM, [([], 1, [1])], (), (1.0,)))  # buckets do not match
    user.report(c, _family("labels", Family.COUNTER, [(["a"], 1, 0)], ("__x",)))
    got = samples(_Families(user))
    assert got == {("hits_total", (("route", "/x"),)): 1}
    for name in ("hits", "ember_tasks", "bad name", "short", "h", "labels"):
        assert f"application metric {name!r} is not exported" in caplog.text


class _Families:
    def __init__(self, user):
        self.user = user

    def collect(self):
        return self.user.families()


def test_the_raylet_applies_reports_from_batches_and_forgets_gauges_of_the_gone():
    nm, driver, _, _ = make(cpus=1)
    nm.handle_batch(driver, raylet_pb2.ClientBatch(
        user_metrics=_family("temp", Family.GAUGE, [(["/x"], 3, 1.0)])))
    assert samples(RayletCollector(nm, nm.user_metrics))[("temp", (("route", "/x"),))] == 3
    nm.disconnect(driver)
    assert ("temp", (("route", "/x"),)) not in samples(RayletCollector(nm, nm.user_metrics))


# -- the client's reporter --------------------------------------------------------

def test_the_reporter_sends_changed_families_only_and_a_last_report_at_close():
    registry = Registry()
    sent = []
    reporter = MetricsReporter(registry, sent.append, interval_s=3600)
    reporter.start()  # nothing declared: no thread yet
    assert reporter._thread is None
    registry.declare("a", MetricKind.COUNTER, "", ())
    registry.declare("g", MetricKind.GAUGE, "", ("k",))
    assert reporter._thread is not None  # started by the first declaration
    registry.add("a", (), 2)
    registry.set("g", ("v",), 1.5)
    reporter.report()
    (first,) = sent
    assert [f.name for f in first.families] == ["a", "g"]
    assert first.families[1].series[0].tag_values == ["v"] and first.families[1].series[0].set_time > 0
    reporter.report()
    assert len(sent) == 1  # nothing changed: nothing sent
    registry.add("a", (), 1)
    reporter.close()
    assert [f.name for f in sent[1].families] == ["a"] and sent[1].families[0].series[0].value == 3


def test_names_of_embers_own_metrics_are_refused_at_definition():
    with pytest.raises(ValueError, match="'ember_tasks' starts with one of"):
        Counter("ember_tasks")


# -- the GCS ----------------------------------------------------------------------

def _node(alive=True, metrics_port=9001, store_port=9002):
    return gcs_pb2.NodeInfo(node_id=ids.new_unique_id(), node_address="10.0.0.7", raylet_port=1, alive=alive,
                            metrics_port=metrics_port, object_store_metrics_port=store_port)


def test_gcs_collector_reads_nodes_actors_and_leadership():
    async def run():
        storage = MemoryStorage()
        nodes, jobs, actors = NodeTable(storage, 10.0), JobTable(storage), ActorTable(storage)
        first, second = _node(), _node()
        await nodes.register(first)
        await nodes.register(second)
        await nodes.mark_dead(second.node_id, "test")
        for state, restarts in ((gcs_pb2.ActorInfo.ALIVE, 2), (gcs_pb2.ActorInfo.DEAD, 1)):
            actor_id = ids.new_unique_id()
            await actors.register(gcs_pb2.ActorInfo(actor_id=actor_id, job_id=b"\0\0\0\1", class_name="A"))
            await actors.update(gcs_pb2.UpdateActorRequest(actor_id=actor_id, state=state, num_restarts=restarts))
        rpc = RpcLatency()
        rpc.by_method["KvGet"] = LoopHistogram()
        rpc.by_method["KvGet"].observe(0.0003)
        return samples(GcsCollector(nodes, jobs, actors, SoleLeader(), rpc, LeadershipCounts(), "memory")), first

    got, first = asyncio.run(run())
    assert got[("ember_nodes", (("state", "alive"),))] == 1 and got[("ember_nodes", (("state", "dead"),))] == 1
    (lag,) = [v for (name, labels), v in got.items() if name == "ember_gcs_node_report_age_seconds"]
    assert 0 <= lag < 5
    assert ("ember_gcs_node_report_age_seconds", (("node_id", first.node_id.hex()),)) in got
    assert got[("ember_actors", (("state", "alive"),))] == 1 and got[("ember_actors", (("state", "dead"),))] == 1
    assert got[("ember_actor_restarts_total", ())] == 3
    assert got[("ember_gcs_leader", (("storage", "memory"),))] == 1
    assert got[("ember_gcs_rpc_latency_seconds_count", (("method", "KvGet"),))] == 1


def test_discovery_file_lists_alive_nodes_and_is_rewritten_on_change(tmp_path):
    path = tmp_path / "prometheus_sd.json"
    discovery = DiscoveryFile(path, "session_x")
    discovery.gcs_address = "10.0.0.1:9000"
    alive, dead, off = _node(), _node(alive=False), _node(metrics_port=0, store_port=0)
    discovery.update([alive, dead, off])
    groups = json.loads(path.read_text())
    assert groups[0] == {"targets": ["10.0.0.1:9000"], "labels": {"ember_service": "gcs", "ember_session": "session_x"}}
    assert [(g["targets"], g["labels"]["ember_service"], g["labels"]["ember_node_id"]) for g in groups[1:]] == [
        (["10.0.0.7:9001"], "raylet", alive.node_id.hex()), (["10.0.0.7:9002"], "objectstore", alive.node_id.hex())]
    stamp = path.stat().st_mtime_ns
    discovery.update([alive, dead])  # the same endpoints: not rewritten
    assert path.stat().st_mtime_ns == stamp
    discovery.update([])
    assert len(json.loads(path.read_text())) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["prometheus_sd.json"]  # no temporary file left


def test_with_metrics_off_the_raylet_records_no_task_outcomes():
    nm, driver, (w1,), _ = make(cpus=1)
    nm._count_tasks = False  # as RayletService sets it from EMBER_METRICS_ENABLED=0
    s = spec()
    submit(nm, driver, s)
    executed(w1)
    ret = common_pb2.ObjectValue(object_id=ids.object_id_for(s.task_id, 1), data=b"v")
    nm.handle_batch(w1, raylet_pb2.ClientBatch(results=[raylet_pb2.TaskResult(task_id=s.task_id, returns=[ret],
                                                                              run_time_s=0.01)]))
    got = samples(RayletCollector(nm))
    assert got[("ember_tasks_succeeded_total", ())] == 0 and got[("ember_task_execution_seconds_count", ())] == 0
