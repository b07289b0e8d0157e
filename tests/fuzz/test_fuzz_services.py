"""The bounded fuzz campaign (issue 17 point 3): every RPC of every service,
and the raylet's local socket, get well-typed requests with random values,
garbage bytes, truncated and oversized messages and bad tokens; no input
gets INTERNAL or UNKNOWN, every service keeps serving, nothing is unpickled
for an unauthenticated caller, and no service's fds or memory grow.
EMBER_FUZZ_EXAMPLES sets the examples per test (tests/fuzz/README.md)."""

from __future__ import annotations

import contextlib
import glob
import pathlib
from typing import Any, Callable, Iterator

import grpc
import psutil
import pytest
from google.protobuf import descriptor as pb_descriptor
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import ember
from ember.v1 import (client_api_pb2, client_api_pb2_grpc, client_calls_pb2, client_calls_pb2_grpc, gcs_pb2,
                      gcs_pb2_grpc, job_pb2, job_pb2_grpc, node_state_pb2, node_state_pb2_grpc, objectstore_pb2,
                      objectstore_pb2_grpc, raylet_pb2, raylet_pb2_grpc)
from ember_common import auth, ids, rpc
from tests.conftest import shm_files, wait_gone
from tests.fuzz import harness
from tests.fuzz.harness import FORBIDDEN, TALLY, TOKEN

# Examples with 70 KB or 5 MB fields: hypothesis warns that their repr is long.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
SETTINGS = settings(max_examples=harness.EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])
# A leak grows with the inputs: thousands of calls leaking one fd or a few
# KB each exceed these, while gRPC's and the allocator's own warm-up and
# caches (a few fds for new threads/epoll, freed 5 MB messages held by
# pymalloc/glibc arenas) stay within them.
FD_GROWTH = 20
RSS_GROWTH = 50 * 1024 * 1024


class Target:
    """A service under fuzzing: where it listens, its process, the token it
    wants, and one valid request that must keep working."""

    def __init__(self, name: str, address: str, pid: int, token: str, valid: Callable[[grpc.Channel], Any]) -> None:
        self.name, self.address, self.pid, self.token = name, address, pid, token
        self.channel = grpc.insecure_channel(address, options=rpc.CHANNEL_OPTIONS)
        self.metadata = rpc.token_metadata(token)
        self._valid = valid
        self.baseline: tuple[int, int] | None = None

    def assert_alive(self) -> None:
        assert psutil.pid_exists(self.pid) and psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE, \
            f"{self.name} died"

    def assert_serving(self) -> None:
        harness.assert_serving(self.address, lambda: self._valid(rpc.channel(self.address, self.token)))


def _gcs_valid(channel: grpc.Channel) -> None:
    stub = gcs_pb2_grpc.GcsStub(channel)
    stub.KvPut(gcs_pb2.KvPutRequest(namespace="fuzz-check", key=b"k", value=b"v", overwrite=True), timeout=10)
    assert stub.KvGet(gcs_pb2.KvGetRequest(namespace="fuzz-check", key=b"k"), timeout=10).value == b"v"
    channel.close()


def _store_valid(channel: grpc.Channel) -> None:
    objectstore_pb2_grpc.ObjectStoreStub(channel).Stats(objectstore_pb2.StatsRequest(), timeout=10)
    channel.close()


def _node_state_valid(channel: grpc.Channel) -> None:
    assert node_state_pb2_grpc.NodeStateStub(channel).ListLogs(node_state_pb2.ListLogsRequest(), timeout=10).files
    channel.close()


def _raylet_valid(channel: grpc.Channel) -> None:
    raylet_pb2_grpc.RayletStub(channel).GetNodeStats(raylet_pb2.GetNodeStatsRequest(), timeout=10)
    channel.close()


def _jobs_valid(channel: grpc.Channel) -> None:
    job_pb2_grpc.JobServiceStub(channel).ListJobs(job_pb2.ListJobsRequest(), timeout=10)
    channel.close()


def _client_api_valid(channel: grpc.Channel) -> None:
    """A session opens and serves a put and a get."""
    stub = client_api_pb2_grpc.ClientApiStub(channel)
    events = stub.Connect(client_api_pb2.ConnectRequest(language="fuzz"), timeout=10)
    try:
        session = next(events).connected.session_id
        ref = stub.Put(iter([client_api_pb2.PutRequest(session_id=session, data=b"\x01")]), timeout=10).object_id
        (reply,) = stub.Get(client_api_pb2.GetRequest(session_id=session, object_ids=[ref]), timeout=10)
        assert reply.data == b"\x01"
    finally:
        events.cancel()
        channel.close()


