"""ObjectRefs in asyncio code: awaited, gathered, as futures; from the
driver and inside async actors. One watcher thread serves every future."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import ember


@ember.remote
def double(x, seconds=0.0):
    time.sleep(seconds)
    return x * 2


@ember.remote
def fail():
    raise ValueError("boom")


def test_await_gather_and_wait_from_the_driver(cluster):
    async def main():
        one = await double.remote(1)
        many = await asyncio.gather(*[double.remote(i, 0.05) for i in range(10)])
        done, pending = await asyncio.wait([asyncio.wrap_future(double.remote(3).future())])
        with pytest.raises(ValueError, match="boom"):
            await fail.remote()
        return one, many, [d.result() for d in done], pending

    one, many, done, pending = asyncio.run(main())
    assert one == 2 and many == [2 * i for i in range(10)] and done == [6] and not pending


def test_many_futures_share_one_thread(cluster):
    ember.get(double.remote(0))  # the client's own threads exist
    before = threading.active_count()
    futures = [double.remote(i, 0.2).future() for i in range(50)]
    assert threading.active_count() <= before + 1  # one watcher, not a thread per future
    assert [f.result(timeout=30) for f in futures] == [2 * i for i in range(50)]
    ready = ember.put("here")
    assert ready.future().result(timeout=5) == "here"  # ready already: resolved at once


def test_an_async_actor_awaits_refs(cluster):
    @ember.remote
    class Relay:
        async def go(self, x):
            return await double.remote(x, 0.1)

        async def both(self, x):
            return await asyncio.gather(double.remote(x), asyncio.wrap_future(double.remote(x + 1).future()))

    relay = Relay.remote()
    assert ember.get([relay.go.remote(i) for i in range(4)]) == [0, 2, 4, 6]
    assert ember.get(relay.both.remote(5)) == [10, 12]
    ember.kill(relay)


def test_an_async_init_runs_on_the_actors_loop(cluster):
    @ember.remote
    class Warm:
        async def __init__(self, x):
            self.loop = asyncio.get_running_loop()
            self.value = await double.remote(x)

        def get(self):
            return self.value

        async def same_loop(self):
            return asyncio.get_running_loop() is self.loop

    warm = Warm.remote(21)
    assert ember.get(warm.get.remote()) == 42
    assert ember.get(warm.same_loop.remote()) is True
    ember.kill(warm)
