"""Task events, the state API, the timeline and logs on real clusters:
ember.util.state, `ember list|summary|timeline|logs`, and the NodeState
RPCs' answers to bad input (a path out of the log directory, an unknown
file, a wrong token)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import grpc
import pytest
from ember.v1 import node_state_pb2, node_state_pb2_grpc

import ember
from ember.util import state
from ember_common import auth, rpc
from tests.helpers import wait_until

EMBER = shutil.which("ember", path=os.path.dirname(sys.executable)) or "ember"


@ember.remote
def inner(x):
    time.sleep(0.05)
    return x + 1


@ember.remote
def outer(x):
    print(f"outer says {x}")
    return ember.get(inner.remote(x))


@ember.remote(max_retries=0)
def fails():
    raise ValueError("boom")


@ember.remote(max_retries=1)
def crashes_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(13)  # the worker dies: a second attempt runs
    return "second try"


@ember.remote
def sleeps(path):
    open(path, "w").close()
    time.sleep(60)


@ember.remote
class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n


def _cli(cluster, *args, timeout=60):
    token = (pathlib.Path(cluster["session_dir"]) / "token").read_text().strip()
    return subprocess.run([EMBER, *args, "--address", cluster["gcs_address"]], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, auth.TOKEN_ENV: token})


def _node_state(cluster, token=None):
    (node,) = [n for n in ember.nodes() if n["Alive"]]
    token = token or (pathlib.Path(cluster["session_dir"]) / "token").read_text().strip()
    channel = rpc.channel(f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}", token)
    return channel, node_state_pb2_grpc.NodeStateStub(channel)


@pytest.fixture(scope="module")
def ran(cluster):
    """A nested task, a failing task and actor calls, all done."""
    assert ember.get(outer.remote(1)) == 2
    with pytest.raises(ValueError):
        ember.get(fails.remote())
    c = Counter.remote()
    assert ember.get([c.inc.remote() for _ in range(3)]) == [1, 2, 3]
    wait_until(lambda: len([t for t in state.list_tasks(filters=[("name", "=", "Counter.inc")])
                            if t["state"] == "FINISHED"]) == 3, what="the actor calls' events")
    yield c
    ember.kill(c)


def test_list_tasks_has_every_attempt_with_rays_keys(ran):
    tasks = {t["name"]: t for t in state.list_tasks()}
    assert {"outer", "inner", "fails", "Counter.__init__", "Counter.inc"} <= set(tasks)
    o, i, f = tasks["outer"], tasks["inner"], tasks["fails"]
    assert o["state"] == i["state"] == "FINISHED" and o.state == "FINISHED"  # (attributes too, as Ray's)
    assert i["parent_task_id"] == o["task_id"] and o["type"] == "NORMAL_TASK"
    assert o["start_time_ms"] <= i["start_time_ms"] <= i["end_time_ms"] <= o["end_time_ms"]
    assert f["state"] == "FAILED" and f["error_type"] == "TASK_EXECUTION_EXCEPTION" and "boom" in f["error_message"]
    assert tasks["Counter.inc"]["type"] == "ACTOR_TASK" and tasks["Counter.inc"]["actor_id"] == ran._actor_id.hex()
    assert tasks["Counter.__init__"]["type"] == "ACTOR_CREATION_TASK"
    node_id = ember.get_runtime_context().get_node_id()
    assert all(t["node_id"] == node_id and t["worker_pid"] > 0 for t in tasks.values())
    for key in ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type", "func_or_class_name",
                "parent_task_id", "node_id", "worker_id", "worker_pid", "error_type", "start_time_ms", "end_time_ms"):
        assert key in o, key


def test_filters_limits_get_task_and_summaries(ran):
    finished = state.list_tasks(filters=[("state", "=", "finished")], limit=1000)
    assert finished and all(t["state"] == "FINISHED" for t in finished)
    not_finished = state.list_tasks(filters=[("state", "!=", "FINISHED")], limit=1000)
    assert {t["name"] for t in not_finished} >= {"fails"} and all(t["state"] != "FINISHED" for t in not_finished)
    assert len(state.list_tasks(limit=2)) == 2
    fails_row = next(t for t in not_finished if t["name"] == "fails")
    assert state.get_task(fails_row["task_id"])["error_type"] == "TASK_EXECUTION_EXCEPTION"
    assert state.get_task("ab" * 16) is None  # unknown task id
    with pytest.raises(state.StateQueryError, match="not a hex id"):
        state.get_task("not-an-id")
    with pytest.raises(ValueError, match="unknown filter key 'colour'"):
        state.list_tasks(filters=[("colour", "=", "red")])
    with pytest.raises(ValueError, match="unknown predicate"):
        state.list_tasks(filters=[("state", "~", "FINISHED")])
    summary = state.summarize_tasks()["cluster"]
    assert summary["summary"]["Counter.inc"]["state_counts"]["FINISHED"] >= 3
    assert summary["summary"]["fails"]["state_counts"] == {"FAILED": 1}
    actors = state.summarize_actors()["cluster"]
    assert actors["summary"]["Counter"]["state_counts"].get("ALIVE") == 1
    assert state.summarize_objects()["cluster"]["summary_by"] == "callsite"


def test_other_resources(ran, cluster):
    assert [a["state"] for a in state.list_actors(filters=[("class_name", "=", "Counter")])] == ["ALIVE"]
    workers = state.list_workers()
    assert any(w["actor_id"] == ran._actor_id.hex() and w["is_alive"] for w in workers)
    (node,) = state.list_nodes()
    assert node["is_head_node"] and node["state"] == "ALIVE"
    jobs = state.list_jobs()
    assert jobs and jobs[-1]["status"] == "RUNNING" and jobs[-1]["driver_pid"] == os.getpid()
    ref = ember.put(b"x" * 10)
    assert any(o["object_id"] == ref.hex() for o in state.list_objects(limit=10000))
    assert state.list_placement_groups() == []


def test_cli_list_summary_and_bad_input(ran, cluster):
    out = _cli(cluster, "list", "tasks", "--filter", "name=outer", "--format", "json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["name"] == "outer" and row["state"] == "FINISHED"
    out = _cli(cluster, "list", "tasks", "--filter", "state!=FINISHED")
    assert out.returncode == 0 and "fails" in out.stdout and "TASK_EXECUTION_EXCEPTION" in out.stdout
    assert " outer" not in out.stdout
    for resource in ("objects", "workers", "nodes", "jobs", "actors", "placement-groups"):
        out = _cli(cluster, "list", resource, "--limit", "5")
        assert out.returncode == 0, (resource, out.stderr)
    out = _cli(cluster, "list", "actors", "--filter", "class_name=Counter", "--json")
    assert json.loads(out.stdout)["state"] == "ALIVE"
    out = _cli(cluster, "summary", "tasks")
    assert out.returncode == 0 and "fails (NORMAL_TASK): FAILED: 1" in out.stdout
    bad = _cli(cluster, "list", "tasks", "--filter", "colour=red")
    assert bad.returncode == 2 and "unknown filter key 'colour'" in bad.stderr
    bad = _cli(cluster, "list", "tasks", "--filter", "state")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_timeline_nests_the_inner_task_in_the_outer(ran, cluster, tmp_path):
    out = _cli(cluster, "timeline", "--output", str(tmp_path / "trace.json"))
    assert out.returncode == 0, out.stderr
    events = json.loads((tmp_path / "trace.json").read_text())
    complete = [e for e in events if e["ph"] == "X"]
    assert all({"name", "ts", "dur", "pid", "tid", "args"} <= set(e) for e in complete)
    o = next(e for e in complete if e["name"] == "outer")
    i = next(e for e in complete if e["name"] == "inner")
    assert o["ts"] <= i["ts"] and i["ts"] + i["dur"] <= o["ts"] + o["dur"]
    assert i["args"]["parent_task_id"] == o["args"]["task_id"]
    threads = {(e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert (o["pid"], o["tid"]) in threads and (i["pid"], i["tid"]) in threads
    assert any(e["name"] == "process_name" and "(head)" in e["args"]["name"] for e in events)
    written = tmp_path / "api.json"
    ember.timeline(str(written))
    assert any(e["name"] == "outer" for e in json.loads(written.read_text()))


def test_logs_list_and_print_through_the_raylet(ran, cluster):
    out = _cli(cluster, "logs")
    assert out.returncode == 0, out.stderr
    assert "raylet-" in out.stdout and "worker-" in out.stdout and "gcs.log" in out.stdout
    outer_task = state.list_tasks(filters=[("name", "=", "outer")])[0]
    out = _cli(cluster, "logs", "--task-id", outer_task["task_id"], "--tail", "50")
    assert out.returncode == 0 and "outer says 1" in out.stdout, out.stderr
    out = _cli(cluster, "logs", "--actor-id", ran._actor_id.hex())
    assert out.returncode == 0, out.stderr
    lines = list(state.get_log(pid=outer_task["worker_pid"], tail=-1))
    assert "outer says 1" in lines
    bad = _cli(cluster, "logs", "--task-id", "ab" * 16)
    assert bad.returncode == 2 and "no task with id" in bad.stderr
    assert sorted(state.list_logs()) == [ember.get_runtime_context().get_node_id()]


def test_log_reads_stay_in_the_log_directory_and_need_the_token(cluster):
    channel, stub = _node_state(cluster)
    try:
        for name in ("../token", "/etc/passwd", "..", "a/b"):
            with pytest.raises(grpc.RpcError) as e:
                list(stub.StreamLog(node_state_pb2.StreamLogRequest(name=name), timeout=5))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        with pytest.raises(grpc.RpcError) as e:
            list(stub.StreamLog(node_state_pb2.StreamLogRequest(name="nothing.log"), timeout=5))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert stub.ListLogs(node_state_pb2.ListLogsRequest(), timeout=5).files
    finally:
        channel.close()
    channel, stub = _node_state(cluster, token="wrong-token")
    try:
        for call, request in ((stub.GetTaskEvents, node_state_pb2.GetTaskEventsRequest()),
                              (stub.ListLogs, node_state_pb2.ListLogsRequest())):
            with pytest.raises(grpc.RpcError) as e:
                call(request, timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as e:
            list(stub.StreamLog(node_state_pb2.StreamLogRequest(name="gcs.log"), timeout=5))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        channel.close()


def test_follow_streams_what_is_appended(cluster):
    channel, stub = _node_state(cluster)
    log_dir = pathlib.Path(cluster["session_dir"]) / "logs"
    name = next(f.name for f in stub.ListLogs(node_state_pb2.ListLogsRequest(), timeout=5).files
                if f.name.startswith("raylet-"))
    stream = stub.StreamLog(node_state_pb2.StreamLogRequest(name=name, tail_lines=1, follow=True), timeout=30)
    try:
        next(stream)  # the last line
        with open(log_dir / name, "a") as f:
            f.write("appended for the follow test\n")
        seen = b""
        while b"appended for the follow test" not in seen:
            seen += next(stream).data
    finally:
        stream.cancel()
        channel.close()


def test_a_retry_is_a_new_attempt_and_a_cancel_says_so(cluster, tmp_path):
    ref = crashes_once.remote(str(tmp_path / "crashed"))
    assert ember.get(ref) == "second try"
    task_id = ref.task_id().hex()

    def attempts():
        rows = state.list_tasks(filters=[("task_id", "=", task_id)])
        return rows if len(rows) == 2 and rows[1]["state"] == "FINISHED" else None

    first, second = sorted(wait_until(attempts, what="both attempts"), key=lambda r: r["attempt_number"])
    assert (first["attempt_number"], second["attempt_number"]) == (0, 1)
    assert first["state"] == "FAILED" and first["error_type"] == "WORKER_DIED"
    assert state.get_task(task_id)["attempt_number"] == 1

    started = tmp_path / "started"
    slow = sleeps.remote(str(started))
    wait_until(started.exists, what="the task to start")
    running = wait_until(lambda: state.get_task(slow.task_id().hex())["state"] == "RUNNING", what="RUNNING")
    assert running
    ember.cancel(slow)
    with pytest.raises(ember.exceptions.TaskCancelledError):
        ember.get(slow)
    row = wait_until(lambda: (lambda r: r if r["state"] == "FAILED" else None)(state.get_task(slow.task_id().hex())),
                     what="the cancelled task's end")
    assert row["error_type"] == "TASK_CANCELLED"
