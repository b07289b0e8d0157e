"""ember.util.queue.Queue: an actor-backed FIFO shared by the driver, tasks
and actors, with Ray's blocking, timeouts and Empty / Full."""

import asyncio
import queue as std_queue
import time

import pytest

import ember
from ember.exceptions import ActorDiedError
from ember.util.queue import Empty, Full, Queue


@ember.remote
def produce(q, items):
    for item in items:
        q.put(item)
    return len(items)


@ember.remote
def consume(q, n):
    return [q.get(timeout=60) for _ in range(n)]


@ember.remote
class Consumer:
    def __init__(self, q):
        self.q = q

    def take(self, n):
        return self.q.get_nowait_batch(n)


def test_fifo_and_sizes(cluster):
    q = Queue(maxsize=3)
    assert q.empty() and not q.full() and len(q) == 0
    for item in ["a", {"b": 1}, [3]]:
        q.put(item)
    assert q.full() and q.qsize() == q.size() == len(q) == 3
    assert [q.get(), q.get(), q.get()] == ["a", {"b": 1}, [3]]
    assert q.empty()
    q.shutdown()


def test_exceptions_are_the_standard_ones():
    assert issubclass(Empty, std_queue.Empty) and issubclass(Full, std_queue.Full)


def test_timeouts_are_honoured(cluster):
    q = Queue(maxsize=1)
    start = time.monotonic()
    with pytest.raises(Empty, match="no item came in 0.2 s"):
        q.get(timeout=0.2)
    assert time.monotonic() - start >= 0.2
    q.put("x")
    start = time.monotonic()
    with pytest.raises(Full, match="stayed full for 0.2 s"):
        q.put("y", timeout=0.2)
    assert time.monotonic() - start >= 0.2
    assert q.get(timeout=0) == "x"  # an item already there is taken even with timeout 0
    q.put("z", timeout=0)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.put(1, timeout=-1)
    q.shutdown()


def test_nowait_and_batches(cluster):
    q = Queue(maxsize=2)
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(block=False)
    q.put_nowait(1)
    q.put(2, block=False)
    with pytest.raises(Full):
        q.put_nowait(3)
    assert q.get_nowait_batch(2) == [1, 2]
    with pytest.raises(Full, match="3 items do not fit"):
        q.put_nowait_batch([1, 2, 3])
    assert q.empty()  # all or nothing
    q.put_nowait_batch(iter([4, 5]))
    with pytest.raises(Empty, match="fewer than 3 items"):
        q.get_nowait_batch(3)
    assert q.qsize() == 2  # all or nothing
    with pytest.raises(TypeError, match="must be an int"):
        q.get_nowait_batch("2")
    with pytest.raises(ValueError, match="nonnegative"):
        q.get_nowait_batch(-1)
    with pytest.raises(TypeError, match="must be an Iterable"):
        q.put_nowait_batch(5)
    q.shutdown()


def test_producer_and_consumer_tasks_share_a_queue(cluster):
    q = Queue()
    consumed = consume.remote(q, 20)  # waits in get until the producer puts
    assert ember.get(produce.remote(q, list(range(20))), timeout=60) == 20
    assert ember.get(consumed, timeout=60) == list(range(20))
    q.shutdown()


def test_an_actor_holding_the_queue(cluster):
    q = Queue()
    consumer = Consumer.remote(q)
    q.put_nowait_batch(["a", "b", "c"])
    assert ember.get(consumer.take.remote(2), timeout=60) == ["a", "b"]
    assert q.get() == "c"
    q.shutdown()


def test_a_waiting_get_does_not_keep_others_from_putting(cluster):
    q = Queue()

    async def main():
        waiting = asyncio.ensure_future(q.get_async())
        await asyncio.sleep(0)  # its call is sent: it reaches the actor before the put below
        assert not waiting.done()
        await asyncio.wait_for(q.put_async("item"), 30)  # (a put stuck behind the get would time out here)
        return await asyncio.wait_for(waiting, 30)

    assert asyncio.run(main()) == "item"

    async def refused():
        with pytest.raises(Empty):
            await q.get_async(block=False)
        with pytest.raises(Empty, match="no item came in 0.1 s"):
            await q.get_async(timeout=0.1)

    asyncio.run(refused())
    q.shutdown()


def test_actor_options_and_shutdown(cluster):
    q = Queue(actor_options={"name": "test-queue", "num_cpus": 0})
    actor = ember.get_actor("test-queue")
    assert actor == q.actor
    waiting = consume.remote(q, 1)
    q.put(1)
    assert ember.get(waiting, timeout=60) == [1]
    waiting = consume.remote(q, 1)  # left waiting by the shutdown
    q.shutdown()
    with pytest.raises(ActorDiedError):
        ember.get(waiting, timeout=60)
    with pytest.raises(ActorDiedError):
        ember.get(actor.__ray_ready__.remote(), timeout=60)
    with pytest.raises(RuntimeError, match="shut down"):
        q.get()
    q.shutdown()  # again: nothing to do
    forced = Queue()
    forced.shutdown(force=True)
    assert forced.actor is None
