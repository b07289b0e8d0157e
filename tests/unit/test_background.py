"""The background-work helpers every service uses, without a service:
tracked tasks, runs shared per key, and retrying with backoff."""

import asyncio

import pytest

from ember_common.background import BackgroundTasks, SharedRuns
from ember_common.backoff import retry_with_backoff


def test_tracked_tasks_are_dropped_when_done_and_cancelled_at_close():
    async def run():
        tasks = BackgroundTasks()
        finished = asyncio.Event()

        async def quick():
            finished.set()

        tasks.spawn(quick())
        forever = tasks.spawn(asyncio.Event().wait())
        await finished.wait()
        while len(tasks) > 1:  # the done callback runs on the next turn of the loop
            await asyncio.sleep(0)
        assert len(tasks) == 1
        await tasks.close()
        return forever

    forever = asyncio.run(run())
    assert forever.cancelled()


def test_cancel_does_not_wait():
    async def run():
        tasks = BackgroundTasks()
        task = tasks.spawn(asyncio.Event().wait())
        await asyncio.sleep(0)  # let it start
        tasks.cancel()
        assert not task.done()  # cancelling, not yet cancelled
        await asyncio.gather(task, return_exceptions=True)
        return task

    assert asyncio.run(run()).cancelled()


def test_concurrent_callers_share_one_run_and_a_later_one_starts_anew():
    async def run():
        runs = SharedRuns()
        started = []
        release = asyncio.Event()

        async def work(n):
            started.append(n)
            await release.wait()
            return n

        first = asyncio.ensure_future(runs.join("k", lambda: work(1)))
        second = asyncio.ensure_future(runs.join("k", lambda: work(2)))
        await asyncio.sleep(0)
        assert "k" in runs
        release.set()
        results = await asyncio.gather(first, second)
        while "k" in runs:
            await asyncio.sleep(0)
        again = await runs.join("k", lambda: work(3))
        return started, results, again

    started, results, again = asyncio.run(run())
    assert started == [1, 3] and results == [1, 1] and again == 3


def test_a_cancelled_caller_leaves_the_run_to_the_others():
    async def run():
        runs = SharedRuns()
        release = asyncio.Event()

        async def work():
            await release.wait()
            return "done"

        leaving = asyncio.ensure_future(runs.join("k", work))
        staying = asyncio.ensure_future(runs.join("k", work))
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.gather(leaving, return_exceptions=True)
        release.set()
        return leaving.cancelled(), await staying

    assert asyncio.run(run()) == (True, "done")


class Flaky(Exception):
    pass


def _failing(times, result="ok", error=Flaky):
    calls = []

    async def attempt():
        calls.append(1)
        if len(calls) <= times:
            raise error(f"failure {len(calls)}")
        return result

    return attempt, calls


def test_retry_until_it_succeeds_with_doubling_delays():
    attempt, calls = _failing(4)
    delays = []
    result = asyncio.run(retry_with_backoff(attempt, Flaky, lambda e, d: delays.append(d),
                                            first_delay_s=0.001, max_delay_s=0.004))
    assert result == "ok" and len(calls) == 5
    assert delays == [0.001, 0.002, 0.004, 0.004]


def test_retry_gives_up_when_told_and_lets_other_errors_through():
    attempt, calls = _failing(3)
    with pytest.raises(Flaky, match="failure 2"):
        asyncio.run(retry_with_backoff(attempt, Flaky, lambda e, d: None,
                                       give_up=lambda e: "2" in str(e), first_delay_s=0.001))
    assert len(calls) == 2
    attempt, calls = _failing(1, error=KeyError)
    with pytest.raises(KeyError):
        asyncio.run(retry_with_backoff(attempt, Flaky, lambda e, d: None, first_delay_s=0.001))
    assert len(calls) == 1
