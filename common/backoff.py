"""Retrying a call that may fail for a while (a peer restarting, a GCS
failing over), waiting longer after each failure."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)


def _never(_error: BaseException) -> bool:
    return False


async def retry_with_backoff(
    attempt: Callable[[], Awaitable[T]],
    retry_on: type[E],
    on_failure: Callable[[E, float], None],
    *,
    give_up: Callable[[E], bool] = _never,
    first_delay_s: float = 0.1,
    max_delay_s: float = 5.0,
) -> T:
    """`attempt()`'s result once it succeeds. A `retry_on` error is told
    to `on_failure(error, delay)` and tried again after `delay`, which
    doubles up to `max_delay_s`; unless `give_up(error)`: then it is raised."""
    delay = first_delay_s
    while True:
        try:
            return await attempt()
        except retry_on as e:
            if give_up(e):
                raise
            on_failure(e, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)
