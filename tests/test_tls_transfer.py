"""The object store's data plane over mutual TLS, between two real store
processes on loopback: objects (in memory and spilled) arrive whole as
sealed frames (services/objectstore/sealed_frames.py); a wrong token gets a
refusal and no data; bytes altered or cut short on the wire between the
stores (a proxy in the middle) fail the pull with a clear error, and the
puller keeps nothing of the object."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import random
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
    return random.Random(seed).randbytes(size)


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


class _Proxy:
    """A TCP proxy between a puller and a source. It forwards the source's
    bytes on its first connection with one of them flipped (`flip`) or the
    rest cut off (`truncate`) at `at` bytes into that connection's stream,
    or forwards everything (`pass`); `cut()` closes the connections it has."""

    def __init__(self, upstream: int, at: int = 0, mode: str = "pass") -> None:
        self._upstream, self._at, self._mode = upstream, at, mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self.seen = 0  # bytes from the source on the first connection
        self._open: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self._upstream))
            self._open += [client, server]
            self.connections += 1
            for target in (functools.partial(self._down, client, server, self.connections == 1),
                           functools.partial(self._up, client, server)):
                thread = threading.Thread(target=target, daemon=True)
                thread.start()
                self._threads.append(thread)

    def _down(self, client: socket.socket, server: socket.socket, first: bool) -> None:
        try:
            while chunk := server.recv(1 << 16):
                if first and self._mode != "pass":
                    start, self.seen = self.seen, self.seen + len(chunk)
                    if start <= self._at < self.seen:
                        i = self._at - start
                        if self._mode == "truncate":
                            client.sendall(chunk[:i])
                            break
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0x01]) + chunk[i + 1:]
                client.sendall(chunk)
        except OSError:
            pass  # cut, or the puller went away
        finally:
            for s in (client, server):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _up(client: socket.socket, server: socket.socket) -> None:
        try:
            while chunk := client.recv(1 << 16):
                server.sendall(chunk)
        except OSError:
            pass  # the other direction ended the connection

    def cut(self) -> None:
        for s in self._open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # (wakes the accepting thread; close alone does not)
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(30)
        for s in self._open:
            s.close()


@pytest.mark.parametrize("mode, error", [
    ("flip", "failed authentication: the data was altered in transit"),
    ("truncate", "before its authenticated last frame"),
])
def test_altered_or_truncated_bytes_fail_the_pull_and_nothing_is_kept(stores, mode, error):
    source, puller, _ = stores
    object_id = (b"tamper-" + mode.encode()).ljust(20, b"\0")
    data = _data(4 * MB, 7)
    source.put(object_id, data)
    tamper = _Proxy(source.transfer_port, 2 * MB, mode)
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


def test_later_pulls_reuse_the_connection_and_stay_sealed(stores):
    """After the first pull from a source, later ones reuse its connection
    (no handshake): requests, replies and data as sealed frames. A byte
    flipped in a later transfer on it still fails that pull; a connection the
    source side closed while idle is replaced by a new one."""
    source, puller, _ = stores
    objects = {f"reuse-{i}".encode().ljust(20, b"\0"): _data(size, 20 + i)
               for i, size in enumerate([MB, 2 * MB + 1, 3])}
    for object_id, data in objects.items():
        source.put(object_id, data)
    proxy = _Proxy(source.transfer_port)
    try:
        for object_id, data in objects.items():
            reply = _pull(puller, object_id, proxy.port, len(data))
            assert puller.read(reply.path, reply.offset, len(data)) == data
        assert proxy.connections == 1
        # Closed under the puller while idle (as the source does after a while, or a restart):
        # the next pull finds it closed before any reply and opens a new one.
        proxy.cut()
        object_id = b"reuse-after-cut".ljust(20, b"\0")
        source.put(object_id, _data(MB, 30))
        reply = _pull(puller, object_id, proxy.port, MB)
        assert puller.read(reply.path, reply.offset, MB) == _data(MB, 30)
        assert proxy.connections == 2
    finally:
        proxy.close()

    # A flipped byte in the second transfer on one connection (past the first object's 1 MiB).
    tamper = _Proxy(source.transfer_port, MB + 64 * 1024, "flip")
    first, second = b"reuse-first".ljust(20, b"\0"), b"reuse-second".ljust(20, b"\0")
    source.put(first, _data(MB // 2, 40))
    source.put(second, _data(2 * MB, 41))
    try:
        reply = _pull(puller, first, tamper.port, MB // 2)
        assert puller.read(reply.path, reply.offset, MB // 2) == _data(MB // 2, 40)
        with pytest.raises(grpc.RpcError) as caught:
            _pull(puller, second, tamper.port, 2 * MB)
    finally:
        tamper.close()
    assert tamper.connections == 1 and tamper.seen > MB + 64 * 1024
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "failed authentication" in caught.value.details() and second.hex() in caught.value.details()
    assert not puller.located(second).found
