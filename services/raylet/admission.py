"""Backpressure instead of a raylet that grows until the kernel kills it.

Two things a client sends cost the raylet memory without bound:

- Queued tasks (spec, entry, the returns' records: ~4-5 KB each here).
  Once the raylet keeps `max_queued_tasks` or more, the driver whose batch
  brought it there is held: from then on it sends tasks only within an
  allowance (a count of tasks since it connected) and keeps the rest
  itself, serialized (~0.2 KB each, in submission order, with whatever it
  sent after them): the owner's queue, as in Ray, so `.remote()` never
  waits. Each time the raylet is back under 90% of the limit, every held
  driver that has used up its allowance gets a share of the room (the limit
  less what is kept). A held driver stays on allowances for the rest of
  its connection; one it does not use just waits. Only drivers are held: a
  worker that submits waits in `get` for what it submitted more often than
  not, and a tree of nested tasks could deadlock.
- Small values kept inline in the raylet (puts and task returns under the
  inline threshold). Past `max_inline_bytes` every client is told to write
  even small values to the shared-memory store, which spills to disk and
  says ObjectStoreFullError when that is full too; under 90% they go back
  inline.

The state goes out as RayletBatch.backpressure, whole, to the sessions it
concerns (and to every client that connects meanwhile).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from ember.v1 import raylet_pb2

from ember_raylet.client_session import DRIVER, RAYLET, ClientSession

RESUME_FRACTION = 0.9
# Past this many the raylet's queue costs memory and buys nothing: 2,000
# tasks are ~0.2 s of work for a node at its task rate, time enough for a
# held driver to send more, which keeps the rest at a tenth of the
# raylet's cost per task (~0.3 KB against ~4: a spec sent alone keeps its
# batch's parsing arena, ~1.3 KB, besides its entries). At 10,000 a queue
# of 10,000 cost 4.5 KB a task; at 2,000, 0.6 KB (bench/scale.py queue).
DEFAULT_MAX_QUEUED_TASKS = 2_000
DEFAULT_MAX_INLINE_BYTES = 4 << 30
# Of the node's memory, what each may take by default (settings of 0).
QUEUED_TASKS_MEMORY_FRACTION = 0.05
INLINE_VALUES_MEMORY_FRACTION = 0.1
TASK_BYTES_ESTIMATE = 5000  # what a queued task costs the raylet (bench/queue_memory.py)


def default_max_queued_tasks(node_memory_bytes: int) -> int:
    """max_queued_tasks for a node of this much memory: 2,000, or fewer
    where a twentieth of its memory holds fewer (never under 1,000)."""
    if node_memory_bytes <= 0:
        return DEFAULT_MAX_QUEUED_TASKS
    by_memory = int(node_memory_bytes * QUEUED_TASKS_MEMORY_FRACTION / TASK_BYTES_ESTIMATE)
    return max(1_000, min(DEFAULT_MAX_QUEUED_TASKS, by_memory))


def default_max_inline_bytes(node_memory_bytes: int) -> int:
    """max_inline_bytes for a node of this much memory: a tenth of it, never under 64 MiB."""
    if node_memory_bytes <= 0:
        return DEFAULT_MAX_INLINE_BYTES
    return max(64 << 20, int(node_memory_bytes * INLINE_VALUES_MEMORY_FRACTION))


@dataclasses.dataclass(slots=True)
class HeldDriver:
    session: ClientSession
    allowance: int  # the ClientSession.submitted it may reach until it is told more


class Admission:
    def __init__(self, max_queued_tasks: int = DEFAULT_MAX_QUEUED_TASKS,
                 max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES) -> None:
        if max_queued_tasks < 1 or max_inline_bytes < 1:
            raise ValueError(f"max_queued_tasks and max_inline_bytes must be positive, got "
                             f"{max_queued_tasks} and {max_inline_bytes}")
        self.max_queued_tasks = max_queued_tasks
        self.resume_below = max(1, int(max_queued_tasks * RESUME_FRACTION))
        self.max_inline_bytes = max_inline_bytes
        self.held: dict[bytes, HeldDriver] = {}  # client id -> a driver on allowances
        self.holds_total = 0
        self.store_small_values = False  # clients were told to write small values to the store
        self._queued = 0
        self._inline = 0

    @property
    def engaged(self) -> bool:
        """Whether anything is held or redirected (what `drained` may release)."""
        return bool(self.held) or self.store_small_values

    def submitted(self, session: ClientSession, count: int, queued: int) -> None:
        """`session` submitted `count` tasks; the raylet now keeps `queued`."""
        session.submitted += count
        if queued >= self.max_queued_tasks and session.kind == DRIVER and session.client_id not in self.held:
            self._queued = queued
            self.held[session.client_id] = HeldDriver(session, session.submitted)  # no more until there is room
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
        told: dict[bytes, ClientSession] = {}
        if self.held and queued < self.resume_below:
            spent = [held for held in self.held.values() if held.session.submitted >= held.allowance]
            if spent:
                share = max(1, (self.max_queued_tasks - queued) // len(spent))
                for held in spent:
                    held.allowance = held.session.submitted + share
                    told[held.session.client_id] = held.session
        if self.store_small_values and inline_bytes < self.max_inline_bytes * RESUME_FRACTION:
            self.store_small_values = False
            told = {session.client_id: session for session in sessions}
        for session in told.values():
            self._tell(session)

    def connected(self, session: ClientSession) -> None:
        if self.store_small_values:
            self._tell(session)

    def forget(self, session: ClientSession) -> None:
        self.held.pop(session.client_id, None)

    def _tell(self, session: ClientSession) -> None:
        if session.closed or session.kind == RAYLET:
            return
        held = self.held.get(session.client_id)
        session.outbox.backpressure.CopyFrom(raylet_pb2.Backpressure(
            hold_submissions=held is not None, submit_allowance=held.allowance if held else 0,
            queued_tasks=self._queued,
            max_queued_tasks=self.max_queued_tasks, store_small_values=self.store_small_values,
            inline_bytes=self._inline, max_inline_bytes=self.max_inline_bytes))
        session.touch()
