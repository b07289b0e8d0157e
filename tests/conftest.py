"""Shared fixtures. Every cluster a test starts is a real set of service
processes on loopback, and every test leaves no process or shared-memory
file behind (checked by `no_leftovers`)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import time
from typing import Any, Iterator

import psutil
import pytest

import ember
from tests.helpers import wait_nodes


def ember_processes(marker: str | None = None) -> list[psutil.Process]:
    """Ember service, worker and test etcd processes (of one session if `marker`)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(m in cmd for m in ("ember_gcs.main", "ember_raylet.main", "ember_objectstore.main", "ember_dashboard.main",
                                  "ember._private.worker",
                                  "bin/ember-gcs", "bin/ember-raylet", "bin/ember-objectstore", "etcdbin/etcd")):
            if marker is None or marker in cmd:
                found.append(proc)
    return found


def wait_gone(marker: str, timeout: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = ember_processes(marker)
        if not left:
            return []
        time.sleep(0.05)
    return ember_processes(marker)


def pid_gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether process `pid` exits (or is a zombie) within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:  # it may exit between any two looks
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def shm_files(marker: str = "ember-") -> list[str]:
    return [f for f in os.listdir("/dev/shm") if f.startswith(marker)]


@pytest.fixture(scope="session", autouse=True)
def _session_root(tmp_path_factory: pytest.TempPathFactory) -> object:
    # Tests get their own session root, so `ember start` in a test never
    # touches a developer's clusters (nor `address="auto"` finds theirs).
    root = tmp_path_factory.mktemp("sessions")
    os.environ["EMBER_SESSION_ROOT"] = str(root)
    # Heads started by `ember start` serve their dashboard on a free port,
    # not 8265: test runs (and a developer's cluster) on one machine must not meet.
    os.environ["EMBER_DASHBOARD_PORT"] = "0"
    yield
    # Whatever a test started under the test temp dirs must be gone by now.
    left = wait_gone(str(tmp_path_factory.getbasetemp()))
    assert not left, f"processes left behind by the tests: {[p.pid for p in left]}"


@pytest.fixture(scope="module")
def cluster() -> object:
    """A private local cluster for a test module (2 CPUs)."""
    info = ember.init(num_cpus=2)
    marker = info["session_dir"]
    yield info
    ember.shutdown()
    assert not wait_gone(marker), "processes left after shutdown()"
    assert not shm_files(f"ember-{pathlib.Path(marker).name[-6:]}"), "shared memory left after shutdown()"


@contextlib.contextmanager
def added_nodes(c: Any, *nodes: dict[str, Any]) -> Iterator[list[Any]]:
    """Nodes added to Cluster `c` (one per dict of add_node arguments), once
    every node knows every other (wait_nodes); after, those the body did not
    remove are removed, and no process of any of them is left."""
    added = []
    try:
        for args in nodes:
            added.append(c.add_node(**args))
        wait_nodes(len(c.list_all_nodes()))
        yield added
    finally:
        for node in added:
            if node in c.worker_nodes:
                c.remove_node(node)
        for node in added:
            assert not wait_gone(str(node.session_dir)), f"processes of {node.session_dir} left behind"


@contextlib.contextmanager
def multinode_cluster(head: dict[str, Any], *nodes: dict[str, Any]) -> Iterator[tuple[Any, list[Any]]]:
    """A connected ember.cluster_utils.Cluster: the head plus `nodes`; every
    process gone after."""
    from ember.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args=head)
    head_session = str(c.head_node.session_dir)
    try:
        c.connect()
        with added_nodes(c, *nodes) as added:
            yield c, added
    finally:
        c.shutdown()
        assert not wait_gone(head_session), f"processes of {head_session} left behind"


@pytest.fixture(scope="module")
def raylet(cluster):
    """The one node's raylet, as an operator reaches it (`ember memory`)."""
    from ember.v1 import raylet_pb2_grpc
    from ember_common import auth, rpc

    (node,) = ember.nodes()
    token = auth.read_token(pathlib.Path(cluster["session_dir"]) / "token")
    channel = rpc.channel(f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}", token)
    yield raylet_pb2_grpc.RayletStub(channel)
    channel.close()
