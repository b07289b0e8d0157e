"""The fuzz harness: the services as real processes on loopback, requests
for every RPC of their stubs' service descriptors (so a new RPC is fuzzed
without a change here), the ways to send them (raw bytes on a generic
channel, the Connect stream, the raylet's framed local socket), and the
tally of what came back, per service and RPC."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
from typing import Any, Iterable, Iterator

import grpc
import psutil
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import strategies as st

from ember.v1 import (client_api_pb2, client_calls_pb2, gcs_pb2, job_pb2, node_state_pb2, object_leases_pb2,
                      objectstore_pb2, raylet_pb2)
from ember_common import auth, frames, ids, rpc
from tests.helpers import wait_until

TOKEN = "fuzz-token-0123456789"
# Examples per fuzz test: small in CI, EMBER_FUZZ_EXAMPLES for a campaign by hand.
EXAMPLES = int(os.environ.get("EMBER_FUZZ_EXAMPLES", "12"))
# "A few MB": past every limit of ours (token frame 4 KiB, ids, names) and
# gRPC's default 4 MB, within the services' 512 MB message limit.
OVERSIZED = 5 * 1024 * 1024
CALL_TIMEOUT = 10.0
# What bad input may never get: a bug of ours (INTERNAL) or an exception gRPC
# caught for us (UNKNOWN).
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

SERVICES: dict[str, pb_descriptor.ServiceDescriptor] = {
    "Gcs": gcs_pb2.DESCRIPTOR.services_by_name["Gcs"],
    "ObjectStore": objectstore_pb2.DESCRIPTOR.services_by_name["ObjectStore"],
    "ObjectLeases": object_leases_pb2.DESCRIPTOR.services_by_name["ObjectLeases"],  # (served by the store)
    "Raylet": raylet_pb2.DESCRIPTOR.services_by_name["Raylet"],
    "JobService": job_pb2.DESCRIPTOR.services_by_name["JobService"],
    "NodeState": node_state_pb2.DESCRIPTOR.services_by_name["NodeState"],  # (served by the raylet)
    "ClientApi": client_api_pb2.DESCRIPTOR.services_by_name["ClientApi"],  # (served by the raylet)
    "ClientCalls": client_calls_pb2.DESCRIPTOR.services_by_name["ClientCalls"],  # (served by the raylet)
}
# RPCs whose well-formed requests run what they say: fuzzed only with bad
# tokens (a random SubmitJob that passed would run a random shell command;
# its validation is tested in tests/test_jobs.py).
RUNS_COMMANDS = {"JobService.SubmitJob"}


def rpc_methods(service: str) -> list[pb_descriptor.MethodDescriptor]:
    return list(SERVICES[service].methods)


def method_path(method: pb_descriptor.MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


# --- the tally --------------------------------------------------------------

class Tally:
    """Inputs tried and the statuses they got, per (service, RPC)."""

    def __init__(self) -> None:
        self.statuses: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(collections.Counter)

    def record(self, service: str, rpc_name: str, status: str) -> None:
        self.statuses[(service, rpc_name)][status] += 1

    def inputs(self, service: str | None = None) -> int:
        return sum(sum(c.values()) for (s, _), c in self.statuses.items() if service in (None, s))

    def count(self, status: str) -> int:
        return sum(c[status] for c in self.statuses.values())

    def summary(self) -> list[str]:
        # (whether the services stayed up is each test's own assertion, not claimed here)
        lines = [f"fuzz: {self.inputs():,} inputs, {self.count('INTERNAL') + self.count('UNKNOWN')} INTERNAL/UNKNOWN"]
        for service in sorted({s for s, _ in self.statuses}):
            by_status: collections.Counter[str] = collections.Counter()
            for (s, _), c in self.statuses.items():
                if s == service:
                    by_status.update(c)
            seen = ", ".join(f"{k} {v:,}" for k, v in by_status.most_common())
            lines.append(f"  {service}: {self.inputs(service):,} inputs ({seen})")
        for (service, name), c in sorted(self.statuses.items()):
            lines.append(f"    {service}.{name}: {sum(c.values()):,}")
        return lines


TALLY = Tally()


# --- service processes --------------------------------------------------------

class ServiceProcess:
    """One service started alone from its console script, as an operator runs it."""

    def __init__(self, name: str, argv: list[str], session: pathlib.Path) -> None:
        self.name = name
        ready = session / f"{name}.ready"
        (session / "logs").mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(argv + ["--session-dir", str(session), "--port", "0", "--ready-file", str(ready)],
                                      env={**os.environ, auth.TOKEN_ENV: TOKEN},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: ready.exists() or self.popen.poll() is not None, 30, f"{name} ready")
        assert self.popen.poll() is None, f"{name} exited with {self.popen.returncode}; see {session}/logs"
        self.address = f"127.0.0.1:{json.loads(ready.read_text())['port']}"
        self.pid = self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(20)


def footprint(pid: int) -> tuple[int, int]:
    """(open fds, RSS bytes) of process `pid`."""
    proc = psutil.Process(pid)
    return proc.num_fds(), proc.memory_info().rss


# --- what is checked after every example -----------------------------------------

def assert_serving(address: str, valid_call: Any) -> None:
    """The service answers its health check and a valid request."""
    with contextlib.closing(grpc.insecure_channel(address)) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    valid_call()


def status_name(code: grpc.StatusCode) -> str:
    return code.name


def call_raw(channel: grpc.Channel, method: pb_descriptor.MethodDescriptor, payload: bytes,
             metadata: Iterable[tuple[str, str]] | None = None) -> grpc.StatusCode:
    """Send `payload` as the serialized request of a unary-request RPC; the
    status it ended with. A server stream counts as answered once its first
    message or its status arrives (WatchActors never ends by itself)."""
    path = method_path(method)
    try:
        if method.server_streaming:
            call = channel.unary_stream(path)(payload, timeout=CALL_TIMEOUT, metadata=metadata)
            try:
                next(call)
            except StopIteration:
                pass
            finally:
                call.cancel()
        else:
            channel.unary_unary(path)(payload, timeout=CALL_TIMEOUT, metadata=metadata)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.CANCELLED:  # our own cancel after the first message
            return grpc.StatusCode.OK
        return e.code()
    return grpc.StatusCode.OK


def call_stream(channel: grpc.Channel, method: pb_descriptor.MethodDescriptor, payloads: list[bytes],
                metadata: Iterable[tuple[str, str]] | None = None) -> grpc.StatusCode:
    """Send `payloads` on a bidirectional stream, half-close, and read
    until the status. The client half-closing ends a session."""
    call = channel.stream_stream(method_path(method))(iter(payloads), timeout=CALL_TIMEOUT, metadata=metadata)
    try:
        for _ in call:
            pass
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def local_socket_exchange(path: str, frames_out: list[bytes], raw_tail: bytes = b"") -> tuple[str, bool]:
    """Send length-prefixed `frames_out` (then `raw_tail` as is: a cut-off
    frame, an absurd length) on the raylet's local socket, half-close, and
    read until the raylet closes. Returns (the last frame's `error`, whether
    the raylet closed the connection within the timeout)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CALL_TIMEOUT)
        sock.connect(path)
        try:
            sock.sendall(b"".join(frames.FRAME_LEN.pack(len(f)) + f for f in frames_out) + raw_tail)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):  # it hung up on us already
            pass
        data = bytearray()
        try:
            while chunk := sock.recv(1 << 16):
                data += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            return "", False
    error, offset = "", 0
    while len(data) - offset >= 4:
        (n,) = frames.FRAME_LEN.unpack_from(data, offset)
        if len(data) - offset - 4 < n:
            break
        error = raylet_pb2.RayletBatch.FromString(bytes(data[offset + 4:offset + 4 + n])).error or error
        offset += 4 + n
    return error, True


