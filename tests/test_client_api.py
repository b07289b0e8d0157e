"""The client API (proto/ember/v1/client_api.proto) as any gRPC client uses
it: the generated stubs called directly, values as MessagePack documents,
against a real cluster. Interop with a Python driver of the same cluster,
and bad input: each refused with a status that says what to fix, the
service serving on."""

from __future__ import annotations

import os
import pathlib
import queue
import threading

import grpc
import msgpack
import pyarrow as pa
import pytest

import ember
from ember._private.object_ref import _rebuild_ref
from ember.v1 import client_api_pb2 as api
from ember.v1 import client_api_pb2_grpc, client_calls_pb2, client_calls_pb2_grpc
from ember_common import rpc
from tests.helpers import wait_until

CODE = str(pathlib.Path(__file__).parent / "polyglot_code")
MAX_VALUE = 4 << 20
MAX_ARGS = 64 << 10


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _ext(code: int, data: bytes):
    if code == 2:
        return pa.ipc.open_stream(data).read_all()
    return ("ref", data)


def pack(value) -> bytes:
    def default(v):
        if isinstance(v, pa.Table):
            return msgpack.ExtType(2, _ipc(v))
        if isinstance(v, Ref):
            return msgpack.ExtType(1, v.id)
        raise TypeError(type(v))

    return msgpack.packb(value, use_bin_type=True, default=default)


class Ref:
    def __init__(self, object_id: bytes) -> None:
        self.id = object_id


class RemoteError(Exception):
    def __init__(self, error: api.Error) -> None:
        super().__init__(f"{error.type}: {error.message}")
        self.error = error


class Client:
    """What a client in another language does, written with the bare stubs."""

    def __init__(self, address: str, token: str, **connect) -> None:
        self.channel = rpc.channel(address, token)
        self.stub = client_api_pb2_grpc.ClientApiStub(self.channel)
        self.events = self.stub.Connect(api.ConnectRequest(language="test", pid=os.getpid(), **connect))
        self.connected = next(self.events).connected
        self.sid = self.connected.session_id

    def submit(self, *calls: api.Call) -> list[list[bytes]]:
        return [list(r.object_ids) for r in self.stub.Submit(api.SubmitRequest(session_id=self.sid, calls=calls)).refs]

    def task(self, fn: str, *args, **options) -> list[bytes]:
        return self.submit(api.Call(function=fn, args=pack(list(args)), options=api.TaskOptions(**options)))[0]

    def method(self, actor: api.ActorRef, name: str, *args, **kwargs) -> bytes:
        call = api.Call(method=api.ActorMethod(actor_id=actor.actor_id, method=name), args=pack(list(args)),
                        kwargs=pack(kwargs) if kwargs else b"")
        return self.submit(call)[0][0]

    def get_raw(self, refs: list[bytes], timeout: float | None = 60) -> list[list[api.GetReply]]:
        out: list[list[api.GetReply]] = [[] for _ in refs]
        for reply in self.stub.Get(api.GetRequest(session_id=self.sid, object_ids=refs, timeout_s=timeout)):
            out[reply.index].append(reply)
        return out

    def get(self, refs: list[bytes], timeout: float | None = 60) -> list:
        values = []
        for replies in self.get_raw(refs, timeout):
            assert replies[-1].last
            if replies[0].HasField("error"):
                values.append(RemoteError(replies[0].error))
            else:
                values.append(msgpack.unpackb(b"".join(r.data for r in replies), ext_hook=_ext))
        return values

    def get1(self, ref: bytes):
        value = self.get([ref])[0]
        if isinstance(value, RemoteError):
            raise value
        return value

    def call(self, fn: str, *args, **options):
        return self.get1(self.task(fn, *args, **options)[0])

    def put(self, value=None, document: bytes | None = None, piece: int = 1 << 20) -> bytes:
        data = pack(value) if document is None else document
        pieces = [data[i:i + piece] for i in range(0, len(data), piece)] or [b""]
        requests = [api.PutRequest(session_id=self.sid if i == 0 else b"", data=p) for i, p in enumerate(pieces)]
        return self.stub.Put(iter(requests)).object_id

    def create_actor(self, cls: str, *args, **options) -> api.ActorRef:
        reply = self.stub.CreateActor(api.CreateActorRequest(session_id=self.sid, class_name=cls, args=pack(list(args)),
                                                             options=api.ActorOptions(**options)))
        return reply.actor

    def close(self) -> None:
        self.events.cancel()
        self.channel.close()


