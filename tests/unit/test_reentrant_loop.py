"""ReentrantLoop: a task blocked in sync code keeps the loop's other tasks
running (the way a sync ember.get in an async actor waits)."""

from __future__ import annotations

import asyncio

import pytest

from ember._private.reentrant_loop import ReentrantLoop


def _wait_sync(loop: ReentrantLoop, done: list[str], what: str) -> None:
    """Sync code inside a task: waits for `what` by running the loop."""
    assert loop.can_run_once()
    while what not in done:
        loop.run_once(None)


def test_other_tasks_run_while_one_waits_in_sync_code():
    loop = ReentrantLoop()
    done: list[str] = []
    order: list[str] = []

    async def waiter():
        _wait_sync(loop, done, "setter")
        order.append("waiter")
        await asyncio.sleep(0)  # it is a task as before: it can still await
        return asyncio.current_task().get_name()

    async def setter():
        await asyncio.sleep(0.01)
        order.append("setter")
        done.append("setter")

    async def main():
        w = asyncio.create_task(waiter(), name="w")
        await asyncio.sleep(0)
        s = asyncio.create_task(setter())
        return await w, await s

    try:
        assert loop.run_until_complete(main()) == ("w", None)
    finally:
        loop.close()
    assert order == ["setter", "waiter"]


def test_waits_nest():
    loop = ReentrantLoop()
    done: list[str] = []

    async def outer():
        _wait_sync(loop, done, "outer")
        return "outer"

    async def inner():
        _wait_sync(loop, done, "inner")
        return "inner"

    async def release():
        for what in ("outer", "inner"):
            await asyncio.sleep(0.01)
            done.append(what)

    async def main():
        return await asyncio.gather(outer(), inner(), release())

    try:
        assert loop.run_until_complete(main()) == ["outer", "inner", None]
    finally:
        loop.close()


def test_a_cancel_ends_the_wait():
    loop = ReentrantLoop()

    async def blocked():
        _wait_sync(loop, [], "never")

    async def main():
        task = asyncio.create_task(blocked())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_not_a_task_of_the_loop():
    loop = ReentrantLoop()
    try:
        assert not loop.can_run_once()  # not running
        assert not loop.run_until_complete(asyncio.to_thread(loop.can_run_once))  # another thread
    finally:
        loop.close()