# --- strategies ----------------------------------------------------------------

_INT_RANGES = {
    pb_descriptor.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    pb_descriptor.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    pb_descriptor.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    pb_descriptor.FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
    pb_descriptor.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    pb_descriptor.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    pb_descriptor.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    pb_descriptor.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    pb_descriptor.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    pb_descriptor.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    pb_descriptor.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
# Right-sized ids get past the first length check, into the handler's logic.
_ID_SIZES = (ids.JOB_ID_SIZE, ids.UNIQUE_ID_SIZE, ids.OBJECT_ID_SIZE)


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = [v for v in (0, 1, -1, 2, lo, hi, lo + 1, hi - 1, 2**31 - 1, 2**53) if lo <= v <= hi]
    return st.sampled_from(edges) | st.integers(lo, hi) | st.integers(max(lo, -64), min(hi, 64))


def _scalar(field: pb_descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _INT_RANGES:
        lo, hi = _INT_RANGES[t]
        if t == field.TYPE_ENUM:  # proto3 enums are open: unknown numbers parse
            return st.sampled_from([v.number for v in field.enum_type.values]) | _integers(lo, hi)
        return _integers(lo, hi)
    if t == field.TYPE_BOOL:
        return st.booleans()
    if t in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        return st.floats(width=32 if t == field.TYPE_FLOAT else 64) | st.sampled_from([0.0, -1.0, 1e300, float("nan")])
    if t == field.TYPE_STRING:
        return st.text(max_size=24) | st.sampled_from(["", "\0", "a\0b", "x" * 5000, "../../etc/passwd", "默认"])
    if t == field.TYPE_BYTES:
        return (st.binary(max_size=24) | st.sampled_from(_ID_SIZES).flatmap(lambda n: st.binary(min_size=n, max_size=n))
                | st.just(b"\0" * 70000))
    raise AssertionError(f"no strategy for field type {t} ({field.full_name})")


def messages(descriptor: pb_descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Well-typed messages of `descriptor` with random field values (nested
    messages to depth 3, lists and maps of up to 3)."""
    cls = message_factory.GetMessageClass(descriptor)
    if depth > 3:
        return st.just(cls())
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            value = (messages(value_field.message_type, depth + 1) if value_field.message_type else _scalar(value_field))
            fields[field.name] = st.dictionaries(_scalar(key_field), value, max_size=3)
            continue
        element = messages(field.message_type, depth + 1) if field.message_type else _scalar(field)
        repeated = field.is_repeated
        fields[field.name] = st.lists(element, max_size=3) if repeated else element
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: cls(**values))


def request_descriptor(method: pb_descriptor.MethodDescriptor) -> pb_descriptor.Descriptor:
    return method.input_type


def garbage() -> st.SearchStrategy[bytes]:
    """Bytes that are (mostly) no valid message: random, bad tags and varints,
    lengths past the end, and a pickle."""
    return st.binary(min_size=1, max_size=256) | st.sampled_from([
        b"\xff" * 16, b"\x0a\xff\xff\xff\xff\x0f", b"\x08" + b"\xff" * 11, b"\x0a\x05ab", b"\x07",
        b"\x00", b"\x7a\x00", b"\x12\x80\x80\x80\x80\x10",
    ])


def truncations(descriptor: pb_descriptor.Descriptor) -> st.SearchStrategy[bytes]:
    """A valid serialized message cut short at a random point."""
    # A message with no fields set serializes to nothing: cut a field of it instead.
    whole = messages(descriptor).map(lambda m: m.SerializeToString() or b"\x0a\x03abc")
    return whole.filter(lambda b: len(b) > 1).flatmap(lambda b: st.integers(1, len(b) - 1).map(lambda n: b[:n]))


def oversized(descriptor: pb_descriptor.Descriptor) -> st.SearchStrategy[bytes]:
    """A message with one string or bytes field (or an unknown field if it
    has none) of OVERSIZED bytes."""
    cls = message_factory.GetMessageClass(descriptor)
    blob_fields = [f for f in descriptor.fields if f.type in (f.TYPE_BYTES, f.TYPE_STRING)
                   and not f.is_repeated]

    def build(field: pb_descriptor.FieldDescriptor | None) -> bytes:
        if field is None:  # field 1000, length-delimited: unknown to every message of ours
            return b"\xc2\x3e" + _varint(OVERSIZED) + b"\0" * OVERSIZED
        value: Any = "x" * OVERSIZED if field.type == field.TYPE_STRING else b"\0" * OVERSIZED
        return cls(**{field.name: value}).SerializeToString()

    return st.sampled_from([*blob_fields, None]).map(build)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def bad_tokens() -> st.SearchStrategy[list[tuple[str, str]] | None]:
    """Missing, wrong, near-miss, huge and malformed authorization metadata."""
    wrong = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=64)
    return st.one_of(
        st.none(),
        wrong.filter(lambda t: t != TOKEN).map(lambda t: [("authorization", f"Bearer {t}")]),
        st.sampled_from([
            [("authorization", TOKEN)],                      # no "Bearer "
            [("authorization", f"Bearer {TOKEN[:-1]}")],     # one character short
            [("authorization", f"Bearer {TOKEN}x")],         # one too many
            [("authorization", f"bearer {TOKEN}")],
            [("authorization", "Bearer " + "A" * 6000)],     # within gRPC's 8 KiB header limit
            [("authorization", "")],
            [("authorization-bin", TOKEN.encode())],
            [("x-token", f"Bearer {TOKEN}")],
        ]),
    )


def pickle_bomb(marker: pathlib.Path) -> bytes:
    """A pickle that creates `marker` when unpickled."""
    import pickle

    class Bomb:
        def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
            return (pathlib.Path.touch, (marker,))

    return pickle.dumps(Bomb())


def with_every_bytes_field(descriptor: pb_descriptor.Descriptor, blob: bytes, depth: int = 0) -> Message:
    """A message of `descriptor` whose every bytes field (nested too, one
    element in each list) holds `blob`."""
    cls = message_factory.GetMessageClass(descriptor)
    values: dict[str, Any] = {}
    for field in descriptor.fields:
        repeated = field.is_repeated
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        if field.type == field.TYPE_BYTES:
            values[field.name] = [blob] if repeated else blob
        elif field.message_type is not None and depth < 3:
            inner = with_every_bytes_field(field.message_type, blob, depth + 1)
            values[field.name] = [inner] if repeated else inner
    return cls(**values)


@contextlib.contextmanager
def gcs_and_store(root: pathlib.Path) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """A GCS and an object store, each alone."""
    directory = pathlib.Path(f"/dev/shm/ember-fuzz-{os.getpid()}-{root.name[-6:]}")
    started: list[ServiceProcess] = []
    try:
        started.append(ServiceProcess("gcs", ["ember-gcs"], root / "gcs"))
        started.append(ServiceProcess("store", ["ember-objectstore", "--directory", str(directory),
                                                "--capacity", str(64 << 20)], root / "store"))
        yield started[0], started[1]
    finally:
        for service in started:
            service.stop()
