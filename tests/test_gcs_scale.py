"""bench/gcs_scale.py at a small node count, so the harness cannot rot: a
real GCS process serving simulated raylets (each its own AioGcsClient and
connection), and three replicas on a real etcd losing their leader. What
is asserted is behaviour (every node registered, alive, heartbeating and
in the views), not timings."""

from __future__ import annotations

from bench import gcs_scale
from ember_common import auth

NODES = 50


def test_one_gcs_serves_simulated_nodes(tmp_path):
    token = auth.new_token()
    with gcs_scale.serving(tmp_path, token, NODES, procs=2, interval=0.25) as (gcss, sims, client):
        point = gcs_scale.measure(gcss[0], sims, NODES, seconds=2, interval=0.25)
        ids = sims.node_ids()
    assert len(ids) == NODES
    assert point["alive_in_gcs"] == NODES and point["nodes_in_age_metric"] == NODES  # the GCS hears every node
    assert point["nodes_reporting"] == NODES and point["min_reports_per_node"] >= 1
    assert point["report_errors"] == 0
    assert point["probe_view_nodes"] == NODES  # a report's reply is the whole cluster, parsed by a raylet's view
    assert point["view_bytes"] > 0 and point["gcs_cpu_cores"] > 0 and point["gcs_pss_mb"] > 0


def test_simulated_nodes_follow_a_new_gcs_leader(tmp_path):
    nodes = 20
    point = gcs_scale.run_failover(tmp_path, auth.new_token(), nodes, seconds=1, procs=1, interval=0.25,
                                   warmup=0.5, ttl=1.0)
    failover = point["failover"]
    assert point["storage"] == "etcd" and point["alive_in_gcs"] == nodes
    assert failover["nodes_served"] == nodes  # every node's report answered by the new leader
    assert failover["alive_in_new_leader"] == nodes
    assert failover["after"]["alive_in_gcs"] == nodes and failover["after"]["report_errors"] == 0
