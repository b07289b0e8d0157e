"""One connected driver or worker, seen from the raylet: who it is, what it
holds, and its outbox. Whatever the raylet produces for a client within one
event-loop turn leaves as one RayletBatch."""

from __future__ import annotations

import asyncio
import enum
from typing import Callable

from ember.v1 import raylet_pb2



class ClientKind(enum.IntEnum):
    """Who is on the other end: RegisterClient.Kind's values."""
    DRIVER = raylet_pb2.RegisterClient.DRIVER
    WORKER = raylet_pb2.RegisterClient.WORKER
    RAYLET = raylet_pb2.RegisterClient.RAYLET  # another node's raylet


DRIVER, WORKER, RAYLET = ClientKind.DRIVER, ClientKind.WORKER, ClientKind.RAYLET


class ClientSession:
    def __init__(self, client_id: bytes, kind: int, job_id: bytes = b"", worker_id: bytes = b"", pid: int = 0,
                 node_id: bytes = b"") -> None:
        self.client_id = client_id
        self.kind = kind
        self.job_id = job_id
        self.worker_id = worker_id
        self.pid = pid
        self.node_id = node_id  # RAYLET sessions: the peer's node
        self.held: set[bytes] = set()  # object ids this client refers to
        # Objects it promised to put (results of its direct actor calls it
        # passed on before they arrived): OwnerDiedError if it goes first.
        self.promised: set[bytes] = set()
        self.closed = False
        # Tasks it submitted since it connected: what a driver's submit
        # allowance counts (ember_raylet.admission).
        self.submitted = 0
        self._outbox = raylet_pb2.RayletBatch()
        self._dirty = False
        self._wake = asyncio.Event() if _has_loop() else None
        # A transport that sends as soon as told (the local socket) sets
        # this; otherwise a writer task waits on `next_batch`.
        self.notify: Callable[[], None] | None = None

    def describe(self) -> str:
        if self.kind == RAYLET:
            return f"node {self.node_id.hex()[:8]}"
        return f"{'driver' if self.kind == DRIVER else 'worker'} pid {self.pid}"

    @property
    def outbox(self) -> raylet_pb2.RayletBatch:
        """The batch being filled; mark it with `touch()` after adding."""
        return self._outbox

    def touch(self) -> None:
        self._dirty = True
        if self.notify is not None:
            self.notify()
        elif self._wake is not None:
            self._wake.set()

    def take(self) -> raylet_pb2.RayletBatch | None:
        if not self._dirty:
            return None
        batch, self._outbox, self._dirty = self._outbox, raylet_pb2.RayletBatch(), False
        return batch

    async def next_batch(self) -> raylet_pb2.RayletBatch | None:
        """Wait for something to send; None once the session is closed."""
        assert self._wake is not None
        while True:
            batch = self.take()
            if batch is not None:
                return batch
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()

    def close(self) -> None:
        self.closed = True
        if self.notify is not None:
            self.notify()
        elif self._wake is not None:
            self._wake.set()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