@pytest.fixture(scope="module")
def cluster():
    saved = {k: os.environ.get(k) for k in ("EMBER_CLIENT_API_MAX_VALUE_BYTES", "EMBER_CLIENT_API_MAX_ARGS_BYTES")}
    os.environ["EMBER_CLIENT_API_MAX_VALUE_BYTES"] = str(MAX_VALUE)
    os.environ["EMBER_CLIENT_API_MAX_ARGS_BYTES"] = str(MAX_ARGS)
    try:
        info = ember.init(num_cpus=2)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    token = (pathlib.Path(info["session_dir"]) / "token").read_text().strip()
    node = ember.nodes()[0]
    yield {"address": f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}", "token": token, **info}
    ember.shutdown()


@pytest.fixture
def client(cluster):
    c = Client(cluster["address"], cluster["token"], code_search_path=[CODE])
    yield c
    c.close()


def _status(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


# ---- calls by name ---------------------------------------------------------------


def test_a_function_called_by_name_gets_natural_python_values(client):
    assert client.call("polyglot_fns:add", 2, 3) == 5
    got = client.call("polyglot_fns:echo", b"\x00raw", {"k": [1, 2.5, None, True]}, "text", -(2**63))
    assert got["types"] == ["bytes", "dict", "str", "int"]
    assert got["args"] == [b"\x00raw", {"k": [1, 2.5, None, True]}, "text", -(2**63)]
    refs = client.submit(api.Call(function="polyglot_fns:echo", args=pack([1]), kwargs=pack({"flag": True})))[0]
    assert client.get1(refs[0])["kwargs"] == {"flag": True}


def test_run_submits_and_streams_the_results_in_one_round_trip(client):
    calls = [api.Call(function="polyglot_fns:pair", args=pack([3]), options=api.TaskOptions(num_returns=2)),
             api.Call(function="polyglot_fns:fail", args=pack(["no"]))]
    replies: dict[int, list] = {}
    for reply in client.stub.Run(api.RunRequest(session_id=client.sid, calls=calls, timeout_s=30)):
        replies.setdefault(reply.index, []).append(reply)
    assert [msgpack.unpackb(b"".join(r.data for r in replies[i])) for i in (0, 1)] == [3, -3]
    assert replies[2][0].error.type == "ValueError"
    err = _status(lambda: list(client.stub.Run(api.RunRequest(session_id=client.sid, calls=[api.Call(function="x")]))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "call 0" in err.details()
    slow = api.Call(function="polyglot_fns:sleep_then", args=pack([1, "late"]))
    err = _status(lambda: list(client.stub.Run(api.RunRequest(session_id=client.sid, calls=[slow], timeout_s=0.05))))
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_run_with_release_leaves_nothing_held(client):
    """A caller that waits for the values asks the raylet to let the returns
    go: no Release after, and the refs are no longer the session's."""
    task_id = bytes(15) + b"\x02"
    call = api.Call(function="polyglot_fns:pair", args=pack([5]), options=api.TaskOptions(num_returns=2),
                    task_id=task_id)
    values = [msgpack.unpackb(r.data) for r in client.stub.Run(api.RunRequest(session_id=client.sid, calls=[call],
                                                                              release=True, timeout_s=30))]
    assert values == [5, -5]
    returns = [task_id + i.to_bytes(4, "big") for i in (1, 2)]
    err = _status(lambda: client.get(returns))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "not held by this session" in err.details()
    # Also when the Run fails: a timed-out one lets its return go too.
    slow_id = bytes(15) + b"\x04"
    slow = api.Call(function="polyglot_fns:sleep_then", args=pack([1, "late"]), task_id=slow_id)
    err = _status(lambda: list(client.stub.Run(api.RunRequest(session_id=client.sid, calls=[slow], timeout_s=0.05,
                                                              release=True))))
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    err = _status(lambda: client.get([slow_id + (1).to_bytes(4, "big")]))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # Without release the session holds them, as after Submit.
    kept_id = bytes(15) + b"\x06"
    kept = api.Call(function="polyglot_fns:add", args=pack([1, 2]), task_id=kept_id)
    assert [msgpack.unpackb(r.data) for r in client.stub.Run(api.RunRequest(session_id=client.sid, calls=[kept]))] == [3]
    assert client.get([kept_id + (1).to_bytes(4, "big")]) == [3]


def test_runs_on_one_stream_are_tagged_concurrent_and_fail_alone(client):
    """ClientCalls.Runs: each tagged Run answered as Run would be, with its
    end status; a slow Run does not hold up a fast one; a refused or timed
    out Run fails only itself and the stream goes on."""
    def run(tag: int, fn: str, *args, timeout: float | None = 30, **options) -> client_calls_pb2.TaggedRun:
        return client_calls_pb2.TaggedRun(tag=tag, run=api.RunRequest(
            session_id=client.sid, timeout_s=timeout, release=True,
            calls=[api.Call(function=fn, args=pack(list(args)), options=api.TaskOptions(**options))]))

    # (the sleepers take no CPU, so they hold none of the 2 from the calls after them)
    requests = [run(1, "polyglot_fns:sleep_then", 1, "slow", num_cpus=0), run(2, "polyglot_fns:pair", 4, num_returns=2),
                run(3, "not a name"), run(4, "polyglot_fns:fail", "raised"),
                run(5, "polyglot_fns:sleep_then", 1, "late", timeout=0.2, num_cpus=0),
                client_calls_pb2.TaggedRun(tag=6, run=api.RunRequest(session_id=b"x" * 16)),
                run(7, "polyglot_fns:add", 20, 22)]
    stub = client_calls_pb2_grpc.ClientCallsStub(client.channel)
    replies = list(stub.Runs(iter(requests), timeout=60))
    by_tag: dict[int, list] = {}
    for r in replies:
        by_tag.setdefault(r.tag, []).append(r)
    assert all(rs[-1].done and not any(r.done for r in rs[:-1]) for rs in by_tag.values())
    assert [msgpack.unpackb(r.reply.data) for r in by_tag[2][:-1]] == [4, -4] and by_tag[2][-1].code == 0
    assert by_tag[3][-1].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "is not an importable name" in by_tag[3][-1].message
    assert by_tag[4][0].reply.error.type == "ValueError" and by_tag[4][-1].code == 0
    assert by_tag[5][-1].code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert by_tag[6][-1].code == grpc.StatusCode.NOT_FOUND.value[0] and "no open session" in by_tag[6][-1].message
    assert msgpack.unpackb(by_tag[7][0].reply.data) == 42
    order = [r.tag for r in replies if r.done]
    assert order.index(7) < order.index(1)  # (the fast call did not wait for the slow one)
    assert msgpack.unpackb(by_tag[1][0].reply.data) == "slow"
    assert client.call("polyglot_fns:add", 1, 1) == 2  # the session goes on


def _runs(client: Client, requests: list) -> dict[int, list[client_calls_pb2.TaggedReply]]:
    """Send the tagged requests on one Runs stream, all at once: the replies by tag."""
    by_tag: dict[int, list] = {}
    for r in client_calls_pb2_grpc.ClientCallsStub(client.channel).Runs(iter(requests), timeout=60):
        by_tag.setdefault(r.tag, []).append(r)
    assert all(rs[-1].done and not any(r.done for r in rs[:-1]) for rs in by_tag.values())
    return by_tag


def test_runs_stream_submits_in_order_and_gets_values_as_they_are_ready(client):
    """A Submit on the Runs stream is done before what the stream carries
    next (a Get sent at once finds its refs held); a Get streams values as
    they become ready, the fast one before the slow one asked first; bad
    input fails only its own request."""
    slow_id, fast_id = bytes(15) + b"\x08", bytes(15) + b"\x0a"
    slow_ret, fast_ret = slow_id + (1).to_bytes(4, "big"), fast_id + (1).to_bytes(4, "big")
    calls = [api.Call(function="polyglot_fns:sleep_then", args=pack([1, "slow"]), task_id=slow_id,
                      options=api.TaskOptions(num_cpus=0)),
             api.Call(function="polyglot_fns:add", args=pack([1, 2]), task_id=fast_id)]

    def tagged(tag: int, **request) -> client_calls_pb2.TaggedRun:
        return client_calls_pb2.TaggedRun(tag=tag, **request)

    by_tag = _runs(client, [
        tagged(1, submit=api.SubmitRequest(session_id=client.sid, calls=calls)),
        tagged(2, get=api.GetRequest(session_id=client.sid, object_ids=[slow_ret, fast_ret, fast_ret], timeout_s=30)),
        tagged(3, submit=api.SubmitRequest(session_id=client.sid, calls=[api.Call(function="not a name")])),
        tagged(4, get=api.GetRequest(session_id=client.sid, object_ids=[bytes(20)])),
        tagged(5, submit=api.SubmitRequest(session_id=b"x" * 16, calls=calls)),
        tagged(6, get=api.GetRequest(session_id=client.sid, object_ids=[slow_ret], timeout_s=0.2)),
        tagged(7, get=api.GetRequest(session_id=client.sid, object_ids=[slow_ret], timeout_s=-1)),
    ])
    assert by_tag[1][-1].code == 0 and [list(r.object_ids) for r in by_tag[1][-1].submitted.refs] == [[slow_ret],
                                                                                                        [fast_ret]]
    got = by_tag[2]
    assert got[-1].code == 0
    assert {r.index for r in got[0].replies} == {1, 2}  # (the fast value first, not held up by the slow one)
    values = {r.index: msgpack.unpackb(r.data) for m in got[:-1] for r in m.replies}
    assert values == {0: "slow", 1: 3, 2: 3} and all(r.last for m in got[:-1] for r in m.replies)
    assert by_tag[3][-1].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "is not an importable name" in by_tag[3][-1].message
    assert by_tag[4][-1].code == grpc.StatusCode.NOT_FOUND.value[0] and "is not held" in by_tag[4][-1].message
    assert by_tag[5][-1].code == grpc.StatusCode.NOT_FOUND.value[0] and "no open session" in by_tag[5][-1].message
    assert by_tag[6][-1].code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert "1 of 1 objects were not ready" in by_tag[6][-1].message
    assert by_tag[7][-1].code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "timeout_s" in by_tag[7][-1].message
    assert client.get([slow_ret, fast_ret]) == ["slow", 3]  # the session holds the returns, as after Submit


def test_runs_stream_get_packs_small_values_and_pieces_big_ones(client):
    """Ready small values share a message; a value over chunk_bytes comes in
    pieces of at most chunk_bytes, in order."""
    refs = [client.task("polyglot_fns:add", i, 1)[0] for i in range(40)]
    assert client.get(refs) == [i + 1 for i in range(40)]  # (all ready now)
    big = os.urandom(int(2.5 * (1 << 20)))
    big_ref = client.put(big)
    by_tag = _runs(client, [
        client_calls_pb2.TaggedRun(tag=1, get=api.GetRequest(session_id=client.sid, object_ids=refs)),
        client_calls_pb2.TaggedRun(tag=2, get=api.GetRequest(session_id=client.sid, object_ids=[big_ref]))])
    assert len(by_tag[1]) == 2 and by_tag[1][-1].code == 0  # one message with the 40 values, then done
    assert [msgpack.unpackb(r.data) for r in by_tag[1][0].replies] == [i + 1 for i in range(40)]
    pieces = [r for m in by_tag[2][:-1] for r in m.replies]
    assert len(pieces) == len(by_tag[2]) - 1 >= 3  # (one piece a message)
    assert all(len(p.data) <= client.connected.chunk_bytes for p in pieces)
    assert [p.last for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert msgpack.unpackb(b"".join(p.data for p in pieces)) == big


def test_gets_and_runs_waiting_on_the_calls_stream_end_with_the_session(cluster):
    """Closing the session (its Connect stream) ends the Gets and Runs
    waiting on its calls stream at once, NOT_FOUND, not at their timeout."""
    c = Client(cluster["address"], cluster["token"], code_search_path=[CODE])
    (slow,) = c.task("polyglot_fns:sleep_then", 20, "late", num_cpus=0)
    requests: queue.Queue = queue.Queue()
    requests.put(client_calls_pb2.TaggedRun(tag=1, get=api.GetRequest(session_id=c.sid, object_ids=[slow])))
    requests.put(client_calls_pb2.TaggedRun(tag=2, run=api.RunRequest(session_id=c.sid, calls=[api.Call(
        function="polyglot_fns:sleep_then", args=pack([20, "x"]), options=api.TaskOptions(num_cpus=0))])))
    # A fast Run behind them: once it is done, the Get and the Run before it on the stream are waiting.
    requests.put(client_calls_pb2.TaggedRun(tag=3, run=api.RunRequest(session_id=c.sid, calls=[api.Call(
        function="polyglot_fns:add", args=pack([1, 2]))])))
    stream = client_calls_pb2_grpc.ClientCallsStub(c.channel).Runs(iter(requests.get, None), timeout=15)
    done = {}
    try:
        for reply in stream:
            if reply.done:
                done[reply.tag] = reply
                if reply.tag == 3:
                    c.events.cancel()  # the session ends
            if len(done) == 3:
                break
    finally:
        requests.put(None)
        c.channel.close()
    assert done[3].code == 0
    del done[3]
    assert {tag: d.code for tag, d in done.items()} == {1: grpc.StatusCode.NOT_FOUND.value[0],
                                                        2: grpc.StatusCode.NOT_FOUND.value[0]}
    assert all("the session ended while waiting" in d.message for d in done.values())


def test_options_num_returns_and_resources(client):
    a, b = client.task("polyglot_fns:pair", 4, num_returns=2)
    assert client.get([a, b]) == [4, -4]
    assert client.call("polyglot_fns:add", 1, 1, num_cpus=0.5, resources={}) == 2
    assert client.task("polyglot_fns:pid", num_returns=0) == []


def test_an_ember_remote_function_is_called_by_name_too(client):
    assert client.call("polyglot_fns:decorated_fn", 4) == 40


def test_tables_both_ways(client):
    table = client.call("polyglot_fns:table_of", 5)
    assert isinstance(table, pa.Table) and table.column("sq").to_pylist() == [0, 1, 4, 9, 16]
    assert client.call("polyglot_fns:table_sum", table, "sq") == 30
    assert client.call("polyglot_fns:describe", table) == "pyarrow.lib.Table"


def test_a_python_exception_reaches_the_caller_typed_with_its_traceback(client):
    with pytest.raises(RemoteError) as info:
        client.call("polyglot_fns:fail", "bad input 42")
    error = info.value.error
    assert error.kind == api.Error.CODE and error.type == "ValueError" and error.message == "bad input 42"
    assert "polyglot_fns.py" in error.traceback and "raise ValueError(message)" in error.traceback
    assert error.function == "fail"


def test_a_result_with_no_neutral_encoding_fails_naming_its_type(client):
    with pytest.raises(RemoteError) as info:
        client.call("polyglot_fns:unsendable")
    assert info.value.error.type == "TypeError"
    assert "of type object, which has no language-neutral encoding" in info.value.error.message


def test_unknown_and_unimportable_names_fail_saying_where_it_looked(client):
    with pytest.raises(RemoteError) as info:
        client.call("no_such_module:fn")
    assert info.value.error.type == "ImportError"
    assert "No module named 'no_such_module'" in info.value.error.message
    assert "code search path" in info.value.error.message
    with pytest.raises(RemoteError) as info:
        client.call("polyglot_fns:no_such_function")
    assert info.value.error.type == "ImportError" and "has no 'no_such_function'" in info.value.error.message


# ---- objects -----------------------------------------------------------------------


def test_put_then_get_and_pass_by_ref(client):
    ref = client.put({"a": [1, 2], "b": b"\x01"})
    assert client.get1(ref) == {"a": [1, 2], "b": b"\x01"}
    assert client.call("polyglot_fns:describe", Ref(ref)) == "builtins.dict"  # a top-level ref: its value
    inner = client.put(7)
    assert client.call("polyglot_fns:get_ref_value", [Ref(inner)]) == 7  # nested: an ObjectRef


def test_values_put_by_a_client_are_natural_values_for_a_python_driver(client):
    table = pa.table({"x": [1, 2, 3]})
    for value, expected_type in (({"k": "v"}, dict), (b"\xffbytes", bytes), (table, pa.Table)):
        ref = client.put(value)
        got = ember.get(_rebuild_ref(ref))  # a driver's ref to it (counted)
        assert type(got) is expected_type
        assert got.equals(table) if expected_type is pa.Table else got == value


def test_large_values_stream_in_bounded_chunks(client):
    blob = os.urandom(3 << 20)
    ref = client.put(blob, piece=256 << 10)
    replies = client.get_raw([ref])[0]
    assert len(replies) >= 3 and all(len(r.data) <= client.connected.chunk_bytes for r in replies)
    assert msgpack.unpackb(b"".join(r.data for r in replies)) == blob
    table = client.call("polyglot_fns:table_of", 300_000)  # a stored table, returned by a task
    assert table.num_rows == 300_000


def test_wait_and_get_timeout(client):
    slow = client.task("polyglot_fns:sleep_then", 3, "late")[0]
    fast = client.task("polyglot_fns:add", 1, 2)[0]
    reply = client.stub.Wait(api.WaitRequest(session_id=client.sid, object_ids=[slow, fast], num_returns=1,
                                             timeout_s=20))
    assert list(reply.ready) == [1]
    err = _status(lambda: client.get([slow], timeout=0.2))
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "not ready within 0.2s" in err.details()
    client.stub.Release(api.ReleaseRequest(session_id=client.sid, object_ids=[slow]))


# ---- actors ---------------------------------------------------------------------------


def test_an_actor_by_name_keeps_state_and_raises_typed_errors(client):
    counter = client.create_actor("polyglot_fns:Counter", 10)
    refs = [client.method(counter, "inc") for _ in range(3)] + [client.method(counter, "inc", by=5)]
    assert client.get(refs) == [11, 12, 13, 18]
    with pytest.raises(RemoteError) as info:
        client.get1(client.method(counter, "fail"))
    assert info.value.error.type == "KeyError"
    assert client.get1(counter.ready_object_id) is None


def test_a_named_actor_from_a_client_is_called_from_python_and_back(client):
    client.create_actor("polyglot_fns:Counter", 0, name="shared-counter", namespace="interop", lifetime="detached")
    py_handle = ember.get_actor("shared-counter", namespace="interop")
    assert ember.get(py_handle.inc.remote(2)) == 2
    found = client.stub.LookupActor(api.LookupActorRequest(session_id=client.sid, name="shared-counter",
                                                           namespace="interop")).actor
    assert client.get1(client.method(found, "inc")) == 3
    ember.kill(py_handle)


def test_a_named_actor_from_python_is_called_from_a_client(client):
    from tests.polyglot_code.polyglot_fns import Decorated

    handle = Decorated.options(name="py-made", namespace="interop").remote()
    ember.get(handle.__ray_ready__.remote())
    found = client.stub.LookupActor(api.LookupActorRequest(session_id=client.sid, name="py-made",
                                                           namespace="interop")).actor
    assert client.get1(client.method(found, "hello", "node")) == "hello node"
    ember.kill(handle)


def test_a_submit_with_chosen_task_ids_is_safe_to_retry(client):
    counter = client.create_actor("polyglot_fns:Counter")
    task_id = os.urandom(15) + bytes([os.urandom(1)[0] | 1])  # a method call's id: lowest bit set
    call = api.Call(method=api.ActorMethod(actor_id=counter.actor_id, method="inc"), task_id=task_id)
    first = client.submit(call)
    again = client.submit(call)  # a retry after a lost reply: not run again
    assert first == again == [[task_id + (1).to_bytes(4, "big")]]
    assert client.get1(first[0][0]) == 1
    assert client.get1(client.method(counter, "inc")) == 2


def test_calls_on_a_killed_actor_fail_with_actor_died(client):
    counter = client.create_actor("polyglot_fns:Counter")
    assert client.get1(client.method(counter, "inc")) == 1
    client.stub.KillActor(api.KillActorRequest(session_id=client.sid, actor_id=counter.actor_id, no_restart=True))
    client.stub.KillActor(api.KillActorRequest(session_id=client.sid, actor_id=counter.actor_id, no_restart=True))
    with pytest.raises(RemoteError) as info:
        client.get1(client.method(counter, "inc"))
    assert info.value.error.kind == api.Error.SYSTEM and info.value.error.type == "ActorDiedError"


def test_a_taken_name_is_refused_unless_get_if_exists(client):
    first = client.create_actor("polyglot_fns:Counter", name="once", namespace="interop")
    err = _status(lambda: client.create_actor("polyglot_fns:Counter", name="once", namespace="interop"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "get_if_exists" in err.details()
    again = client.create_actor("polyglot_fns:Counter", name="once", namespace="interop", get_if_exists=True)
    assert again.actor_id == first.actor_id
    err = _status(lambda: client.stub.LookupActor(api.LookupActorRequest(session_id=client.sid, name="nobody")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "nobody" in err.details()


# ---- sessions ----------------------------------------------------------------------------


def test_a_sessions_refs_and_actors_go_when_its_stream_ends(cluster):
    c = Client(cluster["address"], cluster["token"], code_search_path=[CODE])
    ref = c.put(b"x" * 200_000)  # stored
    counter = c.create_actor("polyglot_fns:Counter")
    assert c.get1(c.method(counter, "inc")) == 1
    py_ref = _rebuild_ref(ref)
    assert ember.get(py_ref) == b"x" * 200_000
    del py_ref  # (the driver's ref would keep it)
    c.close()
    wait_until(lambda: not _actor_alive(counter.actor_id), what="the session's actor to end")
    wait_until(lambda: ref not in _object_ids(cluster), what="the session's put to be freed")


def _actor_alive(actor_id: bytes) -> bool:
    from ember._private import runtime
    from ember.v1 import gcs_pb2

    reply = runtime.client().gcs.GetActor(gcs_pb2.GetActorRequest(actor_id=actor_id), timeout=10)
    return reply.found and reply.actor.state == gcs_pb2.ActorInfo.ALIVE


def _object_ids(cluster) -> set[bytes]:
    from ember.v1 import raylet_pb2
    from tests.helpers import raylet_call

    reply = raylet_call(cluster["token"], cluster["node_id"], "ListObjects", raylet_pb2.ListObjectsRequest())
    return {o.object_id for o in reply.objects}


def test_nodes(client):
    nodes = client.stub.Nodes(api.NodesRequest(session_id=client.sid)).nodes
    assert len(nodes) == 1 and nodes[0].alive and nodes[0].total["CPU"] == 2
    assert nodes[0].node_id == client.connected.node_id


# ---- bad input ------------------------------------------------------------------------------


def test_a_wrong_token_is_refused(cluster):
    bad = Client.__new__(Client)
    channel = rpc.channel(cluster["address"], "not-the-token")
    try:
        stub = client_api_pb2_grpc.ClientApiStub(channel)
        err = _status(lambda: next(stub.Connect(api.ConnectRequest())))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        err = _status(lambda: stub.Submit(api.SubmitRequest()))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        channel.close()
    del bad


@pytest.mark.parametrize("call,code,message", [
    (api.Call(function="not a name"), "INVALID_ARGUMENT", "is not an importable name"),
    (api.Call(function="mod.fn"), "INVALID_ARGUMENT", "a colon"),
    (api.Call(), "INVALID_ARGUMENT", "name a `function`"),
    (api.Call(function="m:f", args=b"\xc1"), "INVALID_ARGUMENT", "`args` is not a neutral value"),
    (api.Call(function="m:f", args=msgpack.packb({"a": 1})), "INVALID_ARGUMENT", "must be a MessagePack array"),
    (api.Call(function="m:f", kwargs=msgpack.packb([1])), "INVALID_ARGUMENT", "must be a MessagePack map"),
    (api.Call(function="m:f", args=msgpack.packb([msgpack.ExtType(5, b"")])), "INVALID_ARGUMENT", "extension type 5"),
    (api.Call(function="m:f", args=msgpack.packb([b"x" * MAX_ARGS])), "INVALID_ARGUMENT", "put large values first"),
    (api.Call(function="m:f", options=api.TaskOptions(num_returns=20000)), "INVALID_ARGUMENT", "num_returns"),
    (api.Call(function="m:f", options=api.TaskOptions(num_cpus=-1)), "INVALID_ARGUMENT", "non-negative"),
    (api.Call(method=api.ActorMethod(actor_id=b"short", method="m")), "INVALID_ARGUMENT", "actor_id must be 16"),
    (api.Call(method=api.ActorMethod(actor_id=bytes(16), method="no-dash")), "INVALID_ARGUMENT", "not a method"),
    (api.Call(function="m:f", args=msgpack.packb([msgpack.ExtType(1, bytes(20))])), "NOT_FOUND", "not held"),
    (api.Call(function="m:f", task_id=b"short"), "INVALID_ARGUMENT", "task_id must be 16 bytes"),
    (api.Call(function="m:f", task_id=bytes(15) + b"\x01"), "INVALID_ARGUMENT", "lowest bit of its last byte clear"),
])
def test_bad_calls_are_refused_with_what_to_fix_and_nothing_runs(client, call, code, message):
    good = api.Call(function="polyglot_fns:add", args=pack([1, 2]))
    err = _status(lambda: client.submit(good, call))
    assert err.code().name == code and message in err.details()
    assert "call 1" in err.details() or code == "NOT_FOUND"
    assert client.call("polyglot_fns:add", 1, 2) == 3  # the session serves on


def test_bad_puts_and_refs(client):
    err = _status(lambda: client.put(document=b"\xc1"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a neutral document" in err.details()
    err = _status(lambda: client.put(document=msgpack.packb(b"x" * MAX_VALUE)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_value_bytes" in err.details()
    unknown = bytes(20)
    err = _status(lambda: client.get([unknown]))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "not held by this session" in err.details()
    ref = client.put(1)
    client.stub.Release(api.ReleaseRequest(session_id=client.sid, object_ids=[ref, ref]))
    client.stub.Release(api.ReleaseRequest(session_id=client.sid, object_ids=[ref]))  # idempotent
    err = _status(lambda: client.get([ref]))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "released" in err.details()
    err = _status(lambda: client.get([b"short"]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = _status(lambda: client.stub.Submit(api.SubmitRequest(session_id=b"nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "Connect first" in err.details()
    assert client.get1(client.put("still serving")) == "still serving"


def test_a_python_only_object_is_refused_by_name(client):
    inner = client.call("polyglot_fns:python_only_ref")[0]
    assert inner[0] == "ref"  # held by the session once the list holding it was read
    err = _status(lambda: client.get([inner[1]]))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "Python-only value" in err.details()
    assert client.call("polyglot_fns:add", 2, 2) == 4


def test_concurrent_clients(cluster):
    clients = [Client(cluster["address"], cluster["token"], code_search_path=[CODE]) for _ in range(3)]
    results: list = []

    def work(c: Client, k: int) -> None:
        refs = [c.task("polyglot_fns:add", i, k)[0] for i in range(20)]
        results.append(c.get(refs) == [i + k for i in range(20)])

    threads = [threading.Thread(target=work, args=(c, k)) for k, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for c in clients:
        c.close()
    assert results == [True, True, True]
