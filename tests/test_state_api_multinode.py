"""Task events and logs across two nodes: one query gathers both nodes'
events, and a worker's log on the non-head node is read through its raylet."""

from __future__ import annotations

import os

import pytest

import ember
from ember.util import state
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests.conftest import multinode_cluster
from tests.helpers import wait_until


@ember.remote(num_cpus=0)
def where_and_pid(tag):
    print(f"log line {tag}")
    return ember.get_runtime_context().get_node_id(), os.getpid()


def test_events_and_logs_of_two_nodes():
    with multinode_cluster({"num_cpus": 1}, {"num_cpus": 1}) as (c, (other,)):
        other_id = other.node_id.hex()
        here = ember.get(where_and_pid.remote("head"))
        there = ember.get(where_and_pid.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(other_id, soft=False)).remote("other"))
        assert there[0] == other_id and here[0] != other_id
        rows = wait_until(lambda: (lambda r: r if len(r) == 2 else None)(
            [t for t in state.list_tasks(filters=[("name", "=", "where_and_pid")]) if t["state"] == "FINISHED"]),
            what="both tasks finished")
        assert {(t["node_id"], t["worker_pid"]) for t in rows} == {tuple(here), tuple(there)}
        logs = state.list_logs()
        assert set(logs) == {here[0], other_id}
        assert f"raylet-{other_id[:8]}.log" in logs[other_id] and f"raylet-{other_id[:8]}.log" not in logs[here[0]]
        assert "gcs.log" in logs[here[0]] and "gcs.log" not in logs[other_id]
        lines = list(state.get_log(pid=there[1], tail=-1))  # (found on whichever node has it)
        assert "log line other" in lines
        head = c.head_node.node_id.hex()
        trace = ember.timeline()
        assert len({e["pid"] for e in trace if e["ph"] == "X" and e["name"] == "where_and_pid"}) == 2
        assert any(e["name"] == "process_name" and e["args"]["name"] == f"node {head[:8]} (head)" for e in trace)


@ember.remote
def noop(i):
    return i


def test_a_nodes_buffer_is_bounded_and_says_what_it_dropped(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBER_TASK_EVENTS_BUFFER_SIZE", "30")
    ember.init(num_cpus=1)
    try:
        assert ember.get([noop.remote(i) for i in range(40)]) == list(range(40))  # ~120 events
        with pytest.warns(RuntimeWarning, match=r"dropped its \d+ oldest task events"):
            rows = state.list_tasks(limit=1000)
        assert 0 < len(rows) <= 30
        assert any(r["name"] == "noop" and r["state"] == "FINISHED" for r in rows)
    finally:
        ember.shutdown()
