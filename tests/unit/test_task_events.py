"""Task events without sockets: the raylet's bounded buffer, the merge of
every node's events into Ray's task rows, filters and summaries, the Chrome
trace, and the log directory's name checks and tails."""

from __future__ import annotations

import json

import pytest
from ember.v1 import node_state_pb2, raylet_pb2

from ember_common import chrome_trace, state_query, task_rows
from ember_common.errors import InvalidArgument, NotFound
from ember_common.object_layout import Failure, FailureType
from ember_raylet import log_files
from ember_raylet.task_events import TaskEvents

NODE_A, NODE_B = b"\xaa" * 16, b"\xbb" * 16


def _spec(n: int, name: str = "f", **kw) -> raylet_pb2.TaskSpec:
    return raylet_pb2.TaskSpec(task_id=bytes([n]) * 16, job_id=b"\x00\x00\x00\x01", function_name=name, **kw)


def _reply(node_id: bytes, events: TaskEvents, running=()) -> node_state_pb2.GetTaskEventsReply:
    return node_state_pb2.GetTaskEventsReply(node_id=node_id, events=events.snapshot(running), dropped=events.dropped)


def test_the_buffer_is_bounded_and_counts_what_it_drops():
    events = TaskEvents(capacity=5)
    for i in range(8):
        events.submitted(_spec(i + 1), pending_args=False)
    assert len(events) == 5 and events.dropped == 3
    kept = [e.task_id[0] for e in events.snapshot()]
    assert kept == [4, 5, 6, 7, 8]  # the oldest went


def test_the_buffer_never_keeps_a_spec():
    events = TaskEvents(capacity=10)
    spec = _spec(1, args=b"x" * 100_000)
    events.submitted(spec, pending_args=True)
    assert all(not isinstance(part, raylet_pb2.TaskSpec) for event in events._events for part in event)


def test_a_task_across_two_nodes_becomes_one_row():
    a, b = TaskEvents(), TaskEvents()
    spec = _spec(1, "f", parent_task_id=b"\x09" * 16)
    a.submitted(spec, pending_args=False)  # submitted on A, spilled to B, ran there
    b.submitted(spec, pending_args=False)
    b.dispatched(spec, b"\x01" * 16, 4242)
    b.ran(spec, start_time=a._events[0][3], worker_id=b"\x01" * 16, pid=4242)
    (row,) = task_rows.merge([_reply(NODE_A, a), _reply(NODE_B, b)])
    assert row["task_id"] == spec.task_id.hex() and row["state"] == "FINISHED" and row["name"] == "f"
    assert row["node_id"] == NODE_B.hex() and row["worker_pid"] == 4242 and row["type"] == "NORMAL_TASK"
    assert row["parent_task_id"] == ("09" * 16) and row["job_id"] == "00000001" and row["error_type"] is None
    assert row["creation_time_ms"] <= row["start_time_ms"] <= row["end_time_ms"]
    assert [e["state"] for e in row["events"]][-3:] == ["SUBMITTED_TO_WORKER", "RUNNING", "FINISHED"]


def test_failures_retries_and_running_tasks():
    events = TaskEvents()
    raised, retried, cancelled, running = _spec(1, "raises"), _spec(2, "retried", max_retries=1), _spec(3), _spec(4, "slow")
    for spec in (raised, retried, cancelled, running):
        events.submitted(spec, pending_args=False)
    events.ran(raised, 1.0, b"w" * 16, 10, "TASK_EXECUTION_EXCEPTION", "ValueError: boom")
    events.dispatched(retried, b"w" * 16, 11)
    retried.attempt_number += 1  # its worker died; a second attempt ran
    events.dispatched(retried, b"v" * 16, 12)
    events.ran(retried, 2.0, b"v" * 16, 12)
    events.failure(cancelled, Failure(FailureType.TASK_CANCELLED, "task f was cancelled"))
    events.dispatched(running, b"u" * 16, 13)
    rows = task_rows.merge([_reply(NODE_A, events, running=[(running.task_id, 0, b"u" * 16, 13)])])
    by = {(r["name"], r["attempt_number"]): r for r in rows}
    assert by[("raises", 0)]["state"] == "FAILED" and by[("raises", 0)]["error_type"] == "TASK_EXECUTION_EXCEPTION"
    assert by[("raises", 0)]["error_message"] == "ValueError: boom"
    assert by[("retried", 0)]["state"] == "FAILED" and by[("retried", 0)]["error_type"] == "WORKER_DIED"
    assert by[("retried", 1)]["state"] == "FINISHED" and by[("retried", 1)]["worker_pid"] == 12
    assert by[("f", 0)]["state"] == "FAILED" and by[("f", 0)]["error_type"] == "TASK_CANCELLED"
    assert by[("slow", 0)]["state"] == "RUNNING" and by[("slow", 0)]["worker_pid"] == 13


