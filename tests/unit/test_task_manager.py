"""The task table's own decisions: one place decides whether a task may run again."""

from tests.unit.raylet_parts import State


def test_a_retry_is_spent_each_time_until_none_is_left():
    task = State().task(retries=2)
    assert task.take_retry() and task.retries_left == 1
    assert task.take_retry() and task.retries_left == 0
    assert not task.take_retry() and task.retries_left == 0


def test_negative_retries_never_run_out_and_a_cancelled_task_never_retries():
    endless = State().task(retries=-1)
    assert all(endless.take_retry() for _ in range(5))
    endless.cancelled = True
    assert not endless.take_retry()
    assert "cancelled" in endless.cancelled_failure().message
