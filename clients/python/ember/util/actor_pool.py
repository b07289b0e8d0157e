"""ActorPool: spread work over a fixed set of actors (Ray's
`ray.util.ActorPool`, same methods and semantics)."""

from __future__ import annotations

import collections
from typing import Any, Callable, Iterable, Iterator

from ember._private import runtime
from ember._private.actor import ActorHandle
from ember._private.object_ref import ObjectRef
from ember.exceptions import GetTimeoutError

Submit = Callable[[ActorHandle, Any], ObjectRef]


class ActorPool:
    """`fn(actor, value)` must call one method of `actor` and return its ref.

        pool = ActorPool([A.remote(), A.remote()])
        list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3]))  # [2, 4, 6]
    """

    def __init__(self, actors: Iterable[ActorHandle]) -> None:
        self._idle: list[ActorHandle] = list(actors)
        if not self._idle:
            raise ValueError("ActorPool needs at least one actor")
        self._future_to_actor: dict[ObjectRef, tuple[int, ActorHandle]] = {}
        self._index_to_future: dict[int, ObjectRef] = {}
        self._next_task_index = 0
        self._next_return_index = 0
        self._pending: collections.deque[tuple[Submit, Any]] = collections.deque()

    def map(self, fn: Submit, values: Iterable[Any]) -> Iterator[Any]:
        """Results in the order of `values`."""
        return self._results(fn, values, self.get_next)

    def map_unordered(self, fn: Submit, values: Iterable[Any]) -> Iterator[Any]:
        """Results as they finish."""
        return self._results(fn, values, self.get_next_unordered)

    def _results(self, fn: Submit, values: Iterable[Any], next_result: Callable[[], Any]) -> Iterator[Any]:
        self._drain_previous()
        for value in values:
            self.submit(fn, value)
        while self.has_next():
            yield next_result()

    def _drain_previous(self) -> None:
        # Ray's behaviour: results of earlier submits are discarded by map.
        while self.has_next():
            self.get_next_unordered()

    def submit(self, fn: Submit, value: Any) -> None:
        """Run `fn(actor, value)` on an idle actor, or queue it until one is."""
        if self._idle:
            actor = self._idle.pop()
            ref = fn(actor, value)
            self._future_to_actor[ref] = (self._next_task_index, actor)
            self._index_to_future[self._next_task_index] = ref
            self._next_task_index += 1
        else:
            self._pending.append((fn, value))

    def has_next(self) -> bool:
        return bool(self._future_to_actor)

    def has_free(self) -> bool:
        return bool(self._idle) and not self._pending

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The next result in submission order."""
        if not self.has_next():
            raise StopIteration("no more results to get")
        ref = self._index_to_future[self._next_return_index]
        ready, _ = runtime.wait([ref], num_returns=1, timeout=timeout)
        if not ready:
            if ignore_if_timedout:
                return None
            raise GetTimeoutError("timed out waiting for the next result")
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(ref)
        self._return_actor(actor)
        return runtime.get(ref)

    def get_next_unordered(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """Whichever result is ready first."""
        if not self.has_next():
            raise StopIteration("no more results to get")
        ready, _ = runtime.wait(list(self._future_to_actor), num_returns=1, timeout=timeout)
        if not ready:
            if ignore_if_timedout:
                return None
            raise GetTimeoutError("timed out waiting for a result")
        ref = ready[0]
        index, actor = self._future_to_actor.pop(ref)
        del self._index_to_future[index]
        # get_next goes on with the earliest result still out (or the next
        # one submitted: results finished out of order may leave none).
        self._next_return_index = min(self._index_to_future, default=self._next_task_index)
        self._return_actor(actor)
        return runtime.get(ref)

    def _return_actor(self, actor: ActorHandle) -> None:
        self._idle.append(actor)
        if self._pending:
            self.submit(*self._pending.popleft())

    def push(self, actor: ActorHandle) -> None:
        """Add an actor to the pool."""
        if actor in self._idle or any(actor == a for _, a in self._future_to_actor.values()):
            raise ValueError("actor already belongs to this pool")
        self._return_actor(actor)

    def pop_idle(self) -> ActorHandle | None:
        """Remove and return an idle actor, if any."""
        return self._idle.pop() if self.has_free() else None
