"""The dashboard's waterfall rows and critical path (ember_dashboard.waterfall)."""

from ember_dashboard import waterfall


def row(task_id, start, end, *, parent="", job="01", pid=1, attempt=0, created=None, state="FINISHED", node="n1"):
    return {"task_id": task_id, "attempt_number": attempt, "name": task_id, "state": state, "job_id": job,
            "type": "NORMAL_TASK", "actor_id": None, "parent_task_id": parent, "node_id": node, "worker_id": "w",
            "worker_pid": pid, "error_type": None, "creation_time_ms": created if created is not None else start,
            "start_time_ms": start, "end_time_ms": end, "events": []}


def test_a_chain_run_one_after_another_is_the_path_and_a_short_side_task_is_not():
    rows = [row("a", 0, 100), row("b", 110, 200), row("side", 5, 50, pid=2), row("c", 210, 400)]
    assert waterfall.critical_path(rows) == ["a:0", "b:0", "c:0"]


def test_the_path_goes_into_a_parents_latest_child_and_on_before_it():
    # p runs 0..1000 and waits for its children: k1 (ends 300), then k2 (400..900) after k1.
    rows = [row("p", 0, 1000), row("k1", 50, 300, parent="p", pid=2), row("short", 60, 80, parent="p", pid=3),
            row("k2", 400, 900, parent="p", pid=2, created=100)]
    assert waterfall.critical_path(rows) == ["k1:0", "k2:0", "p:0"]


def test_other_jobs_tasks_are_not_on_a_jobs_path():
    rows = [row("a", 0, 100, job="01"), row("other", 0, 150, job="02", pid=2), row("b", 160, 300, job="01")]
    assert waterfall.critical_path(rows) == ["a:0", "b:0"]


def test_running_and_unstarted_attempts_are_drawn_or_left_out_but_never_on_the_path():
    rows = [row("a", 0, 100), row("running", 120, None, state="RUNNING"),
            row("queued", None, None, state="PENDING_NODE_ASSIGNMENT", pid=None)]
    runs = waterfall.recent_runs(rows, 10)
    assert [r["task_id"] for r in runs] == ["a", "running"]
    assert waterfall.critical_path(runs) == ["a:0"]
    assert "events" not in runs[0]  # only what the page draws


def test_retries_are_their_own_rows_and_limit_keeps_the_latest():
    rows = [row("t", 0, 50, attempt=0, state="FAILED"), row("t", 60, 120, attempt=1), row("u", 130, 140)]
    assert waterfall.critical_path(rows) == ["t:0", "t:1", "u:0"]
    assert [(r["task_id"], r["attempt_number"]) for r in waterfall.recent_runs(rows, 2)] == [("t", 1), ("u", 0)]
    assert waterfall.recent_runs(rows, 0) == [] and waterfall.critical_path([]) == []


def test_a_long_trace_is_walked_in_one_pass_each_step():
    rows = [row(f"t{i}", i * 10, i * 10 + 9, pid=i % 4) for i in range(3000)]
    path = waterfall.critical_path(rows)
    assert path[0] == "t0:0" and path[-1] == "t2999:0" and len(path) == 3000
