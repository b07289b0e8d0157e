"""Generator tasks and actor methods, as Ray has them.

`num_returns="streaming"` (the default for a generator function or method):
`.remote()` returns an ObjectRefGenerator at once, and each value the
generator yields becomes ready as it is yielded (return 2, 3, ... of the
task). `num_returns="dynamic"`: the generator runs to its end, and the
task's one return is a DynamicObjectRefGenerator holding a ref per value.
Either way the task's one return (index 1) is its end: for a stream, the
number of values, or the error that ended it, which the generator hands out
as its last ref (so `ember.get` of it raises, as Ray does).
"""

from __future__ import annotations

import inspect
from typing import Any, Iterator

from ember.v1 import raylet_pb2

from ember import exceptions
from ember._private.object_ref import ObjectRef
from ember_common import ids

KINDS = {"dynamic": raylet_pb2.TaskSpec.DYNAMIC, "streaming": raylet_pb2.TaskSpec.STREAMING}


def is_generator(fn: Any) -> bool:
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)


def check_num_returns(value: Any) -> None:
    if value in KINDS:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f'num_returns must be a non-negative int, "dynamic" or "streaming", got {value!r}')


def spec_returns(num_returns: int | str) -> tuple[int, raylet_pb2.TaskSpec.Generator.ValueType]:
    """(TaskSpec.num_returns, TaskSpec.generator) for a num_returns option."""
    if isinstance(num_returns, str):
        return 1, KINDS[num_returns]
    return num_returns, raylet_pb2.TaskSpec.NOT_GENERATOR


def value_id(task_id: bytes, n: int) -> bytes:
    """The id of the n-th (0-based) value a generator task yields."""
    return ids.object_id_for(task_id, n + 2)


class ObjectRefGenerator:
    """The refs a streaming generator task yields, in order, each as soon
    as it is ready: `for ref in gen`, `next(gen)`, `async for ref in gen`,
    `await gen.__anext__()`; `ember.wait([gen])` is ready when the next ref
    is; `ember.cancel(gen)` stops the task."""

    def __init__(self, task_id: bytes, end: ObjectRef, client: Any) -> None:
        self._task_id = task_id
        self._end = end  # the task's one return: the count, or its error
        self._client = client
        self._next = 0  # values handed out so far
        self._count: int | None = None  # known once the end is here
        self._finished = False

    def __iter__(self) -> "ObjectRefGenerator":
        return self

    def __next__(self) -> ObjectRef:
        return self._next_sync(None)

    def _next_sync(self, timeout_s: float | None = None) -> ObjectRef:
        """The next ref; StopIteration at the end; GetTimeoutError if none
        is ready within `timeout_s`."""
        if self._finished:
            raise StopIteration
        item = value_id(self._task_id, self._next)
        while True:
            ready = self._client.wait_stream(item, self._end.binary(), timeout_s)
            if item in ready:
                self._next += 1
                return ObjectRef(item, self._client)
            if not ready:
                raise exceptions.GetTimeoutError(f"no value of the stream was ready within {timeout_s} s")
            if self._count is None:
                from ember._private import runtime

                try:
                    self._count = runtime.get(self._end)
                except Exception:  # the error that ended it: handed out as the last ref
                    self._close(finished=True)
                    return self._end
            if self._next >= self._count:
                self._close(finished=True)
                raise StopIteration
            # (its end came before a value it counts: that value is on its way)

    def __aiter__(self) -> "ObjectRefGenerator":
        return self

    async def __anext__(self) -> ObjectRef:
        import asyncio

        def step() -> ObjectRef | None:
            try:
                return self._next_sync(None)
            except StopIteration:
                return None

        ref = await asyncio.get_running_loop().run_in_executor(None, step)
        if ref is None:
            raise StopAsyncIteration
        return ref

    def next_ready(self) -> bool:
        """Whether next() would return at once."""
        if self._finished:
            return True
        return bool(self._client.wait_stream(value_id(self._task_id, self._next), self._end.binary(), 0))

    def is_finished(self) -> bool:
        return self._finished

    def completed(self) -> ObjectRef:
        """A ref ready when the task has ended (its value: how many it yielded)."""
        return self._end

    def task_id(self) -> bytes:
        return self._task_id

    def _wait_ids(self) -> list[bytes]:
        """The ids whose readiness makes next() return (for ember.wait)."""
        return [value_id(self._task_id, self._next), self._end.binary()]

    def _close(self, finished: bool) -> None:
        if not self._finished:
            self._finished = True
            self._client.close_stream(self._task_id, self._next + 2, finished)

    def __del__(self) -> None:
        try:
            self._close(finished=False)
        except Exception:  # interpreter shutdown
            pass

    def __reduce__(self) -> Any:
        raise TypeError("an ObjectRefGenerator cannot be passed to other tasks; pass the refs it yields")

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._task_id.hex()})"


class DynamicObjectRefGenerator:
    """What a num_returns="dynamic" task returns: a ref per value it
    yielded, in order (iterate it, or len())."""

    def __init__(self, refs: list[ObjectRef]) -> None:
        self._refs = refs

    def __iter__(self) -> Iterator[ObjectRef]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"DynamicObjectRefGenerator({len(self._refs)} refs)"
