"""Generator tasks and actor methods, streaming and dynamic, as Ray 2.60
has them, on a real 2-CPU cluster."""

from __future__ import annotations

import asyncio
import pathlib
import time

import pytest
from ember.v1 import raylet_pb2

import ember
from ember import exceptions
from tests.helpers import wait_until


def objects_of(raylet, task_id: bytes) -> set[bytes]:
    listed = raylet.ListObjects(raylet_pb2.ListObjectsRequest(), timeout=10).objects
    return {o.object_id for o in listed if o.object_id[:16] == task_id}


@ember.remote
def count(n):
    for i in range(n):
        yield i * 10


@ember.remote
def gated(n, gate):
    """Yields one value, then waits for the file `gate` before the rest."""
    yield 0
    while not pathlib.Path(gate).exists():
        time.sleep(0.01)
    for i in range(1, n):
        yield i


@ember.remote
def fails_after(n):
    for i in range(n):
        yield i
    raise ValueError(f"failed after {n}")


@ember.remote
def forever(marker):
    i = 0
    while True:
        yield i
        i += 1
        if i == 3:
            pathlib.Path(marker).write_text("running")


@ember.remote(num_returns="dynamic")
def dynamic(n):
    for i in range(n):
        yield bytes(i)


@ember.remote
class Producer:
    def values(self, n):
        for i in range(n):
            yield i


@ember.remote
class AsyncProducer:
    async def values(self, n):
        for i in range(n):
            await asyncio.sleep(0.001)
            yield i

    async def consume(self, n):
        """Reads a generator task from inside an async actor."""
        return [await ref async for ref in count.remote(n)]


def test_a_generator_function_streams_by_default(cluster):
    gen = count.remote(5)
    assert isinstance(gen, ember.ObjectRefGenerator)
    assert [ember.get(ref) for ref in gen] == [0, 10, 20, 30, 40]
    assert gen.is_finished() and ember.get(gen.completed()) == 5
    with pytest.raises(StopIteration):
        next(gen)


def test_values_come_as_they_are_yielded(cluster, tmp_path):
    gate = tmp_path / "gate"
    gen = gated.remote(3, str(gate))
    assert ember.get(next(gen), timeout=30) == 0  # while the task still runs
    ready, not_ready = ember.wait([gen], timeout=0.2)
    assert ready == [] and not_ready == [gen]
    gate.write_text("go")
    ready, _ = ember.wait([gen], timeout=30)
    assert ready == [gen]
    assert [ember.get(ref) for ref in gen] == [1, 2]


def test_an_error_mid_stream_comes_after_the_values_before_it(cluster):
    gen = fails_after.remote(2)
    assert ember.get(next(gen)) == 0 and ember.get(next(gen)) == 1
    with pytest.raises(ValueError, match="failed after 2"):
        ember.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)


def test_cancelling_a_stream_ends_it_with_task_cancelled(cluster, tmp_path):
    marker = tmp_path / "marker"
    gen = forever.remote(str(marker))
    assert ember.get(next(gen), timeout=30) == 0
    wait_until(marker.exists, what="the generator to run")
    ember.cancel(gen)
    with pytest.raises(exceptions.TaskCancelledError):
        for ref in gen:
            ember.get(ref, timeout=30)


def test_next_sync_times_out(cluster, tmp_path):
    gen = gated.remote(2, str(tmp_path / "gate"))
    next(gen)
    with pytest.raises(exceptions.GetTimeoutError):
        gen._next_sync(timeout_s=0.1)
    (tmp_path / "gate").write_text("go")
    assert ember.get(gen._next_sync(timeout_s=30)) == 1


def test_await_a_stream_from_the_driver(cluster):
    async def read():
        return [await ref async for ref in count.remote(4)]

    assert asyncio.run(read()) == [0, 10, 20, 30]


def test_actor_generator_methods_stream(cluster):
    assert [ember.get(r) for r in Producer.remote().values.remote(3)] == [0, 1, 2]
    producer = AsyncProducer.remote()
    assert [ember.get(r) for r in producer.values.remote(4)] == [0, 1, 2, 3]
    assert ember.get(producer.consume.remote(3), timeout=60) == [0, 10, 20]


def test_dynamic_returns_one_ref_holding_the_values(cluster, raylet):
    ref = dynamic.remote(3)
    refs = ember.get(ref)
    assert isinstance(refs, ember.DynamicObjectRefGenerator) and len(refs) == 3
    assert [ember.get(r) for r in refs] == [b"", b"\0", b"\0\0"]
    task_id = ref.task_id()
    del ref, refs
    wait_until(lambda: not objects_of(raylet, task_id), what="the values to be freed")


def test_a_dropped_stream_releases_its_values(cluster, raylet, tmp_path):
    gen = count.remote(4)
    task_id = gen.task_id()
    ember.get(gen.completed())  # every value is in
    assert len(objects_of(raylet, task_id)) == 5  # four values and the end
    first = next(gen)
    del gen  # three values unread
    wait_until(lambda: objects_of(raylet, task_id) == {first.binary()}, what="the unread values to be freed")
    assert ember.get(first) == 0