def _client_calls_valid(channel: grpc.Channel) -> None:
    """A session's sync call on the Runs stream."""
    events = client_api_pb2_grpc.ClientApiStub(channel).Connect(client_api_pb2.ConnectRequest(language="fuzz"),
                                                                timeout=30)
    try:
        session = next(events).connected.session_id
        run = client_api_pb2.RunRequest(session_id=session, release=True, calls=[
            client_api_pb2.Call(function="operator:add", args=b"\x92\x01\x02")])
        replies = list(client_calls_pb2_grpc.ClientCallsStub(channel).Runs(
            iter([client_calls_pb2.TaggedRun(tag=7, run=run)]), timeout=30))
        assert [(r.tag, r.reply.data, r.done, r.code) for r in replies] == [(7, b"\x03", False, 0), (7, b"", True, 0)]
    finally:
        events.cancel()
        channel.close()


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Target]]:
    root = tmp_path_factory.mktemp("fuzz")
    with harness.gcs_and_store(root) as (gcs, store):
        info = ember.init(num_cpus=1)
        session = pathlib.Path(info["session_dir"])
        try:
            (node,) = ember.nodes()
            raylet_pid = next(p.pid for p in psutil.process_iter(["cmdline"])
                              if "ember_raylet.main" in " ".join(p.info["cmdline"] or []) and str(session) in " ".join(p.info["cmdline"] or []))
            found = {
                "Gcs": Target("Gcs", gcs.address, gcs.pid, TOKEN, _gcs_valid),
                "ObjectStore": Target("ObjectStore", store.address, store.pid, TOKEN, _store_valid),
                "ObjectLeases": Target("ObjectLeases", store.address, store.pid, TOKEN, _store_valid),
                "Raylet": Target("Raylet", f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}", raylet_pid,
                                 auth.read_token(session / "token"), _raylet_valid),
                "ClientApi": Target("ClientApi", f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}",
                                    raylet_pid, auth.read_token(session / "token"), _client_api_valid),
            }
            # The head's raylet serves the job service on the same listener.
            found["JobService"] = Target("JobService", found["Raylet"].address, raylet_pid, found["Raylet"].token,
                                         _jobs_valid)
            found["ClientCalls"] = Target("ClientCalls", found["ClientApi"].address, raylet_pid,
                                          found["ClientApi"].token, _client_calls_valid)
            found["NodeState"] = Target("NodeState", found["Raylet"].address, raylet_pid,
                                        auth.read_token(session / "token"), _node_state_valid)
            found["Raylet"].local_socket = glob.glob(str(session / "raylet-*.local.sock"))[0]  # type: ignore[attr-defined]
            # A watcher's snapshot is never empty, so WatchActors answers at once.
            gcs_pb2_grpc.GcsStub(rpc.channel(gcs.address, TOKEN)).RegisterActor(gcs_pb2.RegisterActorRequest(
                actor=gcs_pb2.ActorInfo(actor_id=b"w" * 16, job_id=b"\0\0\0\1", class_name="Warm")), timeout=10)
            for target in found.values():  # warm-up: every RPC once, then the footprint to compare with
                for method in harness.rpc_methods(target.name):
                    if not method.client_streaming and f"{target.name}.{method.name}" not in harness.RUNS_COMMANDS:
                        harness.call_raw(target.channel, method, b"", target.metadata)
                        harness.call_raw(target.channel, method, b"\xff", target.metadata)
                target.assert_serving()
                target.baseline = harness.footprint(target.pid)
            yield found
            for target in found.values():
                target.channel.close()
        finally:
            ember.shutdown()
            assert not wait_gone(str(session)), "processes left after shutdown()"
            assert not shm_files(f"ember-{session.name[-6:]}"), "shared memory left after shutdown()"


def _unary_request_methods() -> list[Any]:
    return [pytest.param(m, id=f"{s}.{m.name}") for s in harness.SERVICES for m in harness.rpc_methods(s)
            if not m.client_streaming and f"{s}.{m.name}" not in harness.RUNS_COMMANDS]


def _check(target: Target, method: pb_descriptor.MethodDescriptor, code: grpc.StatusCode, what: str) -> None:
    TALLY.record(target.name, method.name, code.name)
    assert code not in FORBIDDEN, f"{target.name}.{method.name}: {code.name} for {what}"
    target.assert_alive()


@contextlib.contextmanager
def _batch(target: Target) -> Iterator[None]:
    """An example batch (one hypothesis run), after which the service must still serve."""
    yield
    target.assert_serving()


