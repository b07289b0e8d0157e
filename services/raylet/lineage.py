"""What it takes to rebuild objects this raylet owns whose only copy lives
on another node: the spec of the task that made them (and its arguments,
kept pinned), for as long as any of those returns lives here.

Only tasks with a return stored on another node are kept: inline values
travel with their owner, and an object stored on this node dies with it.
"""

from __future__ import annotations

import dataclasses

from ember.v1 import raylet_pb2

from ember_common import ids
from ember_raylet.client_session import ClientSession


@dataclasses.dataclass
class LineageEntry:
    spec: raylet_pb2.TaskSpec
    submitter: ClientSession
    live: set[bytes]  # its returns that still live here
    rebuilds: int = 0


class Lineage:
    def __init__(self) -> None:
        self.entries: dict[bytes, LineageEntry] = {}  # by task id

    def record(self, spec: raylet_pb2.TaskSpec, submitter: ClientSession, live: set[bytes]) -> None:
        self.entries[spec.task_id] = LineageEntry(spec, submitter, live)

    def of_object(self, object_id: bytes) -> LineageEntry | None:
        return self.entries.get(ids.task_id_of(object_id))

    def release(self, object_id: bytes) -> raylet_pb2.TaskSpec | None:
        """A return was freed; the spec if it was the last (unpin its args)."""
        entry = self.entries.get(ids.task_id_of(object_id))
        if entry is None:
            return None
        entry.live.discard(object_id)
        if entry.live:
            return None
        del self.entries[entry.spec.task_id]
        return entry.spec
