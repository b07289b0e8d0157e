"""Job submission with real processes: `ember job ...` and
JobSubmissionClient against a cluster started by `ember start --head`. A
job's driver joins its cluster with ember.init(address="auto") and runs in
the job's runtime env; its output is kept and streamed; failures and stops
are reported with their exit code; a stopped job leaves no process behind;
records survive a GCS leader kill on etcd; bad input is refused with
nothing recorded."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import grpc
import psutil
import pytest
from ember.v1 import gcs_pb2, job_pb2, job_pb2_grpc

from ember.job_submission import JobStatus, JobSubmissionClient
from ember_common import rpc
from ember_common.gcs_client import GcsClient
from ember_common.job_records import KV_NAMESPACE
from tests.conftest import pid_gone
from tests.etcd_server import etcd_binary, started
from tests.helpers import build_wheel, wait_until
from tests.test_cli import ember_cli

ENTRY = textwrap.dedent("""
    import os, ember
    import job_helper
    ember.init(address="auto")

    @ember.remote
    def look():
        import job_helper
        return job_helper.VALUE, os.environ.get("MODE")

    print("driver:", job_helper.VALUE, os.environ.get("MODE"), flush=True)
    print("task:", ember.get(look.remote(), timeout=60), flush=True)
""")

# Starts a child process and a (non-detached) actor, says their pids, then waits to be stopped.
LINGER = textwrap.dedent("""
    import os, subprocess, sys, time, ember
    ember.init(address="auto")

    @ember.remote
    class Holder:
        def pid(self):
            return os.getpid()

    holder = Holder.remote()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("pids", os.getpid(), child.pid, ember.get(holder.pid.remote(), timeout=60), flush=True)
    time.sleep(600)
