"""ember.cluster_utils.Cluster: a head plus extra nodes on one machine,
each its own processes, session directory and resources."""

from __future__ import annotations

import time

import pytest

import ember
from ember.cluster_utils import Cluster
from tests.conftest import shm_files, wait_gone


def _alive_cpus() -> float:
    return sum(n["Resources"].get("CPU", 0) for n in ember.nodes() if n["Alive"])


def test_head_plus_nodes_join_leave_and_clean_up():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        gpu_node = cluster.add_node(num_cpus=2, resources={"accel": 1}, labels={"zone": "b"})
        crash_node = cluster.add_node(num_cpus=1)
        assert len({n.session_dir for n in cluster.list_all_nodes()}) == 3  # each its own
        cluster.connect()
        assert len([n for n in ember.nodes() if n["Alive"]]) == 3
        assert ember.cluster_resources()["CPU"] == 4 and ember.cluster_resources()["accel"] == 1

        @ember.remote
        def f(x):
            return x * 2

        assert ember.get([f.remote(i) for i in range(20)]) == [2 * i for i in range(20)]

        cluster.remove_node(gpu_node)  # graceful: unregistered at once
        deadline = time.monotonic() + 10
        while _alive_cpus() != 2:
            assert time.monotonic() < deadline, ember.nodes()
            time.sleep(0.05)
        dead = [n for n in ember.nodes() if n["NodeID"] == gpu_node.node_id.hex()]
        assert dead and not dead[0]["Alive"]
        assert not wait_gone(str(gpu_node.session_dir))

        cluster.remove_node(crash_node, allow_graceful=False)  # SIGKILL: no goodbye
        assert not wait_gone(str(crash_node.session_dir))
        with pytest.raises(ValueError):
            cluster.remove_node(cluster.head_node)
        with pytest.raises(ValueError, match="does not take"):
            cluster.add_node(num_cpu=1)
    finally:
        sessions = [str(n.session_dir) for n in cluster.list_all_nodes()]
        cluster.shutdown()
    for s in sessions:
        assert not wait_gone(s)
    assert not [f for f in shm_files() if any(s[-6:] in f for s in sessions)]


def test_a_session_directory_too_long_for_unix_sockets_is_refused_before_anything_starts(tmp_path):
    from ember._private import node_launcher

    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    with pytest.raises(ValueError, match="too long for unix socket paths"):
        node_launcher.start_node(deep, "t" * 43, head=True)
    assert not wait_gone(str(deep), timeout=1)


def test_init_by_the_cluster_address_finds_its_token_and_a_wrong_one_still_fails(monkeypatch):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    head_session = str(cluster.head_node.session_dir)
    try:
        # As Ray users write it: no token passed, none in the environment.
        monkeypatch.delenv("EMBER_AUTH_TOKEN", raising=False)
        ember.init(address=cluster.address)
        try:
            assert ember.get(_double.remote(21)) == 42
        finally:
            ember.shutdown()
        monkeypatch.setenv("EMBER_AUTH_TOKEN", "wrong")
        with pytest.raises(ConnectionError, match="UNAUTHENTICATED"):
            ember.init(address=cluster.address)
        assert not ember.is_initialized()
    finally:
        cluster.shutdown()
    assert not wait_gone(head_session)


@ember.remote
def _double(x):
    return x * 2