def test_direct_calls_carry_what_they_are():
    events = TaskEvents()
    event = node_state_pb2.TaskEvent(kind=node_state_pb2.TaskEvent.RAN, task_id=b"\x05" * 16, time=3.0, start_time=2.5,
                                     name="A.m", job_id=b"\x00\x00\x00\x02", actor_id=b"\x07" * 16)
    events.direct_calls([event], b"w" * 16, 77)
    (row,) = task_rows.merge([_reply(NODE_A, events)])
    assert row["type"] == "ACTOR_TASK" and row["name"] == "A.m" and row["actor_id"] == "07" * 16
    assert row["worker_pid"] == 77 and row["state"] == "FINISHED"
    assert (row["start_time_ms"], row["end_time_ms"]) == (2500, 3000)


ROWS = [
    {"task_id": "01", "name": "f", "func_or_class_name": "f", "state": "FINISHED", "type": "NORMAL_TASK", "worker_pid": 5},
    {"task_id": "02", "name": "f", "func_or_class_name": "f", "state": "FAILED", "type": "NORMAL_TASK", "worker_pid": 6},
    {"task_id": "03", "name": "A.m", "func_or_class_name": "A.m", "state": "FINISHED", "type": "ACTOR_TASK", "worker_pid": 5},
]
COLUMNS = ("task_id", "name", "state", "type", "worker_pid")


def test_filters_as_ray():
    assert state_query.parse_filter("state=FINISHED") == ("state", "=", "FINISHED")
    assert state_query.parse_filter("state != finished") == ("state", "!=", "finished")
    checked = state_query.check_filters([("state", "=", "finished")], COLUMNS, "tasks")  # case-insensitive
    assert [r["task_id"] for r in state_query.select(ROWS, checked, None)] == ["01", "03"]
    checked = state_query.check_filters([("state", "!=", "FINISHED"), ("worker_pid", "=", 6)], COLUMNS, "tasks")
    assert [r["task_id"] for r in state_query.select(ROWS, checked, None)] == ["02"]
    assert len(state_query.select(ROWS, [], 2)) == 2


@pytest.mark.parametrize("bad, message", [
    ([("colour", "=", "red")], "unknown filter key 'colour'"),
    ([("state", ">", "x")], "unknown predicate '>'"),
    ([("state", "=")], "a filter is"),
])
def test_bad_filters_say_what_is_wrong(bad, message):
    with pytest.raises(state_query.StateQueryError, match=message):
        state_query.check_filters(bad, COLUMNS, "tasks")


def test_bad_filter_text_and_limit():
    with pytest.raises(state_query.StateQueryError, match="KEY=VALUE"):
        state_query.parse_filter("state")
    with pytest.raises(state_query.StateQueryError, match="no key"):
        state_query.parse_filter("=x")
    with pytest.raises(state_query.StateQueryError, match="limit"):
        state_query.select(ROWS, [], -1)


