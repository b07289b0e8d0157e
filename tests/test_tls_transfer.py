"""The object store's data plane over mutual TLS, between two real store
processes on loopback: objects (in memory and spilled) arrive whole as
sealed frames (services/objectstore/sealed_frames.py); a wrong token gets a
refusal and no data; bytes altered or cut short on the wire between the
stores (a proxy in the middle) fail the pull with a clear error, and the
puller keeps nothing of the object."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import socket
import struct
import subprocess
import sys
import threading
from typing import Iterator

import grpc
import pytest

from ember._private import certificates
from ember.v1 import objectstore_pb2 as pb
from ember.v1 import objectstore_pb2_grpc
from ember_common import auth, rpc
from ember_common.tls import TlsFiles
from tests.conftest import pid_gone
from tests.helpers import wait_until

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "test-token-tls-transfer"
MB = 1 << 20


@dataclasses.dataclass
class Store:
    proc: subprocess.Popen[bytes]
    stub: objectstore_pb2_grpc.ObjectStoreStub
    transfer_port: int
    directory: pathlib.Path

    def put(self, object_id: bytes, data: bytes) -> None:
        created = self.stub.Create(pb.CreateRequest(object_id=object_id, size=len(data)), timeout=10)
        fd = os.open(created.path, os.O_RDWR)
        try:
            os.pwrite(fd, data, created.offset)
        finally:
            os.close(fd)
        self.stub.Seal(pb.SealRequest(object_id=object_id), timeout=10)

    def read(self, path: str, offset: int, size: int) -> bytes:
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def located(self, object_id: bytes) -> pb.LocateReply.Entry:
        return self.stub.Locate(pb.LocateRequest(object_ids=[object_id]), timeout=10).entries[0]


def _start_store(base: pathlib.Path, name: str, files: TlsFiles, capacity: int) -> tuple[Store, grpc.Channel]:
    session = base / name
    (session / "logs").mkdir(parents=True)
    ready = session / "ready.json"
    directory = pathlib.Path(f"/dev/shm/ember-tls-transfer-{os.getpid()}-{name}")
    proc = subprocess.Popen([sys.executable, "-m", "ember_objectstore.main", "--session-dir", str(session),
                             "--socket", str(session / "store.sock"), "--directory", str(directory),
                             "--capacity", str(capacity), "--ready-file", str(ready)],
                            env={**os.environ, auth.TOKEN_ENV: TOKEN, **files.env()}, cwd=ROOT)
    wait_until(lambda: ready.exists() or proc.poll() is not None, timeout=30, what=f"the {name} store to start")
    assert proc.poll() is None, (session / "logs").glob("*")
    info = json.loads(ready.read_text())
    channel = rpc.channel(f"unix:{session / 'store.sock'}", TOKEN)
    return Store(proc, objectstore_pb2_grpc.ObjectStoreStub(channel), info["transfer_port"], directory), channel


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store, TlsFiles]]:
    """A source store (small: it spills) and a puller store, both with the
    same cluster CA, serving their data planes over mutual TLS."""
    base = tmp_path_factory.mktemp("tls-transfer")
    ca_cert, ca_key = certificates.make_ca(base / "ca", "tls-transfer-test")
    files = certificates.issue_node(base / "node", ca_cert, ca_key, ["127.0.0.1"])
    started: list[tuple[Store, grpc.Channel]] = []
    try:
        started.append(_start_store(base, "source", files, 64 * MB))
        started.append(_start_store(base, "puller", files, 256 * MB))
        yield started[0][0], started[1][0], files
    finally:
        for store, channel in started:
            channel.close()
            store.proc.terminate()
            assert store.proc.wait(30) == 0
            assert pid_gone(store.proc.pid) and not store.directory.exists()


def _pull(store: Store, object_id: bytes, port: int, size: int) -> pb.PullReply:
    return store.stub.Pull(pb.PullRequest(object_id=object_id, source_address=f"127.0.0.1:{port}", size=size),
                           timeout=60)


def _data(size: int, seed: int) -> bytes:
    return (struct.pack("<Q", seed) + os.urandom(4088)) * (size // 4096) + os.urandom(size % 4096)


def test_objects_in_memory_and_spilled_arrive_whole_over_tls(stores):
    source, puller, _ = stores
    # 40 MiB: two ranges on two connections at once (MIN_RANGE is 16 MiB), each with its own key.
    # The source holds 64 MiB, so the first object is spilled by the time the last is made.
    objects = {bytes([i]) * 20: _data(size, i) for i, size in enumerate([20 * MB, 40 * MB, 1, 10 * MB + 3])}
    for object_id, data in objects.items():
        source.put(object_id, data)
    first = next(iter(objects))
    assert source.located(first).spilled
    for object_id, data in objects.items():
        reply = _pull(puller, object_id, source.transfer_port, len(data))
        assert puller.read(reply.path, reply.offset, len(data)) == data
        assert puller.located(object_id).found


def test_a_wrong_token_is_refused_inside_tls_before_any_data(stores):
    source, _, files = stores
    object_id = b"\x42" * 20
    source.put(object_id, b"x" * MB)
    context = files.client_context()
    for token in (b"not-the-token", b""):
        request = len(token).to_bytes(2, "little") + token + object_id + struct.pack("<QQ", 0, 0) + bytes(25)
        with socket.create_connection(("127.0.0.1", source.transfer_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                sock.sendall(request + os.urandom(32))
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
        assert answer == bytes([2]) + bytes(8)  # BAD_TOKEN, then the connection ends: no key, no data


class _Tamper:
    """A TCP proxy between a puller and a source that forwards the source's
    bytes with one of them flipped, or cut off, at `at` bytes into the
    stream (past the TLS handshake and reply: inside the sealed frames)."""

    def __init__(self, upstream: int, at: int, mode: str) -> None:
        self._upstream, self._at, self._mode = upstream, at, mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.seen = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client, _ = self._listener.accept()
        with client, socket.create_connection(("127.0.0.1", self._upstream)) as server:
            threading.Thread(target=self._forward_requests, args=(client, server), daemon=True).start()
            while chunk := server.recv(1 << 16):
                start, self.seen = self.seen, self.seen + len(chunk)
                if start <= self._at < self.seen:
                    if self._mode == "truncate":
                        client.sendall(chunk[:self._at - start])
                        client.shutdown(socket.SHUT_RDWR)
                        return
                    i = self._at - start
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0x01]) + chunk[i + 1:]
                client.sendall(chunk)

    @staticmethod
    def _forward_requests(client: socket.socket, server: socket.socket) -> None:
        try:
            while chunk := client.recv(1 << 16):
                server.sendall(chunk)
        except OSError:
            pass  # the other direction ended the connection

    def close(self) -> None:
        self._thread.join(30)
        self._listener.close()


@pytest.mark.parametrize("mode, error", [
    ("flip", "failed authentication: the data was altered in transit"),
    ("truncate", "before the range's authenticated last frame"),
])
def test_altered_or_truncated_bytes_fail_the_pull_and_nothing_is_kept(stores, mode, error):
    source, puller, _ = stores
    object_id = (b"tamper-" + mode.encode()).ljust(20, b"\0")
    data = _data(4 * MB, 7)
    source.put(object_id, data)
    tamper = _Tamper(source.transfer_port, 2 * MB, mode)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            _pull(puller, object_id, tamper.port, len(data))
    finally:
        tamper.close()
    assert tamper.seen > 2 * MB  # the frames had started to flow
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error in caught.value.details() and object_id.hex() in caught.value.details()
    # Nothing of it kept: not found, nothing left unsealed; pulled straight from the source it arrives whole.
    assert not puller.located(object_id).found
    assert puller.stub.Stats(pb.StatsRequest(), timeout=10).num_unsealed == 0
    reply = _pull(puller, object_id, source.transfer_port, len(data))
    assert puller.read(reply.path, reply.offset, len(data)) == data
