"""Direct actor calls: a caller on the actor's node sends a call straight to
the actor's worker, and the result comes straight back, with no raylet in
between (two socket hops instead of four; on a 2-core VM each hop's wake-up
is most of a sync call's cost).

The worker listens on an abstract unix socket named after the session and
the actor (`DirectCallServer`); a caller keeps one connection per actor
(`ActorChannel`). The protocol (frames, what goes direct, what happens when
the connection breaks) is described with DirectCalls in raylet.proto; the
caller's bookkeeping of the results lives in CoreClient.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import threading
import time
from typing import Any, Callable

from ember_common.frames import MAX_TOKEN_FRAME, read_frames, recv_frame, send_frame
from ember.v1 import raylet_pb2
from google.protobuf.message import DecodeError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
# After a failed connect (the actor is not up yet, or restarting), calls go
# through the raylet for this long before the next try.
RETRY_AFTER_S = 0.2


def socket_address(session_dir: str, actor_id: bytes) -> str:
    """Abstract namespace: no file to clean up after a killed worker, no
    path length limit; the token guards it as the session dir's 0700 does."""
    session = hashlib.blake2b(session_dir.encode(), digest_size=8).hexdigest()
    return f"\0ember-{session}-{actor_id.hex()}"


# ---- the actor's side ------------------------------------------------------


class CallerConnection:
    """One caller connected to this actor; replies may come from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def reply(self, result: raylet_pb2.TaskResult) -> None:
        data = raylet_pb2.DirectReplies(results=[result]).SerializeToString()
        with self._lock:
            try:
                send_frame(self._sock, data)
            except OSError:
                pass  # the caller is gone: nobody waits for this result


class DirectCallServer:
    """Accepts callers for the actor this worker hosts. Calls go to
    `on_calls` (the worker's queue, in arrival order), cancels to
    `on_cancel`. Each caller has a reader thread."""

    def __init__(self, address: str, token: str, hello: raylet_pb2.DirectHello,
                 on_calls: Callable[[list[raylet_pb2.ExecuteTask], CallerConnection], None],
                 on_cancel: Callable[[list[bytes]], None]) -> None:
        self._address = address
        self._token = token.encode()
        self._hello = raylet_pb2.DirectReplies(hello=hello).SerializeToString()
        self._on_calls = on_calls
        self._on_cancel = on_cancel

    def start(self) -> None:
        """Listen before the actor reports ready (so its callers' first
        try finds it), unless the name is still taken (then in the background)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self._address)
            listener.listen(64)
            bound = True
        except OSError:
            bound = False
        threading.Thread(target=self._serve, args=(listener, bound), name="ember-direct-accept", daemon=True).start()

    def _serve(self, listener: socket.socket, bound: bool) -> None:
        deadline = time.monotonic() + 10
        while not bound:
            try:
                listener.bind(self._address)
                listener.listen(64)
                bound = True
            except OSError:
                # The previous incarnation's process may not be gone yet;
                # until we bind, callers use the raylet.
                if time.monotonic() > deadline:
                    log.warning("direct call socket stays taken; calls go through the raylet")
                    listener.close()
                    return
                time.sleep(0.05)
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=self._caller, args=(sock,), name="ember-direct-caller", daemon=True).start()

    def _caller(self, sock: socket.socket) -> None:
        conn = CallerConnection(sock)
        try:
            if not hmac.compare_digest(recv_frame(sock, MAX_TOKEN_FRAME), self._token):
                return
            send_frame(sock, self._hello)
            for data in read_frames(sock):
                batch = raylet_pb2.DirectCalls.FromString(data)
                if batch.calls:
                    self._on_calls(list(batch.calls), conn)
                if batch.cancel:
                    self._on_cancel(list(batch.cancel))
        except Exception as e:  # a broken or malformed caller: drop it, keep serving the others
            log.warning("direct caller dropped: %s", e)
        finally:
            sock.close()


# ---- the caller's side ------------------------------------------------------


class ActorChannel:
    """A caller's route to one actor: its direct connection (if any), the
    calls in flight on it, and the calls that wait for them to finish before
    going through the raylet. Guarded by the client's direct-call lock."""

    def __init__(self, actor_id: bytes) -> None:
        self.actor_id = actor_id
        self.sock: socket.socket | None = None
        self.worker_id = b""
        # task id -> (spec, what must live until the result is in)
        self.inflight: dict[bytes, tuple[raylet_pb2.TaskSpec, Any]] = {}
        self.raylet_calls = 0  # calls on their way through the raylet
        self.returnless = False  # a num_returns=0 call went via the raylet: its end is never seen
        self.deferred: list[tuple[raylet_pb2.TaskSpec, Any]] = []  # (spec, what must live until it is submitted)
        self.cancel_deferred: set[bytes] = set()
        self.retry_at = 0.0
        self.elsewhere = False  # the actor lives on another node: always through the raylet
        # A kill of ours went to the raylet: until a call sent after it is
        # back (the raylet has handled the kill, the old worker is gone),
        # its worker may still answer a connect and run a call it must not.
        self.killed = False
        self.kill_barrier: bytes | None = None  # first return of the first call sent after the kill

    @property
    def direct_ok(self) -> bool:
        return (self.raylet_calls == 0 and not self.returnless and not self.deferred and not self.elsewhere
                and not self.killed)

    def connect(self, address: str, token: str, node_id: bytes) -> socket.socket | None:
        """Open the connection if the actor listens (None if not, for now)."""
        if time.monotonic() < self.retry_at:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(address)
            send_frame(sock, token.encode())
            hello = raylet_pb2.DirectReplies.FromString(recv_frame(sock)).hello
            if hello.actor_id != self.actor_id:
                raise ConnectionError("another actor answered")
            if hello.node_id != node_id:  # (nodes sharing a machine and a session dir)
                self.elsewhere = True
                raise ConnectionError("the actor is on another node")
            sock.settimeout(None)
        except (OSError, ValueError, DecodeError):
            sock.close()
            self.retry_at = time.monotonic() + RETRY_AFTER_S
            return None
        self.sock = sock
        self.worker_id = hello.worker_id
        return sock

    def send(self, calls: list[raylet_pb2.ExecuteTask] | None = None, cancel: list[bytes] | None = None) -> bool:
        """False if the connection is broken (its reader handles that)."""
        sock = self.sock
        if sock is None:
            return False
        try:
            send_frame(sock, raylet_pb2.DirectCalls(calls=calls or (), cancel=cancel or ()).SerializeToString())
            return True
        except OSError:
            return False

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

