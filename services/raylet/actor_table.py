"""The actors this raylet hosts: each one's worker, lifecycle state and the
calls waiting for it, in arrival order; and the actors other nodes host that
this raylet's clients call (RemoteActor).

State only; the node manager decides what happens on each event.
"""

from __future__ import annotations

import collections
import enum

from ember.v1 import gcs_pb2, raylet_pb2

from ember_common import ids
from ember_raylet.client_session import ClientSession

Actor = gcs_pb2.ActorInfo


class ActorState(enum.IntEnum):
    """An actor's lifecycle state: the GCS's (ActorInfo.State) values."""
    PENDING = Actor.PENDING_CREATION
    ALIVE = Actor.ALIVE
    RESTARTING = Actor.RESTARTING
    DEAD = Actor.DEAD


PENDING, ALIVE, RESTARTING, DEAD = ActorState.PENDING, ActorState.ALIVE, ActorState.RESTARTING, ActorState.DEAD


class ActorEntry:
    __slots__ = ("actor_id", "creation", "options", "owner", "state", "worker", "num_restarts", "queue",
                 "inflight", "death_cause", "death_message", "out_of_scope", "ready_id", "ending", "last_death")

    def __init__(self, creation: raylet_pb2.TaskSpec, owner: ClientSession) -> None:
        self.actor_id = creation.actor_creation.actor_id
        self.creation = creation
        self.options = creation.actor_creation
        self.owner = owner
        self.state = PENDING
        self.worker = None  # WorkerHandle once placed
        self.num_restarts = creation.actor_creation.num_restarts
        # Calls not yet sent to the worker, in arrival order (per caller,
        # submission order: one stream per caller keeps it).
        self.queue: collections.deque[bytes] = collections.deque()
        self.inflight: set[bytes] = set()  # sent to the worker, not finished
        self.death_cause = Actor.CAUSE_UNSPECIFIED
        self.death_message = ""
        self.out_of_scope = False
        self.ready_id = ids.object_id_for(creation.task_id, 1)
        # Set when the actor is being ended on purpose: (cause, message);
        # its worker's death then ends it instead of restarting it.
        self.ending: tuple[int, str] | None = None
        self.last_death = ""  # how its last worker died (quoted to calls cut off by it)

    @property
    def ordered(self) -> bool:
        """Calls run one at a time, in order (Ray's default actor)."""
        return self.options.max_concurrency <= 1 and not self.options.is_async

    def restarts_left(self) -> bool:
        return self.options.max_restarts < 0 or self.num_restarts < self.options.max_restarts

    def describe(self) -> str:
        return f"{self.options.class_name} actor {self.actor_id.hex()[:8]}"


class ActorTable:
    def __init__(self) -> None:
        self.actors: dict[bytes, ActorEntry] = {}
        self.by_ready_id: dict[bytes, ActorEntry] = {}

    def __len__(self) -> int:
        return sum(1 for a in self.actors.values() if a.state != DEAD)

    def add(self, entry: ActorEntry) -> None:
        self.actors[entry.actor_id] = entry
        if entry.options.scoped:
            self.by_ready_id[entry.ready_id] = entry

    def get(self, actor_id: bytes) -> ActorEntry | None:
        return self.actors.get(actor_id)

    def owned_by(self, session: ClientSession) -> list[ActorEntry]:
        return [a for a in self.actors.values()
                if a.owner is session and not a.options.detached and a.state != DEAD]

    def forget(self, entry: ActorEntry) -> None:
        """A dead actor: keep the entry (calls to it fail with its cause) but
        drop the indexes."""
        self.by_ready_id.pop(entry.ready_id, None)

    def remove(self, entry: ActorEntry) -> None:
        """The actor went to another node: it is not ours at all."""
        self.actors.pop(entry.actor_id, None)
        self.by_ready_id.pop(entry.ready_id, None)


class RemoteActor:
    """An actor hosted by another node, called through this raylet. Its
    calls wait here, in submission order, until the host is known (the GCS
    is asked) and their arguments are ready, then go to the host's raylet.
    If this raylet created it there (`creation` set), it also ends it when
    the owner exits or, for a scoped actor, when no handle is left here, and
    restarts it on another node if its node dies and restarts are left."""

    __slots__ = ("actor_id", "node", "queue", "owner", "ready_id", "dead", "kill", "creation", "lookups")

    def __init__(self, actor_id: bytes, node: bytes | None = None, owner: ClientSession | None = None,
                 ready_id: bytes | None = None) -> None:
        self.actor_id = actor_id
        self.node = node  # the host; None while the GCS is asked
        self.queue: collections.deque[bytes] = collections.deque()
        self.owner = owner  # the creating client, if it is ours and not detached
        self.ready_id = ready_id  # watched for scoping, if scoped
        self.dead: str | None = None  # why calls fail, once it is known dead
        self.kill: raylet_pb2.KillActor | None = None  # a kill asked before the host was known
        self.creation: raylet_pb2.TaskSpec | None = None  # ours: how to start it again elsewhere
        self.lookups = 0  # GCS answers so far that it is starting or restarting

    def restarts_left(self) -> bool:
        if self.creation is None:
            return False
        options = self.creation.actor_creation
        return options.max_restarts < 0 or options.num_restarts < options.max_restarts
