"""The objects this raylet owns: readiness, values of small objects,
reference counts, subscriptions.

An object lives while any client holds it or anything pins it (a pending
task that takes it as an argument, or a live object that contains a ref to
it). When neither remains it is freed: its inline value dropped, and if it
lives in this node's object store (the primary copy, or a copy pulled from
another node), noted for the store to delete; if another node's raylet keeps
it for us (a spilled task's stored return), noted for that raylet to release.
What freeing set off is taken as one `Freed` (`take_freed`) by the node
manager, which tells the store, the peers and the lenders.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from ember.v1 import common_pb2, raylet_pb2

from ember_common import ids
from ember_common.object_layout import Failure

from ember_raylet.client_session import ClientSession


def error_value(object_id: bytes, error: Failure) -> common_pb2.ObjectValue:
    """The value that stands for an object in place of what failed to make it."""
    return common_pb2.ObjectValue(object_id=object_id, data=error.encode(), is_error=True)


class ObjectEntry:
    __slots__ = ("value", "holders", "pins", "subscribers", "waiting_tasks", "local_copy", "remote", "lender")

    def __init__(self) -> None:
        self.value: common_pb2.ObjectValue | None = None  # None while pending
        self.holders: set[ClientSession] = set()
        self.pins = 0
        self.subscribers: set[ClientSession] = set()
        self.waiting_tasks: list[bytes] = []
        self.local_copy = False  # a stored value pulled into this node's store
        self.remote: bytes | None = None  # the node whose raylet keeps it for us
        self.lender: ClientSession | None = None  # the peer that owns it and lent it to us (borrowed)


@dataclasses.dataclass(slots=True)
class Freed:
    """What freeing objects set off since the directory was last asked."""
    watched: list[bytes] = dataclasses.field(default_factory=list)  # watched objects now freed
    store_deletes: list[bytes] = dataclasses.field(default_factory=list)  # copies this node's store may drop
    remote_releases: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)  # (node id, object id)
    borrow_returns: list[tuple[ClientSession, bytes]] = dataclasses.field(default_factory=list)  # (lender, id)


class ObjectDirectory:
    def __init__(self, node_id: bytes = b"") -> None:
        self.node_id = node_id
        self._objects: dict[bytes, ObjectEntry] = {}
        self._freed = Freed()
        self.inline_bytes = 0
        # Objects whose freeing someone waits for (actor handles going out
        # of scope): reported in `Freed.watched`.
        self._watched: set[bytes] = set()

    def take_freed(self) -> Freed | None:
        """What freeing set off since the last call; None if nothing (the
        common case, checked after every batch: no allocation then)."""
        freed = self._freed
        if not (freed.watched or freed.store_deletes or freed.remote_releases or freed.borrow_returns):
            return None
        self._freed = Freed()
        return freed

    def watch(self, object_ids: Iterable[bytes]) -> None:
        """Report these objects in `Freed.watched` once they are freed."""
        self._watched.update(object_ids)

    def delete_copy(self, object_id: bytes) -> None:
        """A copy in this node's store that nothing here tracks: the store may drop it."""
        self._freed.store_deletes.append(object_id)

    def __len__(self) -> int:
        return len(self._objects)

    def counts(self) -> tuple[int, int]:
        """How many objects there are, and how many of them are pinned (metrics)."""
        return len(self._objects), sum(1 for entry in self._objects.values() if entry.pins > 0)

    def __contains__(self, object_id: bytes) -> bool:
        return object_id in self._objects

    def get(self, object_id: bytes) -> common_pb2.ObjectValue | None:
        entry = self._objects.get(object_id)
        return entry.value if entry else None

    def stored_on(self, value: common_pb2.ObjectValue) -> bytes | None:
        """The node whose store holds a stored value (None: inline)."""
        if value.WhichOneof("location") != "stored_size":
            return None
        return value.node_id or self.node_id

    def is_local(self, object_id: bytes) -> bool:
        """Whether a ready object can be read on this node now."""
        entry = self._objects[object_id]
        value = entry.value
        assert value is not None
        return entry.local_copy or self.stored_on(value) in (None, self.node_id)

    def local_value(self, object_id: bytes) -> common_pb2.ObjectValue:
        """The value as a reader on this node sees it (a pulled copy is ours)."""
        entry = self._objects[object_id]
        value = entry.value
        assert value is not None
        if entry.local_copy and value.node_id != self.node_id:
            value = common_pb2.ObjectValue()
            value.CopyFrom(entry.value)
            value.node_id = self.node_id
        return value

    def only_on(self, node_id: bytes) -> list[bytes]:
        """Ready stored objects whose one copy we know of is in node
        `node_id`'s store (none pulled here): lost if that node goes."""
        return [object_id for object_id, entry in self._objects.items()
                if entry.value is not None and not entry.local_copy and self.stored_on(entry.value) == node_id]

    def mark_local_copy(self, object_id: bytes) -> bool:
        """A pull finished; False if the object was freed meanwhile (the
        caller deletes the copy)."""
        entry = self._objects.get(object_id)
        if entry is None:
            return False
        entry.local_copy = True
        return True

    def provide(self, values: Iterable[common_pb2.ObjectValue], lender: ClientSession) -> list[bytes]:
        """Values a peer sent along with its tasks: added unheld if unknown
        (the tasks' pins keep them). All entries exist before any value is
        set, so a value pins the refs inside it whatever their order.
        Returns the stored ones now borrowed from the peer: it keeps them
        until this node frees them (`Freed.borrow_returns`), however long a ref
        to them lives here after the tasks."""
        fresh = [v for v in values if v.object_id not in self._objects]
        borrowed = []
        for value in fresh:
            entry = self._objects[value.object_id] = ObjectEntry()
            if value.WhichOneof("location") == "stored_size" and self.stored_on(value) != self.node_id:
                entry.lender = lender
                borrowed.append(value.object_id)
        for value in fresh:
            self.set_ready(value)
        return borrowed

    def add_unheld(self, object_ids: Iterable[bytes]) -> None:
        """Pending entries nobody holds yet, so that a value about to be set
        can pin them (a dynamic generator's values, inside its one return).
        `release_unused` drops those that nothing pinned."""
        for object_id in object_ids:
            if object_id not in self._objects:
                self._objects[object_id] = ObjectEntry()

    def release_unused(self, object_ids: Iterable[bytes]) -> None:
        for object_id in object_ids:
            entry = self._objects.get(object_id)
            if entry is not None:
                self._maybe_free(object_id, entry)

    def create_remote(self, object_id: bytes, node_id: bytes) -> None:
        """An object another node's raylet owns, now also referred to here:
        pending until that raylet sends its value, kept there for us until
        freed here."""
        entry = self._objects.get(object_id)
        if entry is None:
            entry = self._objects[object_id] = ObjectEntry()
        entry.remote = node_id

    def set_remote(self, object_id: bytes, node_id: bytes | None) -> None:
        entry = self._objects.get(object_id)
        if entry is not None:
            entry.remote = node_id

    def lost_node(self, node_id: bytes) -> tuple[list[bytes], list[tuple[bytes, bool]]]:
        """A node died: forget what its raylet kept for us (nothing to
        release there any more). Returns the objects it was to send us
        (pending), and those whose only copy was there, each with whether
        it was owned there."""
        pending, stored = [], []
        for object_id, entry in self._objects.items():
            owned_there = entry.remote == node_id
            if owned_there:
                entry.remote = None
            value = entry.value
            if value is None:
                if owned_there:
                    pending.append(object_id)
            elif not entry.local_copy and self.stored_on(value) == node_id:
                stored.append((object_id, owned_there))
        return pending, stored

    def reset(self, object_id: bytes) -> None:
        """A lost value about to be rebuilt: pending again (holders stay)."""
        entry = self._objects[object_id]
        old, entry.value, entry.local_copy = entry.value, None, False
        if entry.remote is not None:  # whatever copy a peer kept for us is moot now
            self._freed.remote_releases.append((entry.remote, object_id))
            entry.remote = None
        if old is not None:
            self.unpin(old.nested_ids)  # the rebuilt value has refs of its own

    def replace(self, value: common_pb2.ObjectValue) -> None:
        """A lost value that cannot be rebuilt: its error takes its place."""
        entry = self._objects[value.object_id]
        old, entry.value, entry.local_copy = entry.value, value, False
        self.inline_bytes += len(value.data)
        if old is not None:
            self.unpin(old.nested_ids)

    def describe(self, lineage: set[bytes]) -> list[raylet_pb2.ObjectInfo]:
        """Every object, for `ember memory` (tasks with lineage in `lineage`)."""
        out = []
        for object_id, entry in self._objects.items():
            info = raylet_pb2.ObjectInfo(object_id=object_id, ready=entry.value is not None, pins=entry.pins,
                                         local_copy=entry.local_copy,
                                         owner_node=entry.remote or (entry.lender.node_id if entry.lender else b""),
                                         lineage=object_id[:ids.UNIQUE_ID_SIZE] in lineage)
            value = entry.value
            if value is not None:
                info.is_error = value.is_error
                if value.WhichOneof("location") == "stored_size":
                    info.size, info.stored_on = value.stored_size, self.stored_on(value) or b""
                else:
                    info.size, info.inline = len(value.data), True
            for holder in entry.holders:
                info.holders.append(holder.describe())
            out.append(info)
        return out

    def is_ready(self, object_id: bytes) -> bool:
        entry = self._objects.get(object_id)
        return entry is not None and entry.value is not None

    def create_pending(self, object_id: bytes, owner: ClientSession) -> None:
        """A task's return: held by (and pushed to) the client that submitted it."""
        entry = self._objects.get(object_id)
        if entry is None:
            entry = self._objects[object_id] = ObjectEntry()
        entry.holders.add(owner)
        owner.held.add(object_id)
        if entry.value is not None:  # a task submitted again whose return is here already
            owner.outbox.ready.append(entry.value)
            owner.touch()
        else:
            entry.subscribers.add(owner)

    def set_streamed(self, value: common_pb2.ObjectValue, submitter: ClientSession) -> list[bytes]:
        """A value a streaming generator yielded: held by (and pushed to)
        the task's submitter as its returns are. Returns the tasks it unblocks."""
        self.create_pending(value.object_id, submitter)
        return self.set_ready(value)

    def put(self, value: common_pb2.ObjectValue, holder: ClientSession) -> list[bytes]:
        """An object a client created; returns the tasks it unblocks."""
        entry = self._objects.get(value.object_id)
        if entry is None:
            entry = self._objects[value.object_id] = ObjectEntry()
        entry.holders.add(holder)
        holder.held.add(value.object_id)
        return self.set_ready(value)

    def set_ready(self, value: common_pb2.ObjectValue) -> list[bytes]:
        """Record a value; notify subscribers. Returns the tasks waiting on it.
        A value nobody refers to any more is dropped at once."""
        entry = self._objects.get(value.object_id)
        if entry is None:
            if self.stored_on(value) == self.node_id:
                self._freed.store_deletes.append(value.object_id)
            return []
        if entry.value is not None:
            return []  # first value wins (a retried task may report twice)
        entry.value = value
        if value.WhichOneof("location") == "data":
            self.inline_bytes += len(value.data)
        for nested in value.nested_ids:
            self.pin(nested)
        for session in entry.subscribers:
            if not session.closed:
                session.outbox.ready.append(value)
                session.touch()
        entry.subscribers.clear()
        waiting, entry.waiting_tasks = entry.waiting_tasks, []
        return waiting

    def subscribe(self, object_id: bytes, session: ClientSession) -> bool:
        """Send the value to `session` when ready (now if it is). False if the
        object is unknown here."""
        entry = self._objects.get(object_id)
        if entry is None:
            return False
        if entry.value is not None:
            session.outbox.ready.append(entry.value)
            session.touch()
        else:
            entry.subscribers.add(session)
        return True

    def wait_for(self, object_id: bytes, task_id: bytes) -> bool:
        """Register a task waiting on a pending object. False if not pending."""
        entry = self._objects.get(object_id)
        if entry is None or entry.value is not None:
            return False
        entry.waiting_tasks.append(task_id)
        return True

    def add_holder(self, object_id: bytes, session: ClientSession) -> bool:
        entry = self._objects.get(object_id)
        if entry is None:
            return False
        entry.holders.add(session)
        session.held.add(object_id)
        return True

    def remove_holder(self, object_id: bytes, session: ClientSession) -> None:
        entry = self._objects.get(object_id)
        session.held.discard(object_id)
        if entry is None:
            return
        entry.holders.discard(session)
        entry.subscribers.discard(session)
        self._maybe_free(object_id, entry)

    def drop_session(self, session: ClientSession) -> None:
        for object_id in list(session.held):
            self.remove_holder(object_id, session)

    def pin(self, object_id: bytes) -> None:
        entry = self._objects.get(object_id)
        if entry is not None:
            entry.pins += 1

    def unpin(self, object_ids: Iterable[bytes]) -> None:
        for object_id in object_ids:
            entry = self._objects.get(object_id)
            if entry is not None:
                entry.pins -= 1
                self._maybe_free(object_id, entry)

    def _maybe_free(self, object_id: bytes, entry: ObjectEntry) -> None:
        if entry.holders or entry.pins > 0:
            return
        del self._objects[object_id]
        freed = self._freed
        if object_id in self._watched:
            self._watched.discard(object_id)
            freed.watched.append(object_id)
        if entry.remote is not None:
            freed.remote_releases.append((entry.remote, object_id))
        if entry.lender is not None:
            freed.borrow_returns.append((entry.lender, object_id))
        value = entry.value
        if value is None:
            return
        if value.WhichOneof("location") == "stored_size":
            if entry.local_copy or self.stored_on(value) == self.node_id:
                freed.store_deletes.append(object_id)
        else:
            self.inline_bytes -= len(value.data)
        self.unpin(value.nested_ids)
