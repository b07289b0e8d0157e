"""Backpressure on drivers' submissions, instead of a raylet that grows
until the kernel kills it.

Each queued task costs the raylet memory (its spec, its entry, its returns'
records). When it keeps `max_queued_tasks` or more, the driver whose batch
brought it there is told to hold its submissions (RayletBatch.submissions);
every driver held is told to go on once the raylet is back under 90% of the
limit (hysteresis: no flapping per task). What was sent meanwhile is
queued, so the overshoot is what a driver submits in one round trip.

Only drivers are held. A worker that submits waits in `get` for what it
submitted more often than not, holding its CPU while it waits to submit;
holding workers could deadlock a tree of nested tasks.
"""

from __future__ import annotations

from ember.v1 import raylet_pb2

from ember_raylet.client_session import DRIVER, ClientSession

RESUME_FRACTION = 0.9
# When the node's memory is unknown: ~2 KB per queued task, 4 GB of them.
DEFAULT_MAX_QUEUED_TASKS = 2_000_000
# Of the node's memory, what queued tasks may take by default (max_queued_tasks=0).
QUEUED_TASKS_MEMORY_FRACTION = 0.2
TASK_BYTES_ESTIMATE = 2048


def default_max_queued_tasks(node_memory_bytes: int) -> int:
    """max_queued_tasks for a node of this much memory: a fifth of it at
    ~2 KB per queued task (2.4 million on 24 GiB), never under 10,000."""
    if node_memory_bytes <= 0:
        return DEFAULT_MAX_QUEUED_TASKS
    return max(10_000, int(node_memory_bytes * QUEUED_TASKS_MEMORY_FRACTION / TASK_BYTES_ESTIMATE))


class SubmissionGate:
    def __init__(self, max_queued_tasks: int) -> None:
        if max_queued_tasks < 1:
            raise ValueError(f"max_queued_tasks must be at least 1, got {max_queued_tasks}")
        self.max_queued_tasks = max_queued_tasks
        self.resume_below = max(1, int(max_queued_tasks * RESUME_FRACTION))
        self.held: dict[bytes, ClientSession] = {}  # client id -> a driver told to hold
        self.holds_total = 0

    def submitted(self, session: ClientSession, queued: int) -> None:
        """`session` submitted; the raylet now keeps `queued` tasks."""
        if queued >= self.max_queued_tasks and session.kind == DRIVER and session.client_id not in self.held:
            self.held[session.client_id] = session
            self.holds_total += 1
            self._tell(session, True, queued)

    def drained(self, queued: int) -> None:
        """Tasks left the raylet (or a driver went away): release every held
        driver once under the resume mark."""
        if queued < self.resume_below:
            held, self.held = self.held, {}
            for session in held.values():
                if not session.closed:
                    self._tell(session, False, queued)

    def forget(self, session: ClientSession) -> None:
        self.held.pop(session.client_id, None)

    def _tell(self, session: ClientSession, hold: bool, queued: int) -> None:
        session.outbox.submissions.CopyFrom(raylet_pb2.SubmissionWindow(
            held=hold, queued_tasks=queued, max_queued_tasks=self.max_queued_tasks))
        session.touch()