def test_summaries_count_by_function_and_state():
    summary = state_query.summarize_tasks(ROWS)["cluster"]
    assert summary["summary"]["f"]["state_counts"] == {"FINISHED": 1, "FAILED": 1}
    assert summary["summary"]["A.m"]["type"] == "ACTOR_TASK"
    assert (summary["total_tasks"], summary["total_actor_tasks"]) == (2, 1)
    actors = state_query.summarize_actors([{"class_name": "A", "state": "ALIVE"}, {"class_name": "A", "state": "DEAD"}])
    assert actors["cluster"]["summary"]["A"]["state_counts"] == {"ALIVE": 1, "DEAD": 1}
    objects = state_query.summarize_objects([{"task_status": "FINISHED", "reference_type": "LOCAL_REFERENCE",
                                              "object_size": 2**20, "pid": 5, "ip": "127.0.0.1"}])
    assert objects["cluster"]["total_objects"] == 1 and objects["cluster"]["total_size_mb"] == 1.0


def test_chrome_trace_has_rows_per_worker_and_nested_tasks_inside_their_parent():
    def row(task_id, name, pid, start, end, parent="", node="aa"):
        return {"task_id": task_id, "attempt_number": 0, "name": name, "func_or_class_name": name, "state": "FINISHED",
                "type": "NORMAL_TASK", "node_id": node, "worker_pid": pid, "start_time_ms": start,
                "end_time_ms": end, "parent_task_id": parent, "actor_id": None, "job_id": "01", "error_type": None}

    rows = [row("01", "outer", 5, 1000, 1100), row("02", "inner", 6, 1010, 1090, parent="01", node="bb"),
            {**row("03", "pending", 0, None, None), "node_id": None}]
    events = chrome_trace.trace_events(rows, head_node_id="aa")
    json.dumps(events)  # (loadable as JSON)
    complete = {e["name"]: e for e in events if e["ph"] == "X"}
    assert set(complete) == {"outer", "inner"}  # what has not run has no event
    outer, inner = complete["outer"], complete["inner"]
    assert outer["ts"] <= inner["ts"] and inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"]
    assert inner["args"]["parent_task_id"] == outer["args"]["task_id"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert names == {(outer["pid"], 5): "worker pid 5", (inner["pid"], 6): "worker pid 6"}
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert processes[outer["pid"]] == "node aa (head)" and outer["pid"] != inner["pid"]


def test_log_names_stay_in_the_log_directory(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "raylet-0a0a0a0a.log").write_text("a\nb\nc\n")
    (tmp_path / "secret").write_text("no")
    (logs / "link").symlink_to(tmp_path / "secret")
    directory = log_files.LogDirectory(logs)
    assert directory.resolve("raylet-0a0a0a0a.log") == (logs / "raylet-0a0a0a0a.log").resolve()
    (logs / "loop").symlink_to(logs / "loop")
    for bad in ("../secret", "/etc/passwd", "..", "", "a/../../secret", "link", "x" * 5000, "loop"):
        with pytest.raises(InvalidArgument):
            directory.resolve(bad)
    with pytest.raises(NotFound):
        directory.resolve("nothing.log")
    assert [f.name for f in directory.files()] == ["raylet-0a0a0a0a.log"]  # (links are not listed)
    with pytest.raises(InvalidArgument, match="at most 255"):
        directory.resolve("x" * 5000)  # (was OSError, "File name too long": UNKNOWN to the caller)


def test_tails(tmp_path):
    path = tmp_path / "f.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    assert path.read_bytes()[log_files.tail_offset(path, 2):] == b"two\nthree\n"
    assert log_files.tail_offset(path, 10) == 0 and log_files.tail_offset(path, 0) == 0
    path.write_bytes(b"one\ntwo\nno newline")
    assert path.read_bytes()[log_files.tail_offset(path, 1):] == b"no newline"
    big = b"".join(b"line %d\n" % i for i in range(5000))
    path.write_bytes(big)
    assert path.read_bytes()[log_files.tail_offset(path, 3):] == b"line 4997\nline 4998\nline 4999\n"
    assert log_files.read_chunk(path, 5, 4) == big[5:9]


def test_which_files_are_a_nodes():
    workers = {"worker-0123456789ab.log"}
    assert log_files.is_node_file("raylet-0a0a0a0a.log", "0a0a0a0a", workers, is_head=False)
    assert not log_files.is_node_file("raylet-0b0b0b0b.log", "0a0a0a0a", workers, is_head=True)
    assert log_files.is_node_file("worker-0123456789ab.log", "0a0a0a0a", workers, is_head=False)
    assert not log_files.is_node_file("worker-ffffffffffff.log", "0a0a0a0a", workers, is_head=True)
    assert log_files.is_node_file("gcs.log", "0a0a0a0a", workers, is_head=True)
    assert not log_files.is_node_file("gcs.log", "0a0a0a0a", workers, is_head=False)


def test_overlapping_calls_on_one_worker_get_rows_of_their_own_and_children_an_arrow():
    def row(task_id, start, end, parent=""):
        return {"task_id": task_id, "attempt_number": 0, "name": task_id, "func_or_class_name": task_id,
                "state": "FINISHED", "type": "ACTOR_TASK", "node_id": "aa", "worker_pid": 7, "start_time_ms": start,
                "end_time_ms": end, "parent_task_id": parent, "actor_id": "ac", "job_id": "01", "error_type": None}

    # a and b overlap without nesting (concurrent calls); c nests in a; d comes after both.
    events = chrome_trace.trace_events([row("a", 1000, 1100), row("b", 1050, 1150), row("c", 1010, 1020, parent="a"),
                                        row("d", 1200, 1210)])
    x = {e["name"]: e for e in events if e["ph"] == "X"}
    assert x["a"]["tid"] == x["c"]["tid"] == x["d"]["tid"] == 7 and x["b"]["tid"] != 7
    rows = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert rows == {7: "worker pid 7", x["b"]["tid"]: "worker pid 7 (2)"}
    start, finish = [e for e in events if e["ph"] == "s"], [e for e in events if e["ph"] == "f"]
    assert len(start) == len(finish) == 1 and start[0]["id"] == finish[0]["id"]
    assert (start[0]["tid"], finish[0]["tid"], finish[0]["ts"]) == (x["a"]["tid"], x["c"]["tid"], x["c"]["ts"])
    assert x["a"]["ts"] <= start[0]["ts"] <= x["a"]["ts"] + x["a"]["dur"]


def test_the_node_manager_records_each_step_and_exports_the_drops():
    from ember.v1 import common_pb2

    from ember_common import ids
    from ember_raylet.client_session import DRIVER, WORKER, ClientSession
    from ember_raylet.metrics import RayletCollector
    from ember_raylet.node_manager import NodeManager
    from ember_raylet.worker_pool import WorkerPool
    from tests.unit.test_metrics_export import samples

    class Process:
        pid = 4242

        def poll(self):
            return None

    pool = WorkerPool(lambda wid: Process(), max_workers=1)
    nm = NodeManager(ids.new_unique_id(), {"CPU": 1}, pool, min_workers=1, pipeline_depth=1,
                     task_events=TaskEvents(capacity=4))
    nm.ensure_min_workers()
    (worker_id,) = pool.starting
    worker = ClientSession(ids.new_unique_id(), WORKER, worker_id=worker_id, pid=4242)
    nm.connect(worker)
    driver = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\1")
    nm.connect(driver)
    spec = _spec(1, "f", function_id=b"f" * 32, num_returns=1)
    spec.resources.amounts["CPU"] = 1
    nm.handle_batch(driver, raylet_pb2.ClientBatch(submit=[spec]))
    (execute,) = worker.take().execute
    ret = common_pb2.ObjectValue(object_id=ids.object_id_for(spec.task_id, 1), data=b"v")
    nm.handle_batch(worker, raylet_pb2.ClientBatch(results=[raylet_pb2.TaskResult(
        task_id=spec.task_id, returns=[ret], start_time=1.5)]))
    (row,) = task_rows.merge([_reply(nm.node_id, nm.task_events)])
    assert row["state"] == "FINISHED" and row["worker_pid"] == 4242 and row["start_time_ms"] == 1500
    assert [e["state"] for e in row["events"]] == ["PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING",
                                                   "FINISHED"]
    nm.handle_batch(driver, raylet_pb2.ClientBatch(submit=[_spec(2, "g", function_id=b"f" * 32)]))  # a 4th and 5th event: one dropped
    assert nm.task_events.dropped >= 1
    assert samples(RayletCollector(nm))[("ember_task_events_dropped_total", ())] == nm.task_events.dropped
