"""CoreClient on an in-memory transport: what it sends the raylet for the
SDK's calls, and what it makes of the raylet's answers (no sockets)."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import pytest

from ember.v1 import common_pb2, raylet_pb2

from ember._private.core_client import ConnectionLost, CoreClient
from ember._private.object_ref import ObjectRef
from ember_common import ids
from ember_common.config import Config

NODE = b"n" * 16
TASK = b"t" * 16


class FakeRaylet:
    """A transport whose other end is the test: batches the client sends
    are collected; `answer` sends one to the client."""

    pulls = False

    def __init__(self, register_reply: bool = True) -> None:
        self._incoming: queue.SimpleQueue[raylet_pb2.RayletBatch | None] = queue.SimpleQueue()
        self.sent: list[raylet_pb2.ClientBatch] = []
        self._cond = threading.Condition()
        self._register_reply = register_reply
        self.write_shut = False

    def open(self, register: raylet_pb2.ClientBatch,
             next_batch: Callable[[], raylet_pb2.ClientBatch | None]) -> Iterator[raylet_pb2.RayletBatch]:
        self.register = register
        if self._register_reply:
            self.answer(registered=raylet_pb2.ClientRegistered(node_id=NODE, gcs_address="gcs:1"))
        return iter(self._incoming.get, None)

    def send(self, batch: raylet_pb2.ClientBatch) -> None:
        with self._cond:
            self.sent.append(batch)
            self._cond.notify_all()
        if batch.kv_get:  # the function table answers at once
            self.answer(kv=[raylet_pb2.KvEntry(namespace=k.namespace, key=k.key, found=True, value=b"f")
                            for k in batch.kv_get])

    def shutdown_write(self) -> None:
        self.write_shut = True
        self._incoming.put(None)  # the raylet closes its end when ours ends

    def close(self) -> None:
        self._incoming.put(None)

    def answer(self, **fields) -> None:
        self._incoming.put(raylet_pb2.RayletBatch(**fields))

    def wait_sent(self, test: Callable[[raylet_pb2.ClientBatch], bool]) -> raylet_pb2.ClientBatch:
        """The first batch sent that passes `test` (waits up to 10 s)."""
        with self._cond:
            assert self._cond.wait_for(lambda: any(test(b) for b in self.sent), 10), self.sent
            return next(b for b in self.sent if test(b))


@pytest.fixture
def raylet():
    return FakeRaylet()


@pytest.fixture
def client(raylet):
    register = raylet_pb2.RegisterClient(kind=raylet_pb2.RegisterClient.DRIVER, pid=1)
    c = CoreClient("fake", None, register, Config(), transport=raylet)
    yield c
    c.close()


def test_connecting_registers_and_learns_the_node(raylet, client):
    assert raylet.register.register.pid == 1
    assert client.node_id == NODE and client.info.gcs_address == "gcs:1" and client.alive


def test_a_client_the_raylet_never_registers_fails_to_connect():
    raylet = FakeRaylet(register_reply=False)
    raylet.shutdown_write()  # the raylet hangs up at once
    with pytest.raises(ConnectionLost, match="could not connect"):
        CoreClient("fake", None, raylet_pb2.RegisterClient(), Config(), transport=raylet)


def test_a_submission_goes_out_at_once_and_its_return_is_pushed(raylet, client):
    client.submit(raylet_pb2.TaskSpec(task_id=TASK, num_returns=1))
    raylet.wait_sent(lambda b: len(b.submit) == 1)
    return_id = ids.object_id_for(TASK, 1)
    ref = ObjectRef(return_id, client)
    raylet.answer(ready=[common_pb2.ObjectValue(object_id=return_id, data=b"v")])
    assert client.wait_values([return_id], 1, timeout=10) == {return_id}
    assert not any(b.subscribe for b in raylet.sent)  # a submitter is told unasked
    assert client.get_value(return_id).data == b"v"
    del ref
    raylet.wait_sent(lambda b: return_id in b.remove_refs)  # the flusher carries a dropped ref
    assert return_id not in client.kept_objects()


def test_our_own_put_is_readable_without_a_round_trip(raylet, client):
    object_id = b"p" * 20
    client.put_value(common_pb2.ObjectValue(object_id=object_id, data=b"x"))
    ref = ObjectRef(object_id, client)  # (as ember.put makes it: after the put)
    assert client.wait_values([object_id], 1, timeout=0) == {object_id}
    batch = raylet.wait_sent(lambda b: len(b.puts) == 1)
    assert not batch.add_refs  # the raylet counts a putter as holding it
    del ref


def test_a_get_of_someone_elses_object_subscribes_once(raylet, client):
    object_id = b"o" * 20
    ref = ObjectRef(object_id, client)
    assert client.wait_values([object_id], 1, timeout=0.05) == set()
    assert client.wait_values([object_id], 1, timeout=0.05) == set()
    raylet.wait_sent(lambda b: list(b.subscribe) == [object_id])
    assert sum(len(b.subscribe) for b in raylet.sent) == 1
    del ref


def test_kv_reads_go_through_the_raylet(raylet, client):
    answers: list[tuple[bool, bytes]] = []
    readers = [threading.Thread(target=lambda: answers.append(client.kv_get("fn", b"k", timeout=10)))
               for _ in range(3)]
    for r in readers:
        r.start()
    for r in readers:
        r.join(10)
    assert answers == [(True, b"f")] * 3
    assert 1 <= sum(len(b.kv_get) for b in raylet.sent) <= 3  # readers at the same time share a request


def test_a_broken_stream_fails_waiting_gets(raylet, client):
    object_id = b"w" * 20
    ref = ObjectRef(object_id, client)
    raylet.close()  # the raylet went away
    with pytest.raises(ConnectionLost):
        client.wait_values([object_id], 1, timeout=10)
    assert not client.alive
    with pytest.raises(ConnectionLost):
        client.submit(raylet_pb2.TaskSpec(task_id=TASK))
    del ref


def test_closing_ends_our_stream(raylet):
    c = CoreClient("fake", None, raylet_pb2.RegisterClient(), Config(), transport=raylet)
    c.close()
    assert raylet.write_shut


def test_a_call_after_a_kill_goes_in_a_later_batch(raylet, client):
    actor = b"a" * 16
    client.kill_actor(actor, no_restart=True)
    client.submit_actor_call(raylet_pb2.TaskSpec(task_id=TASK, actor_id=actor, num_returns=1), None, direct=True)
    kill = raylet.wait_sent(lambda b: len(b.kill_actors) == 1)
    call = raylet.wait_sent(lambda b: [s.task_id for s in b.submit] == [TASK])
    assert raylet.sent.index(kill) < raylet.sent.index(call)


def test_task_output_is_printed_for_the_driver(raylet, client, capsys):
    raylet.answer(logs=[raylet_pb2.LogLines(task_name="f", pid=7, lines=["hi"])], warnings=["careful"])
    client.submit(raylet_pb2.TaskSpec(task_id=TASK, num_returns=1))  # something to wait on after the logs
    raylet.wait_sent(lambda b: len(b.submit) == 1)
    raylet.answer(ready=[common_pb2.ObjectValue(object_id=ids.object_id_for(TASK, 1))])
    ref = ObjectRef(ids.object_id_for(TASK, 1), client)
    client.wait_values([ref.binary()], 1, timeout=10)
    out = capsys.readouterr()
    assert "(f pid=7) hi\n" in out.out and "ember: warning: careful" in out.err


def test_task_output_to_a_closed_stdout_costs_the_lines_not_the_connection(raylet, client, monkeypatch):
    closed = open(__file__)
    closed.close()  # writes to it raise ValueError, as a torn-down capture's do
    monkeypatch.setattr("sys.stdout", closed)
    monkeypatch.setattr("sys.stderr", closed)
    raylet.answer(logs=[raylet_pb2.LogLines(task_name="f", pid=7, lines=["hi"])], warnings=["careful"])
    raylet.answer(ready=[common_pb2.ObjectValue(object_id=ids.object_id_for(TASK, 1))])
    ref = ObjectRef(ids.object_id_for(TASK, 1), client)
    client.wait_values([ref.binary()], 1, timeout=10)  # the reader lived on past the logs
    assert client.alive
