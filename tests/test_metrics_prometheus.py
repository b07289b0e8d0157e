"""A real Prometheus server (Debian's `prometheus` package) scraping a real
two-node cluster through the head's prometheus_sd.json: every service's
endpoint is found and up, Ember's own metrics and the users' (from tasks,
an actor and the driver, on both nodes) arrive with the values the workload
implies, and a node that leaves drops out of the discovery file."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import urllib.parse
import urllib.request

import numpy as np
import pytest

import ember
from ember._private.node_launcher import free_port
from ember.util.metrics import Counter, Gauge, Histogram
from tests.conftest import multinode_cluster
from tests.helpers import wait_until

INSTALL = "apt-get update && apt-get install -y prometheus   (Debian's package; .ci/run installs it)"


@ember.remote
def work(i: int) -> int:
    Counter("it_requests", "requests served", tag_keys=("node",)).inc(tags={"node": "any"})
    Histogram("it_latency_seconds", "made up latencies", boundaries=[0.1, 1.0]).observe(0.5 * (i % 3))
    return i


@ember.remote
def fails() -> None:
    raise ValueError("on purpose")


@ember.remote
def size_of(array: np.ndarray) -> int:
    return array.nbytes


@ember.remote
class Depth:
    def set(self, value: float) -> None:
        Gauge("it_queue_depth", "a queue's depth").set(value)


class Prometheus:
    """A Prometheus server on a free loopback port, scraping every second
    the targets listed in `sd_file`; its data in `workdir`."""

    def __init__(self, sd_file: pathlib.Path, workdir: pathlib.Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail(f"the prometheus server is not installed; install it with: {INSTALL}")
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({  # (YAML is a superset of JSON)
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "ember",
                                "file_sd_configs": [{"files": [str(sd_file)], "refresh_interval": "1s"}]}],
        }))
        self._log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(self._ready, timeout=60, what="Prometheus to be ready")

    def _get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as reply:
            return json.loads(reply.read())

    def _ready(self) -> bool:
        assert self.proc.poll() is None, f"prometheus exited with {self.proc.returncode}"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2).read()
            return True
        except OSError:
            return False

    def targets(self) -> list[dict]:
        return self._get("/api/v1/targets?state=active")["data"]["activeTargets"]

    def up(self) -> dict[str, int]:
        """Healthy targets per ember_service."""
        counts: dict[str, int] = {}
        for target in self.targets():
            if target["health"] == "up":
                service = target["labels"]["ember_service"]
                counts[service] = counts.get(service, 0) + 1
        return counts

    def value(self, query: str) -> float | None:
        """The query's one value, or None when it has none (yet)."""
        result = self._get(f"/api/v1/query?query={urllib.parse.quote(query)}")["data"]["result"]
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def wait_value(self, query: str, check, what: str, timeout: float = 30) -> float:
        def seen():
            value = self.value(query)
            return value if value is not None and check(value) else None

        return wait_until(seen, timeout=timeout, what=f"{query} {what}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def test_prometheus_scrapes_every_service_through_the_discovery_file(tmp_path):
    with multinode_cluster({"num_cpus": 2}, {"num_cpus": 2, "resources": {"other": 1}}) as (c, (other,)):
        sd_file = pathlib.Path(c.head_node.session_dir) / "prometheus_sd.json"
        wait_until(lambda: sd_file.exists() and len(json.loads(sd_file.read_text())) == 5, timeout=20,
                   what="the discovery file to list the GCS and both nodes' raylet and object store")
        prometheus = Prometheus(sd_file, tmp_path)
        try:
            wait_until(lambda: prometheus.up() == {"gcs": 1, "raylet": 2, "objectstore": 2}, timeout=60,
                       what="every target to be up")
            # The workload: tasks on both nodes (with users' metrics), a
            # failure, an actor, an object pulled from the head to the other node.
            head_tasks = [work.remote(i) for i in range(20)]
            other_tasks = [work.options(resources={"other": 0.1}).remote(i) for i in range(10)]
            assert sum(ember.get(head_tasks + other_tasks)) == sum(range(20)) + sum(range(10))
            with pytest.raises(ValueError):
                ember.get(fails.remote())
            depth = Depth.remote()
            ember.get(depth.set.remote(7))
            array = np.ones(4 << 20, dtype=np.uint8)
            assert ember.get(size_of.options(resources={"other": 0.1}).remote(ember.put(array))) == array.nbytes
            Counter("it_driver_events", "events the driver saw").inc(3)

            p = prometheus
            p.wait_value("sum(it_requests_total)", lambda v: v == 30, "to count every task on both nodes")
            p.wait_value("count(it_requests_total)", lambda v: v == 2, "to come from both raylets")
            p.wait_value("sum(it_latency_seconds_count)", lambda v: v == 30, "to count every observation")
            p.wait_value('sum(it_latency_seconds_bucket{le="0.1"})', lambda v: v == 7 + 4, "to hold the zeros")
            p.wait_value("it_queue_depth", lambda v: v == 7, "to be the actor's gauge")
            p.wait_value("sum(it_driver_events_total)", lambda v: v == 3, "to be the driver's counter")
            p.wait_value("sum(ember_tasks_succeeded_total)", lambda v: v >= 32, "to count the tasks that returned")
            p.wait_value('sum(ember_tasks_failed_total{error_type="application"})', lambda v: v == 1,
                         "to count the task that raised")
            p.wait_value("sum(ember_task_execution_seconds_count)", lambda v: v >= 32, "to time the tasks")
            p.wait_value("sum(ember_task_scheduling_latency_seconds_count)", lambda v: v >= 32, "to time the waits")
            p.wait_value('ember_actors{state="alive"}', lambda v: v == 1, "to see the actor")
            p.wait_value('sum(ember_workers{state="actor"})', lambda v: v == 1, "to see the actor's worker")
            p.wait_value("sum(ember_worker_starts_total)", lambda v: v >= 4, "to count worker starts")
            p.wait_value("sum(ember_drivers)", lambda v: v == 1, "to see the driver")
            p.wait_value("sum(ember_object_transfer_received_bytes_total)", lambda v: v >= array.nbytes,
                         "to count the pulled object")
            p.wait_value("sum(ember_object_transfer_sent_bytes_total)", lambda v: v >= array.nbytes,
                         "to count what the head sent")
            p.wait_value("min(ember_object_store_capacity_bytes)", lambda v: v > 0, "to be the stores' capacity")
            p.wait_value('ember_nodes{state="alive"}', lambda v: v == 2, "to count both nodes")
            p.wait_value("max(ember_gcs_node_report_age_seconds)", lambda v: 0 <= v < 5, "to be a fresh heartbeat")
            p.wait_value("ember_gcs_leader", lambda v: v == 1, "to say the GCS leads")
            p.wait_value('sum(ember_gcs_rpc_latency_seconds_count{method="RegisterNode"})', lambda v: v >= 2,
                         "to time the registrations")
            # A node that leaves is dropped from the file, and so from the targets.
            c.remove_node(other)
            wait_until(lambda: len(json.loads(sd_file.read_text())) == 3, timeout=20,
                       what="the discovery file to drop the node")
            wait_until(lambda: len(prometheus.targets()) == 3, timeout=30, what="Prometheus to drop its targets")
            p.wait_value('ember_nodes{state="dead"}', lambda v: v == 1, "to count the node that left")
        finally:
            prometheus.stop()
