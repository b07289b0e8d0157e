"""A first-in, first-out queue shared by tasks and actors, as Ray's
`ray.util.queue`: the items live in an async actor (an asyncio.Queue), so a
consumer waiting for an item never keeps producers from putting one.

    q = Queue(maxsize=100)
    producer.remote(q)                # a Queue can be passed to tasks and actors
    item = q.get(timeout=5)           # Empty if nothing came in time

Where tracing is on (docs/tracing.md), an item carries its producer's trace
context, and the consumer's "queue get" span links to it: a hand-over, not
a parent.
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Iterable
from typing import Any

from ember._private import runtime, tracing
from ember._private.actor import ActorClass, ActorHandle, exit_actor, kill
from ember._private.remote_function import remote

__all__ = ["Empty", "Full", "Queue"]


class Empty(queue.Empty):
    """The queue had no item (now, or within the timeout)."""


class Full(queue.Full):
    """The queue had no room (now, or within the timeout)."""


class _QueueActor:
    """Where the items are. A refusal is an answer, not an exception, so the
    caller raises a plain Empty / Full rather than a remote task error."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item: Any, timeout: float | None = None) -> bool:
        # Room now is taken now: wait_for with timeout 0 would refuse it (Python < 3.12).
        if not self.queue.full():
            self.queue.put_nowait(item)
            return True
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def get(self, timeout: float | None = None) -> tuple[bool, Any]:
        if not self.queue.empty():
            return True, self.queue.get_nowait()
        try:
            return True, await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return False, None

    def put_nowait(self, item: Any) -> bool:
        if self.queue.full():
            return False
        self.queue.put_nowait(item)
        return True

    def put_nowait_batch(self, items: list[Any]) -> bool:
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            return False  # all or nothing
        for item in items:
            self.queue.put_nowait(item)
        return True

    def get_nowait(self) -> tuple[bool, Any]:
        if self.queue.empty():
            return False, None
        return True, self.queue.get_nowait()

    def get_nowait_batch(self, num_items: int) -> list[Any] | None:
        if num_items > self.queue.qsize():
            return None  # all or nothing
        return [self.queue.get_nowait() for _ in range(num_items)]

    def shutdown(self) -> None:
        exit_actor()


_actor_class: ActorClass | None = None


def _queue_actor_class() -> ActorClass:
    global _actor_class
    if _actor_class is None:
        # Not decorated at module level: the plain class stays importable by
        # name, so it is pickled by reference.
        _actor_class = remote(_QueueActor)
    return _actor_class


def _taken(item: Any, started_ns: int) -> Any:
    """An item as its producer put it (one that traces wraps it with its context)."""
    if type(item) is tracing.QueueItem:
        return tracing.received(item, started_ns)
    return item


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class Queue:
    """A FIFO queue on an actor. `maxsize` 0 means unbounded; `actor_options`
    go to the actor's `.options(...)` (say, `{"num_cpus": 1}`).

    With several producers on a full queue (or consumers on an empty one),
    which of them goes first is not defined."""

    def __init__(self, maxsize: int = 0, actor_options: dict[str, Any] | None = None) -> None:
        self.maxsize = maxsize
        self.actor: ActorHandle | None = _queue_actor_class().options(**(actor_options or {})).remote(maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """The number of items in the queue."""
        return runtime.get(self._actor().qsize.remote())

    def qsize(self) -> int:
        """The number of items in the queue."""
        return self.size()

    def empty(self) -> bool:
        return runtime.get(self._actor().empty.remote())

    def full(self) -> bool:
        return runtime.get(self._actor().full.remote())

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add `item`. On a full queue: with block, wait up to `timeout`
        seconds (None: for ever) for room, then Full; without, Full at once."""
        if not block:
            return self.put_nowait(item)
        _check_timeout(timeout)
        if tracing.enabled:
            item = tracing.spans.queue_item(item)
        if not runtime.get(self._actor().put.remote(item, timeout)):
            raise Full(f"the queue stayed full for {timeout} s")

    async def put_async(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """put, for async code: awaits instead of blocking the thread."""
        if tracing.enabled:
            item = tracing.spans.queue_item(item)
        if not block:
            if not await self._actor().put_nowait.remote(item):
                raise Full(f"the queue is full ({self.maxsize} items)")
            return
        _check_timeout(timeout)
        if not await self._actor().put.remote(item, timeout):
            raise Full(f"the queue stayed full for {timeout} s")

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The next item. On an empty queue: with block, wait up to `timeout`
        seconds (None: for ever) for one, then Empty; without, Empty at once."""
        if not block:
            return self.get_nowait()
        _check_timeout(timeout)
        started = time.time_ns()
        found, item = runtime.get(self._actor().get.remote(timeout))
        if not found:
            raise Empty(f"no item came in {timeout} s")
        return _taken(item, started)

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """get, for async code: awaits instead of blocking the thread."""
        started = time.time_ns()
        if not block:
            found, item = await self._actor().get_nowait.remote()
            if not found:
                raise Empty("the queue is empty")
            return _taken(item, started)
        _check_timeout(timeout)
        found, item = await self._actor().get.remote(timeout)
        if not found:
            raise Empty(f"no item came in {timeout} s")
        return _taken(item, started)

    def put_nowait(self, item: Any) -> None:
        """put(item, block=False)."""
        if tracing.enabled:
            item = tracing.spans.queue_item(item)
        if not runtime.get(self._actor().put_nowait.remote(item)):
            raise Full(f"the queue is full ({self.maxsize} items)")

    def put_nowait_batch(self, items: Iterable[Any]) -> None:
        """Add all of `items`, in order, or none of them (Full if they do not fit)."""
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        items = list(items)
        if tracing.enabled:
            items = [tracing.spans.queue_item(item) for item in items]
        if not runtime.get(self._actor().put_nowait_batch.remote(items)):
            raise Full(f"{len(items)} items do not fit in the queue (maxsize {self.maxsize})")

    def get_nowait(self) -> Any:
        """get(block=False)."""
        started = time.time_ns()
        found, item = runtime.get(self._actor().get_nowait.remote())
        if not found:
            raise Empty("the queue is empty")
        return _taken(item, started)

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        """The next `num_items` items, in order, or none of them (Empty if
        fewer are there)."""
        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        started = time.time_ns()
        items = runtime.get(self._actor().get_nowait_batch.remote(num_items))
        if items is None:
            raise Empty(f"the queue has fewer than {num_items} items")
        return [_taken(item, started) for item in items]

    def shutdown(self, force: bool = False, grace_period_s: float = 5) -> None:
        """End the queue's actor (its items are lost; waiting callers get
        ActorDiedError). Without force it is asked to exit and killed if it
        has not within grace_period_s."""
        actor, self.actor = self.actor, None
        if actor is None:
            return
        if not force:
            ready, _ = runtime.wait([actor.shutdown.remote()], timeout=grace_period_s)
            if ready:
                return
        kill(actor, no_restart=True)

    def _actor(self) -> ActorHandle:
        if self.actor is None:
            raise RuntimeError("the queue was shut down")
        return self.actor
