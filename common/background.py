"""Work a service starts in the background: tasks kept until they end
(asyncio itself holds only a weak reference to a running task, so an
untracked one can vanish mid-way) and cancelled together at stop, and runs
keyed by what they work on, so that concurrent callers share one."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Coroutine, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class BackgroundTasks:
    """The tasks a service started and has not seen end."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def cancel(self) -> None:
        """Cancel every task, without waiting for them to end."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        """Cancel every task and wait until all have ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class SharedRuns(Generic[K, T]):
    """At most one run per key at a time; who asks while one runs shares it."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[T]] = {}

    def __contains__(self, key: K) -> bool:
        return key in self._running

    def start(self, key: K, run: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """The run in flight for `key`, or a new one of `run()`."""
        running = self._running.get(key)
        if running is None:
            running = self._running[key] = asyncio.ensure_future(run())
            running.add_done_callback(lambda _f: self._running.pop(key, None))
        return running

    async def join(self, key: K, run: Callable[[], Awaitable[T]]) -> T:
        """Wait for the run for `key` (started if none is in flight); a
        cancelled caller leaves it running for the others."""
        return await asyncio.shield(self.start(key, run))
