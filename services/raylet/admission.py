"""Backpressure instead of a raylet that grows until the kernel kills it.

Two things a client sends cost the raylet memory without bound:

- Queued tasks (spec, entry, the returns' records). When the raylet keeps
  `max_queued_tasks` or more, the driver whose batch brought it there is
  told to hold its submissions; every held driver is told to go on once the
  raylet is back under 90% of the limit (hysteresis: no flapping per task).
  What was sent meanwhile is queued, so the overshoot is what a driver
  submits in one round trip. Only drivers are held: a worker that submits
  waits in `get` for what it submitted more often than not, holding its CPU
  while it waits to submit, and a tree of nested tasks could deadlock.
- Small values kept inline in the raylet (puts and task returns under the
  inline threshold). Past `max_inline_bytes` every client is told to write
  even small values to the shared-memory store, which spills to disk and
  says ObjectStoreFullError when that is full too; under 90% they go back
  inline.

The state goes out as RayletBatch.backpressure, whole, to the sessions it
concerns (and to every client that connects meanwhile).
"""

from __future__ import annotations

from typing import Iterable

from ember.v1 import raylet_pb2

from ember_raylet.client_session import DRIVER, RAYLET, ClientSession

RESUME_FRACTION = 0.9
# When the node's memory is unknown: ~2 KB per queued task, 4 GB of them.
DEFAULT_MAX_QUEUED_TASKS = 2_000_000
DEFAULT_MAX_INLINE_BYTES = 4 << 30
# Of the node's memory, what each may take by default (settings of 0).
QUEUED_TASKS_MEMORY_FRACTION = 0.2
INLINE_VALUES_MEMORY_FRACTION = 0.1
TASK_BYTES_ESTIMATE = 2048


def default_max_queued_tasks(node_memory_bytes: int) -> int:
    """max_queued_tasks for a node of this much memory: a fifth of it at
    ~2 KB per queued task (2.4 million on 24 GiB), never under 10,000."""
    if node_memory_bytes <= 0:
        return DEFAULT_MAX_QUEUED_TASKS
    return max(10_000, int(node_memory_bytes * QUEUED_TASKS_MEMORY_FRACTION / TASK_BYTES_ESTIMATE))


def default_max_inline_bytes(node_memory_bytes: int) -> int:
    """max_inline_bytes for a node of this much memory: a tenth of it, never under 64 MiB."""
    if node_memory_bytes <= 0:
        return DEFAULT_MAX_INLINE_BYTES
    return max(64 << 20, int(node_memory_bytes * INLINE_VALUES_MEMORY_FRACTION))


class Admission:
    def __init__(self, max_queued_tasks: int = DEFAULT_MAX_QUEUED_TASKS,
                 max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES) -> None:
        if max_queued_tasks < 1 or max_inline_bytes < 1:
            raise ValueError(f"max_queued_tasks and max_inline_bytes must be positive, got "
                             f"{max_queued_tasks} and {max_inline_bytes}")
        self.max_queued_tasks = max_queued_tasks
        self.resume_below = max(1, int(max_queued_tasks * RESUME_FRACTION))
        self.max_inline_bytes = max_inline_bytes
        self.held: dict[bytes, ClientSession] = {}  # client id -> a driver told to hold
        self.holds_total = 0
        self.store_small_values = False  # clients were told to write small values to the store
        self._queued = 0
        self._inline = 0

    @property
    def engaged(self) -> bool:
        """Whether anything is held or redirected (what `drained` may release)."""
        return bool(self.held) or self.store_small_values

    def submitted(self, session: ClientSession, queued: int) -> None:
        """`session` submitted; the raylet now keeps `queued` tasks."""
        if queued >= self.max_queued_tasks and session.kind == DRIVER and session.client_id not in self.held:
            self._queued = queued
            self.held[session.client_id] = session
            self.holds_total += 1
            self._tell(session)

    def stored_inline(self, inline_bytes: int, sessions: Iterable[ClientSession]) -> None:
        """Small values came in; the raylet now keeps `inline_bytes` of them."""
        if inline_bytes > self.max_inline_bytes and not self.store_small_values:
            self._inline = inline_bytes
            self.store_small_values = True
            for session in sessions:
                self._tell(session)

    def drained(self, queued: int, inline_bytes: int, sessions: Iterable[ClientSession]) -> None:
        """Tasks or values left the raylet: release what is back under its mark."""
        self._queued, self._inline = queued, inline_bytes
        told: list[ClientSession] = []
        if self.held and queued < self.resume_below:
            told, self.held = list(self.held.values()), {}
        if self.store_small_values and inline_bytes < self.max_inline_bytes * RESUME_FRACTION:
            self.store_small_values = False
            told = list(sessions)
        for session in told:
            self._tell(session)

    def connected(self, session: ClientSession) -> None:
        if self.store_small_values:
            self._tell(session)

    def forget(self, session: ClientSession) -> None:
        self.held.pop(session.client_id, None)

    def _tell(self, session: ClientSession) -> None:
        if session.closed or session.kind == RAYLET:
            return
        session.outbox.backpressure.CopyFrom(raylet_pb2.Backpressure(
            hold_submissions=session.client_id in self.held, queued_tasks=self._queued,
            max_queued_tasks=self.max_queued_tasks, store_small_values=self.store_small_values,
            inline_bytes=self._inline, max_inline_bytes=self.max_inline_bytes))
        session.touch()