""")


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    out = ember_cli("start", "--head", "--port", "0", "--num-cpus", "2")
    assert out.returncode == 0, out.stderr
    session = pathlib.Path(next(l for l in out.stdout.splitlines() if l.strip().startswith("session:"))
                           .split("session:", 1)[1].strip())
    yield session
    ember_cli("stop")


@pytest.fixture
def client(head):
    with JobSubmissionClient("auto") as c:
        yield c


def _project(tmp_path: pathlib.Path, value: str) -> pathlib.Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "entry.py").write_text(ENTRY)
    (project / "job_helper.py").write_text(f"VALUE = {value!r}\n")
    (project / "linger.py").write_text(LINGER)
    return project


def _wait_done(client: JobSubmissionClient, submission_id: str, timeout: float = 60):
    return wait_until(lambda: (i := client.get_job_info(submission_id)).status.is_terminal() and i,
                      timeout=timeout, what=f"job {submission_id} to end")


def test_cli_submits_a_job_with_a_working_dir_and_follows_it_to_success(head, tmp_path):
    project = _project(tmp_path, "from the working dir")
    out = ember_cli("job", "submit", "--working-dir", str(project), "--runtime-env-json",
                    '{"env_vars": {"MODE": "cli"}}', "--submission-id", "cli-ok", "--", "python", "entry.py",
                    timeout=120)
    assert out.returncode == 0, out.stderr
    assert "driver: from the working dir cli" in out.stdout
    assert "task: ('from the working dir', 'cli')" in out.stdout
    assert "Job 'cli-ok' SUCCEEDED" in out.stderr
    status = ember_cli("job", "status", "cli-ok")
    assert "Job 'cli-ok': SUCCEEDED (exit code 0)" in status.stdout
    logs = ember_cli("job", "logs", "cli-ok")
    assert "task: ('from the working dir', 'cli')" in logs.stdout
    assert "cli-ok  SUCCEEDED exit=0  python entry.py" in ember_cli("job", "list").stdout


def test_python_client_tails_the_logs_as_they_are_printed(client, tmp_path):
    script = "import time\nfor i in range(3):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n"
    (tmp_path / "slow.py").write_text(script)
    sid = client.submit_job(entrypoint="python slow.py", runtime_env={"working_dir": str(tmp_path)},
                            metadata={"owner": "tests"})
    seen: list[tuple[float, str]] = []

    async def follow() -> None:
        async for text in client.tail_job_logs(sid):
            seen.append((time.monotonic(), text))

    asyncio.run(follow())
    text = "".join(t for _, t in seen)
    assert text == "line 0\nline 1\nline 2\n"
    assert len(seen) >= 2 and seen[-1][0] - seen[0][0] > 0.3, "the lines came all at once, not as printed"
    info = client.get_job_info(sid)
    assert info.status == JobStatus.SUCCEEDED and info.driver_exit_code == 0 and info.metadata == {"owner": "tests"}
    assert client.get_job_logs(sid) == text
    assert sid in [j.submission_id for j in client.list_jobs()]


def test_a_failing_job_is_failed_with_its_exit_code(client, head):
    sid = client.submit_job(entrypoint="echo going down; exit 7")
    info = _wait_done(client, sid)
    assert info.status == JobStatus.FAILED and info.driver_exit_code == 7
    assert "exit code 7" in info.message and client.get_job_logs(sid) == "going down\n"
    # The words after -- are joined with spaces into one shell command, as Ray joins them.
    out = ember_cli("job", "submit", "--", "python", "-c", "'import sys; sys.exit(3)'", timeout=60)
    assert out.returncode == 1 and "FAILED: Job entrypoint command failed with exit code 3" in out.stderr


def test_stop_ends_the_job_s_processes_and_its_actors(client, tmp_path):
    project = _project(tmp_path, "unused")
    sid = client.submit_job(entrypoint="python linger.py", runtime_env={"working_dir": str(project)})
    line = wait_until(lambda: [l for l in client.get_job_logs(sid).splitlines() if l.startswith("pids")],
                      timeout=60, what="the job to start its child and actor")
    pids = [int(p) for p in line[0].split()[1:]]
    assert client.get_job_status(sid) == JobStatus.RUNNING
    assert all(psutil.pid_exists(p) for p in pids)
    out = ember_cli("job", "stop", sid, timeout=60)
    assert out.returncode == 0 and f"Job '{sid}' stopped" in out.stdout, out.stderr
    info = client.get_job_info(sid)
    assert info.status == JobStatus.STOPPED
    for pid in pids:  # the driver, the child it started, and its actor's worker
        assert pid_gone(pid), f"pid {pid} of the stopped job is still running"
    assert client.stop_job(sid) is False  # already over


def test_bad_input_is_refused_and_nothing_is_recorded(client, head, tmp_path):
    before = {j.submission_id for j in client.list_jobs()}
    with pytest.raises(RuntimeError, match="NOT_FOUND: no job with submission id 'nope'"):
        client.get_job_info("nope")
    with pytest.raises(RuntimeError, match="NOT_FOUND"):
        client.stop_job("nope")
    out = ember_cli("job", "status", "nope")
    assert out.returncode != 0 and "no job with submission id 'nope'" in out.stderr
    out = ember_cli("job", "logs", "nope", "--follow")
    assert out.returncode != 0 and "no job with submission id 'nope'" in out.stderr
    with pytest.raises(ValueError, match="the entrypoint is empty"):
        client.submit_job(entrypoint="  ")
    with pytest.raises(ValueError, match="submission id 'bad id!' must be"):
        client.submit_job(entrypoint="true", submission_id="bad id!")
    with pytest.raises(ValueError, match="unknown runtime_env key 'pips'"):
        client.submit_job(entrypoint="true", runtime_env={"pips": ["x"]})
    with pytest.raises(ValueError, match="does not exist"):
        client.submit_job(entrypoint="true", runtime_env={"working_dir": str(tmp_path / "missing")})
    out = ember_cli("job", "submit", "--runtime-env-json", "{not json", "--", "true")
    assert out.returncode == 2 and "--runtime-env-json must be JSON" in out.stderr
    out = ember_cli("job", "submit", "--working-dir", str(tmp_path / "missing"), "--", "true")
    assert out.returncode == 1 and "does not exist" in out.stderr
    # Without the cluster's token (none, or a wrong one) the job service runs nothing.
    marker = tmp_path / "ran"
    for token in (None, "wrong"):
        channel = rpc.channel(client._address, token)
        try:
            with pytest.raises(grpc.RpcError) as refused:
                job_pb2_grpc.JobServiceStub(channel).SubmitJob(
                    job_pb2.SubmitJobRequest(entrypoint=f"touch {marker}"), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            channel.close()
    assert {j.submission_id for j in client.list_jobs()} == before and not marker.exists()
    # A duplicate id is refused and the first job's record is untouched.
    sid = client.submit_job(entrypoint="true", submission_id="dup-id")
    _wait_done(client, sid)
    with pytest.raises(ValueError, match="'dup-id' exists already"):
        client.submit_job(entrypoint="exit 1", submission_id="dup-id")
    assert client.get_job_info("dup-id").status == JobStatus.SUCCEEDED


def test_a_job_s_failed_runtime_env_fails_the_job_with_pip_s_error(client):
    sid = client.submit_job(entrypoint="true", runtime_env={
        "pip": {"packages": ["ember-no-such-package-anywhere==9.9"], "pip_install_options": ["--no-index"]}})
    info = _wait_done(client, sid, timeout=120)
    assert info.status == JobStatus.FAILED and info.driver_exit_code is None
    assert "could not start" in info.message and "No matching distribution" in info.message


def test_entrypoint_num_cpus_are_held_while_the_entrypoint_runs(client, tmp_path):
    gate = tmp_path / "gate"
    (tmp_path / "wait_gate.py").write_text(
        "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.02)\n")
    first = client.submit_job(entrypoint=f"python {tmp_path / 'wait_gate.py'} {gate}", entrypoint_num_cpus=2)
    wait_until(lambda: client.get_job_status(first) == JobStatus.RUNNING, timeout=60, what="the first job to run")
    # The head's 2 CPUs are the first job's: the second starts only after it ends
    # (had it started at once, `test -e` would fail it: the gate is not there yet).
    second = client.submit_job(entrypoint=f"test -e {gate}", entrypoint_num_cpus=1)
    assert client.get_job_status(second) == JobStatus.PENDING
    gate.write_text("")
    assert _wait_done(client, first).status == JobStatus.SUCCEEDED
    info = _wait_done(client, second)
    assert info.status == JobStatus.SUCCEEDED, info.message
    too_many = client.submit_job(entrypoint="true", entrypoint_num_cpus=3)
    info = _wait_done(client, too_many)
    assert info.status == JobStatus.FAILED and "entrypoint_num_cpus=3.0 is more than the head node has" in info.message


def test_a_job_s_pip_environment_is_its_driver_s_and_its_tasks(client, tmp_path):
    wheel = build_wheel(tmp_path / "dist", "ember_job_pkg", "pip for the job")
    (tmp_path / "use_pkg.py").write_text(textwrap.dedent("""
        import ember, ember_job_pkg
        ember.init(address="auto")

        @ember.remote
        def look():
            import ember_job_pkg
            return ember_job_pkg.VALUE

        print("driver:", ember_job_pkg.VALUE, "task:", ember.get(look.remote(), timeout=60), flush=True)
    """))
    sid = client.submit_job(entrypoint="python use_pkg.py", runtime_env={
        "working_dir": str(tmp_path), "excludes": ["dist/"],
        "pip": {"packages": [wheel], "pip_install_options": ["--no-index"]}})
    info = _wait_done(client, sid, timeout=120)
    assert info.status == JobStatus.SUCCEEDED, client.get_job_logs(sid)
    assert "driver: pip for the job task: pip for the job" in client.get_job_logs(sid)
