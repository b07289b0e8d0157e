"""The autoscaler on loopback with real processes: one head started with an
autoscaling config (the local provider: nodes started by `ember start
--address`, as an operator would), real tasks, objects, placement groups and
requests as the demand; each test leaves no launched node behind, and every
node the autoscaler started is stopped after the module. The command
provider, bad input and a GCS failover: test_autoscaler_providers.py."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
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
from tests.helpers import wait_until

INSTANCE_LABEL = "ember.io/autoscaler-instance"
TYPE_LABEL = "ember.io/node-type"
STORE = 64 * 1024 * 1024
State = autoscaler_pb2.AutoscalerInstance.State


def _config(tmp_path: pathlib.Path, **overrides: Any) -> pathlib.Path:
    raw = {"provider": {"type": "local"}, "max_workers": 2, "idle_timeout_minutes": 0.02,
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
        self._channels: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _channel(self, address: str) -> Any:
        with self._lock:
            if address not in self._channels:
                self._channels[address] = rpc.channel(address, self.token)
            return self._channels[address]

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def leader(self) -> str:
        for address in self.address.split(","):
            try:
                info = gcs_pb2_grpc.GcsStub(self._channel(address)).GetClusterInfo(gcs_pb2.GetClusterInfoRequest(),
                                                                                  timeout=2)
                if info.leader_address:
                    return info.leader_address
            except Exception:
                continue
        return ""

    def _call(self, stub: Any, method: str, request: Any) -> Any:
        leader = self.address if "," not in self.address else wait_until(self.leader, 20, "a GCS leader")
        return getattr(stub(self._channel(leader)), method)(request, timeout=5)

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
    head = Head(node, token)
    try:
        yield head
    finally:
        ember.shutdown()
        head.close()
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


@pytest.fixture(scope="module")
def local_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """One head (local provider, max_workers 2, idle timeout 1.2 s) and a
    driver, shared by the tests that each leave it with no launched node."""
    tmp = tmp_path_factory.mktemp("local_head")
    with autoscaling_head(tmp, _config(tmp)) as head:
        ember.init(address=head.address)
        yield head


def scaled_down(head: Head) -> bool:
    return not head.autoscaled() and not head.status().instances


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


def test_a_burst_far_above_the_limit_starts_nodes_within_it_runs_and_they_go_when_idle(local_head):
    head = local_head
    earlier = {n.node_id for n in head.autoscaled(alive_only=False)}
    watcher = MaxWatcher(head)
    try:
        refs = [on_accel.remote(0.1) for _ in range(30)]  # 30 nodes' worth of demand; at most 2 may start
        ran_on = set(ember.get(refs, timeout=90))
        status = head.status()
    finally:
        watcher.stop()
    types = {n.node_id.hex(): n.labels.get(TYPE_LABEL) for n in head.autoscaled(alive_only=False)
             if n.node_id not in earlier}
    assert ran_on <= set(types) and set(types.values()) == {"accel_worker"}, (ran_on, types)
    assert 1 <= len(types) <= 2 and watcher.most_nodes <= 2 and watcher.most_instances <= 2
    assert {t.name: t.max_workers for t in status.node_types} == {"accel_worker": 2}
    # Idle past the timeout: drained, stopped, unregistered, their processes gone.
    wait_until(lambda: scaled_down(head), 30, "the idle nodes to go")
    events = "\n".join(head.status().recent_events)
    assert "removing accel_worker node" in events and "idle for" in events
    assert len(head.autoscaled(alive_only=False)) == len(types) + len(earlier)  # nothing started since


@ember.remote(resources={"accel": 1}, num_cpus=1)
def big_value(runs: str) -> list:
    with open(runs, "a") as f:
        f.write("ran\n")
    # Stored in its node's object store (not inline), and only there: the
    # driver gets just the ref.
    return [ember.put(b"x" * (2 * 1024 * 1024))]


def test_an_object_whose_only_copy_is_on_an_idle_node_is_moved_before_the_node_goes(local_head, tmp_path):
    head, runs = local_head, tmp_path / "runs"
    (ref,) = ember.get(big_value.remote(str(runs)), timeout=60)
    (node,) = head.autoscaled()
    wait_until(lambda: scaled_down(head), 30, "the idle node to go")
    events = head.status().recent_events
    assert any(f"node {node.node_id.hex()[:8]} removed" in e for e in events), events
    assert ember.get(ref, timeout=10) == b"x" * (2 * 1024 * 1024)
    assert runs.read_text() == "ran\n"  # the copy moved to the head: not rebuilt by running the task again


def test_demand_no_node_type_fits_is_reported_once_as_infeasible_and_never_launched_for(local_head):
    head = local_head
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
    wait_until(lambda: not head.status().unmet, 10, "the cancelled demand to go")


def test_a_placement_group_needing_two_nodes_gets_both(local_head):
    from ember.util import placement_group, remove_placement_group

    head = local_head
    pg = placement_group([{"accel": 1}, {"accel": 1}], strategy="STRICT_SPREAD")
    assert pg.wait(60)
    group = head._call(gcs_pb2_grpc.GcsStub, "GetPlacementGroup",
                       gcs_pb2.GetPlacementGroupRequest(placement_group_id=pg.id)).group
    autoscaled = {n.node_id for n in head.autoscaled()}
    assert len(set(group.bundle_nodes)) == 2 and set(group.bundle_nodes) == autoscaled
    time.sleep(2)  # past the idle timeout: its bundles keep both nodes
    assert {n.node_id for n in head.autoscaled()} == autoscaled
    remove_placement_group(pg)
    wait_until(lambda: scaled_down(head), 30, "the nodes to go once the group is removed")


def test_request_resources_scales_up_to_the_request_and_holds_it(local_head):
    from ember.autoscaler.sdk import request_resources

    head = local_head
    with pytest.raises(TypeError, match="bundle 0"):
        request_resources(bundles=[{"accel": -1}])
    request_resources(bundles=[{"accel": 1}])
    wait_until(lambda: len(head.autoscaled()) == 1, 30, "one node for the request")
    time.sleep(2)  # past the idle timeout: the request keeps it
    assert len(head.autoscaled()) == 1 and len(head.status().instances) == 1
    request_resources()  # withdrawn: it goes
    wait_until(lambda: scaled_down(head), 30, "the node to go once the request is withdrawn")


@ember.remote(resources={"accel": 1}, num_cpus=1)
class OnAccel:
    def where(self) -> str:
        return ember.get_runtime_context().get_node_id()


def test_an_actor_that_fits_only_a_new_node_gets_one_which_stays_while_the_actor_lives(local_head):
    head = local_head
    actor = OnAccel.remote()
    node_id = ember.get(actor.where.remote(), timeout=60)
    (node,) = head.autoscaled()
    assert node.node_id.hex() == node_id
    time.sleep(2)  # past the idle timeout: a live actor keeps its node
    assert [n.node_id for n in head.autoscaled()] == [node.node_id]
    ember.kill(actor)
    wait_until(lambda: scaled_down(head), 30, "the node to go once the actor is gone")