INPUT_KINDS = {
    "typed": lambda m: harness.messages(m.input_type).map(lambda msg: msg.SerializeToString()),
    "garbage": lambda m: harness.garbage(),
    "truncated": lambda m: harness.truncations(m.input_type),
}


@pytest.mark.parametrize("kind", list(INPUT_KINDS))
@pytest.mark.parametrize("method", _unary_request_methods())
def test_malformed_requests_get_a_status(targets: dict[str, Target], method: pb_descriptor.MethodDescriptor,
                                         kind: str) -> None:
    target = targets[method.containing_service.name]

    @SETTINGS
    @given(payload=INPUT_KINDS[kind](method))
    @example(payload=b"\x00")  # was UNKNOWN ("Unexpected DecodeError") from every RPC: rpc.ParseRequests
    @example(payload=b"\x0a\x05ab")
    # was INTERNAL (int('') of the port): ObjectStore.Pull validates source_address
    @example(payload=objectstore_pb2.PullRequest(object_id=b"\0" * 20, source_address=":", size=1).SerializeToString())
    def run(payload: bytes) -> None:
        _check(target, method, harness.call_raw(target.channel, method, payload, target.metadata), f"{kind} {payload[:64]!r}")

    with _batch(target):
        run()


@pytest.mark.parametrize("method", [pytest.param(m, id=f"{s}.{m.name}") for s in harness.SERVICES
                                    for m in harness.rpc_methods(s)])
def test_bad_tokens_are_unauthenticated(targets: dict[str, Target], method: pb_descriptor.MethodDescriptor) -> None:
    target = targets[method.containing_service.name]

    @SETTINGS
    @given(metadata=harness.bad_tokens(), request=harness.messages(method.input_type))
    def run(metadata: list[tuple[str, str]] | None, request: Any) -> None:
        payload = request.SerializeToString()
        if method.client_streaming:
            code = harness.call_stream(target.channel, method, [payload], metadata)
        else:
            code = harness.call_raw(target.channel, method, payload, metadata)
        TALLY.record(target.name, method.name, code.name)
        assert code == grpc.StatusCode.UNAUTHENTICATED, f"{method.name} with {metadata!r}: {code.name}"

    with _batch(target):
        run()


# --- the client session: Raylet.Connect and the local socket ----------------------

def _register(kind: int = raylet_pb2.RegisterClient.DRIVER) -> bytes:
    return raylet_pb2.ClientBatch(register=raylet_pb2.RegisterClient(kind=kind, pid=1)).SerializeToString()


def _unknown_results() -> st.SearchStrategy[bytes]:
    return st.lists(st.binary(min_size=ids.UNIQUE_ID_SIZE, max_size=ids.UNIQUE_ID_SIZE), min_size=1, max_size=3).map(
        lambda task_ids: raylet_pb2.ClientBatch(results=[raylet_pb2.TaskResult(task_id=t) for t in task_ids]).SerializeToString())


CLIENT_BATCH = raylet_pb2.ClientBatch.DESCRIPTOR


def session_frames() -> st.SearchStrategy[list[bytes]]:
    """A session's frames out of order: no register first, register twice,
    results for tasks nobody gave, random batches, garbage, truncated batches."""
    frame = st.one_of(
        st.just(_register()),
        st.sampled_from([raylet_pb2.RegisterClient.WORKER, raylet_pb2.RegisterClient.RAYLET, 7]).map(_register),
        _unknown_results(),
        harness.messages(CLIENT_BATCH).map(lambda m: m.SerializeToString()),
        harness.garbage(),
        harness.truncations(CLIENT_BATCH),
    )
    return st.lists(frame, max_size=4) | st.lists(frame, max_size=4).map(lambda rest: [_register(), *rest])


def _connect_method() -> pb_descriptor.MethodDescriptor:
    return harness.SERVICES["Raylet"].methods_by_name["Connect"]


def test_connect_sessions_out_of_order(targets: dict[str, Target]) -> None:
    target, method = targets["Raylet"], _connect_method()

    @SETTINGS
    @given(frames=session_frames())
    def run(frames: list[bytes]) -> None:
        code = harness.call_stream(target.channel, method, frames, target.metadata)
        _check(target, method, code, f"session {[f[:32] for f in frames]!r}")

    with _batch(target):
        run()


