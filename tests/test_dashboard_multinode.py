"""The dashboard of a two-node cluster (ember.cluster_utils.Cluster): rows
and waterfall lanes of both nodes, each node's metrics, and a node that
leaves shown DEAD with why."""

from __future__ import annotations

import json
import urllib.request

import ember
from ember._private import node_launcher
from tests.conftest import multinode_cluster, pid_gone
from tests.helpers import wait_until


@ember.remote(num_cpus=1)
def where():
    import time

    time.sleep(0.05)
    return ember.get_runtime_context().get_node_id()


def _get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


def test_both_nodes_and_a_dead_one():
    with multinode_cluster({"num_cpus": 1}, {"num_cpus": 1, "resources": {"side": 1}}) as (c, (side,)):
        url = node_launcher.start_dashboard(c.head_node, c.token, "127.0.0.1", 0, detached=False)
        pid = c.head_node.pids["dashboard"]
        head_id, side_id = c.head_node.node_id.hex(), side.node_id.hex()
        ran_on = set(ember.get([where.remote() for _ in range(2)] +
                               [where.options(resources={"side": 1}).remote() for _ in range(2)]))
        assert side_id in ran_on

        nodes = {n["node_id"]: n for n in _get(f"{url}/api/cluster", c.token)["nodes"]}
        assert set(nodes) == {head_id, side_id} and nodes[side_id]["resources_total"]["side"] == 1
        lanes = {(t["node_id"], t["worker_pid"]) for t in _get(f"{url}/api/waterfall", c.token)["tasks"]}
        assert side_id in {node for node, _ in lanes}
        metrics = _get(f"{url}/api/metrics", c.token)
        assert set(metrics["nodes"]) == {head_id, side_id} and not metrics["missing"]

        c.remove_node(side)
        cluster = wait_until(lambda: (r := _get(f"{url}/api/cluster", c.token))["dead"] == 1 and r,
                             timeout=30, what="the removed node DEAD in the dashboard")
        dead = {n["node_id"]: n for n in cluster["nodes"]}[side_id]
        assert dead["state"] == "DEAD" and dead["state_message"] and dead["resources_used"] == {}
        assert cluster["alive"] == 1 and "side" not in cluster["resources"]
        # Only alive nodes are read.
        assert set(_get(f"{url}/api/metrics", c.token)["nodes"]) == {head_id}
    assert pid_gone(pid), "the dashboard outlived its cluster"
