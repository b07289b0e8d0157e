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


@ember.remote
class Gate:
    """Calls wait until open() (an async actor: open() is served meanwhile)."""

    def __init__(self):
        self.event = asyncio.Event()

    async def wait(self, value="open"):
        await self.event.wait()
        return value

    def open(self):
        self.event.set()


@ember.remote
class Waiter:
    async def get_blocking(self, refs):
        task_id = ember.get_runtime_context().get_task_id()
        value = ember.get(refs[0])  # a sync get inside a coroutine
        assert ember.get_runtime_context().get_task_id() == task_id  # its own context, after others ran
        return value

    def get_blocking_sync_method(self, refs):
        return ember.get(refs[0])

    async def ping(self):
        await asyncio.sleep(0)
        return ember.get_runtime_context().get_task_id()


def test_a_sync_get_in_an_async_actor_does_not_block_its_other_calls(cluster):
    gate, waiter = Gate.remote(), Waiter.remote()
    first = waiter.get_blocking.remote([gate.wait.remote("a")])
    second = waiter.get_blocking_sync_method.remote([gate.wait.remote("b")])
    # Both wait inside the actor, and its other calls still run (each in its own context).
    pings = [waiter.ping.remote() for _ in range(5)]
    assert len(set(ember.get(pings, timeout=30))) == 5
    assert ember.wait([first, second], num_returns=2, timeout=0)[0] == []
    gate.open.remote()
    assert ember.get([first, second], timeout=30) == ["a", "b"]
    ember.kill(gate)
    ember.kill(waiter)


def test_a_call_blocked_in_a_sync_get_can_be_cancelled(cluster):
    gate, waiter = Gate.remote(), Waiter.remote()
    blocked = waiter.get_blocking.remote([gate.wait.remote()])
    assert ember.get(waiter.ping.remote(), timeout=30)  # it waits now
    ember.cancel(blocked)
    with pytest.raises(ember.exceptions.TaskCancelledError):
        ember.get(blocked, timeout=30)
    assert ember.get(waiter.ping.remote(), timeout=30)  # the actor goes on serving
    ember.kill(gate)
    ember.kill(waiter)