def test_local_socket_sessions(targets: dict[str, Target]) -> None:
    target = targets["Raylet"]
    token = target.token.encode()
    tails = st.sampled_from([
        b"",
        harness.frames.FRAME_LEN.pack(100) + b"x" * 10,          # a frame cut off
        harness.frames.FRAME_LEN.pack(0xFFFFFFFF),               # an absurd length
        harness.frames.FRAME_LEN.pack(harness.frames.MAX_FRAME + 1),
        b"\x01\x00",                                              # a cut-off length prefix
    ])
    first = st.one_of(st.just(token), st.just(b""), st.binary(max_size=64), st.just(token + b"x"),
                      st.just(b"A" * 4097))

    @SETTINGS
    @given(token_frame=first, frames=session_frames(), tail=tails)
    def run(token_frame: bytes, frames: list[bytes], tail: bytes) -> None:
        error, closed = harness.local_socket_exchange(target.local_socket, [token_frame, *frames], tail)
        status = error.split(":", 1)[0] if error else "closed"
        TALLY.record("Raylet", "local socket", status)
        assert closed, "the raylet kept a finished connection open"
        assert status not in ("INTERNAL", "UNKNOWN"), error
        if token_frame != token and len(token_frame) <= harness.frames.MAX_TOKEN_FRAME:
            assert status == "UNAUTHENTICATED", error
        target.assert_alive()

    with _batch(target):
        run()


# --- nothing is unpickled for a caller without the token -----------------------------

def test_no_unpickling_before_authentication(targets: dict[str, Target], tmp_path: pathlib.Path) -> None:
    """Every bytes field of every request holds a pickle that creates a file
    when unpickled: sent without a token or with a wrong one, to every RPC
    (and as the local socket's token and first batch), nothing creates it.
    The raylet unpickles no user data at all, authenticated or not."""
    marker = tmp_path / "unpickled"
    bomb = harness.pickle_bomb(marker)
    for target in targets.values():
        for method in harness.rpc_methods(target.name):
            # A request without bytes fields carries the pickle as its whole body.
            payload = harness.with_every_bytes_field(method.input_type, bomb).SerializeToString() or bomb
            assert bomb in payload
            tokens = [None, [("authorization", "Bearer wrong")]]
            if target.name == "Raylet":
                tokens.append(target.metadata)
            for metadata in tokens:
                code = (harness.call_stream(target.channel, method, [payload, payload], metadata) if method.client_streaming
                        else harness.call_raw(target.channel, method, payload, metadata))
                TALLY.record(target.name, method.name, code.name)
                if metadata != target.metadata:
                    assert code == grpc.StatusCode.UNAUTHENTICATED
                assert not marker.exists(), f"{target.name}.{method.name} unpickled a request's bytes"
    batch = harness.with_every_bytes_field(CLIENT_BATCH, bomb).SerializeToString()
    for frames in ([bomb, batch], [b"wrong", batch], [target.token.encode(), _register(), batch]):
        harness.local_socket_exchange(targets["Raylet"].local_socket, frames)
        TALLY.record("Raylet", "local socket", "pickle")
    targets["Raylet"].assert_serving()
    assert not marker.exists(), "the raylet's local socket unpickled a frame"


# --- last: the campaign left no leak -------------------------------------------------

def test_zz_no_fd_or_memory_growth(targets: dict[str, Target]) -> None:
    """Runs after the campaign above (pytest keeps file order): each service
    has about the fds and memory it had after the warm-up."""
    for target in targets.values():
        target.assert_serving()
        fds, rss = harness.footprint(target.pid)
        base_fds, base_rss = target.baseline
        print(f"{target.name}: fds {base_fds} -> {fds}, RSS {base_rss >> 20} -> {rss >> 20} MB")
        assert fds - base_fds <= FD_GROWTH, f"{target.name}: fds {base_fds} -> {fds}"
        assert rss - base_rss <= RSS_GROWTH, f"{target.name}: RSS {base_rss >> 20} -> {rss >> 20} MB"

    @ember.remote(num_cpus=0)
    def still_runs(x: int) -> int:
        return x + 1

    assert ember.get(still_runs.remote(1), timeout=60) == 2


# After the leak check: the GCS keeps what it is given (a 5 MB actor class
# name, node address, KV value: no size limits yet), state that the RSS bound
# would count as a leak. Unfinished: per-field limits (tests/fuzz/README.md).
@pytest.mark.parametrize("method", _unary_request_methods())
def test_zzz_oversized_requests_get_a_status(targets: dict[str, Target], method: pb_descriptor.MethodDescriptor) -> None:
    target = targets[method.containing_service.name]

    @settings(SETTINGS, max_examples=max(1, harness.EXAMPLES // 4))
    @given(payload=harness.oversized(method.input_type))
    def run(payload: bytes) -> None:
        _check(target, method, harness.call_raw(target.channel, method, payload, target.metadata), "oversized")

    with _batch(target):
        run()
