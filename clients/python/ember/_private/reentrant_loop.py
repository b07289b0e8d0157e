"""An async actor's event loop, which a blocking call inside one of its
calls can keep running.

A sync `ember.get` in an async actor's method would stop every other call of
the actor until it returns (Ray's behaviour: it warns and blocks the loop).
Instead, while the call waits, the waiting code runs the loop's other
callbacks itself, one loop iteration at a time (`run_once`): other calls
start, await and finish meanwhile. Waits nest like a stack: a call that
waits under another one's wait resumes only after that inner wait returns.

asyncio's own loop cannot be re-entered: its iteration pops a count of ready
callbacks that a nested iteration may have run already, and it refuses to
step a task while another one is current. This loop's ready queue hands out
a spent (cancelled) callback when it runs dry, and `run_once` takes the
waiting task out of "current" for the nested iteration.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from asyncio import tasks as _tasks


def _nothing() -> None:
    pass


class _ReadyQueue(collections.deque):  # type: ignore[type-arg]
    """asyncio's ready callbacks; never empty when popped."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._spent = asyncio.Handle(_nothing, (), loop)
        self._spent.cancel()  # (skipped by the loop)

    def popleft(self) -> asyncio.Handle:
        try:
            return super().popleft()
        except IndexError:  # run by a nested iteration already
            return self._spent


class ReentrantLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self._ready: collections.deque[asyncio.Handle] = _ReadyQueue(self)

    def can_run_once(self) -> bool:
        """Whether the caller is a task of this loop, on its thread, so that
        it may wait with `run_once` instead of blocking the loop."""
        return (self._thread_id == threading.get_ident()  # type: ignore[attr-defined]
                and _tasks.current_task(self) is not None)

    def run_once(self, timeout: float | None) -> None:
        """From inside a task of this loop: run one iteration of the loop's
        other callbacks, waiting up to `timeout` for one (None: until one
        comes; `wake` ends the wait from any thread). Raises CancelledError
        if the waiting task was cancelled meanwhile."""
        task = _tasks.current_task(self)
        assert task is not None
        timer = self.call_later(timeout, _nothing) if timeout is not None else None
        _tasks._leave_task(self, task)
        try:
            self._run_once()  # type: ignore[attr-defined]
        finally:
            _tasks._enter_task(self, task)
            if timer is not None:
                timer.cancel()
        if task.cancelling():  # task.cancel() came: the wait ends as an await would
            raise asyncio.CancelledError()

    def wake(self) -> None:
        """End a `run_once` wait (any thread)."""
        self.call_soon_threadsafe(_nothing)
