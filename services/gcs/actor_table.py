"""The actor directory: every actor's state, where it runs, why it died, and
the (namespace, name) index of live named actors.

Raylets report state changes; the table keeps them monotonic (a stale or
repeated report changes nothing), so reports can be retried freely.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ember.v1 import gcs_pb2

from ember_common.errors import NotFound
from ember_gcs.storage import Storage

log = logging.getLogger(__name__)
TABLE = "actors"
Actor = gcs_pb2.ActorInfo
WATCH_BACKLOG = 10_000
# Order of states within one incarnation; a restart starts a new one.
_ORDER = {Actor.PENDING_CREATION: 0, Actor.RESTARTING: 0, Actor.ALIVE: 1, Actor.DEAD: 2}


class ActorTable:
    table = TABLE

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._actors: dict[bytes, gcs_pb2.ActorInfo] = {}
        self._names: dict[tuple[str, str], bytes] = {}  # live named actors
        self._watchers: set[asyncio.Queue[gcs_pb2.ActorInfo | None]] = set()

    def restore(self, rows: dict[bytes, bytes]) -> None:
        """Replace what is in memory with the stored rows (at start and at takeover)."""
        self._actors, self._names = {}, {}
        for key, raw in rows.items():
            actor = gcs_pb2.ActorInfo.FromString(raw)
            self._actors[key] = actor
            if actor.name and actor.state != Actor.DEAD:
                self._names[(actor.namespace, actor.name)] = key

    async def _save(self, actor: gcs_pb2.ActorInfo) -> None:
        await self._storage.put(TABLE, actor.actor_id, actor.SerializeToString())
        for queue in list(self._watchers):
            if queue.qsize() >= WATCH_BACKLOG - 1:
                self._watchers.discard(queue)
                queue.put_nowait(None)  # too far behind: its stream ends
            else:
                change = gcs_pb2.ActorInfo()
                change.CopyFrom(actor)
                queue.put_nowait(change)

    def watch(self) -> asyncio.Queue[gcs_pb2.ActorInfo | None]:
        """A queue of every change stored from now on (None: cut off)."""
        queue: asyncio.Queue[gcs_pb2.ActorInfo | None] = asyncio.Queue()
        self._watchers.add(queue)
        return queue

    def unwatch(self, queue: asyncio.Queue[gcs_pb2.ActorInfo | None]) -> None:
        self._watchers.discard(queue)

    async def register(self, info: gcs_pb2.ActorInfo) -> gcs_pb2.ActorInfo | None:
        """Add an actor. Returns the live actor holding its name instead, if
        another one does (nothing is written then)."""
        if info.actor_id in self._actors:
            return None  # a retried registration
        if info.name:
            holder = self._names.get((info.namespace, info.name))
            if holder is not None and holder != info.actor_id:
                return self._actors[holder]
        actor = gcs_pb2.ActorInfo()
        actor.CopyFrom(info)
        actor.state = Actor.PENDING_CREATION
        actor.start_time = time.time()
        await self._save(actor)
        self._actors[actor.actor_id] = actor
        if actor.name:
            self._names[(actor.namespace, actor.name)] = actor.actor_id
        return None

    async def update(self, request: gcs_pb2.UpdateActorRequest) -> None:
        current = self._actors.get(request.actor_id)
        if current is None:
            raise NotFound(f"actor {request.actor_id.hex()} is not registered")
        if current.state == Actor.DEAD:
            return  # dead is final
        stale = (request.num_restarts, _ORDER.get(request.state, 0)) < (current.num_restarts, _ORDER[current.state])
        if stale:
            return
        actor = gcs_pb2.ActorInfo()
        actor.CopyFrom(current)
        actor.state = request.state
        actor.num_restarts = request.num_restarts
        if request.node_id:
            actor.node_id = request.node_id
        if request.pid:
            actor.pid = request.pid
        if request.state == Actor.DEAD:
            actor.death_cause = request.death_cause
            actor.death_message = request.death_message
            actor.end_time = time.time()
        await self._save(actor)  # stored first: a failed write changes nothing
        self._actors[actor.actor_id] = actor
        if actor.state == Actor.DEAD:
            if actor.name and self._names.get((actor.namespace, actor.name)) == actor.actor_id:
                del self._names[(actor.namespace, actor.name)]
            log.info("actor %s (%s) is dead: %s", actor.actor_id.hex(), actor.class_name, actor.death_message)

    async def node_died(self, node_id: bytes, alive_nodes: set[bytes]) -> None:
        """Actors of a dead node die with it (their raylet cannot say so),
        unless restarts are left and the raylet that created them lives on
        another node: that one restarts them elsewhere."""
        for actor in list(self._actors.values()):
            if actor.node_id != node_id or actor.state in (Actor.DEAD, Actor.RESTARTING):
                continue  # (RESTARTING: its owner restarts it, this node's death is known)
            restarts_left = actor.max_restarts < 0 or actor.num_restarts < actor.max_restarts
            if restarts_left and actor.owner_node_id and actor.owner_node_id != node_id \
                    and actor.owner_node_id in alive_nodes:
                # (as the restart to come: an update of the same restart
                # number would be older than the ALIVE it replaces)
                await self.update(gcs_pb2.UpdateActorRequest(
                    actor_id=actor.actor_id, state=Actor.RESTARTING, num_restarts=actor.num_restarts + 1))
                continue
            await self.update(gcs_pb2.UpdateActorRequest(
                actor_id=actor.actor_id, state=Actor.DEAD, death_cause=Actor.NODE_DIED,
                death_message=f"its node {node_id.hex()[:8]} died", num_restarts=actor.num_restarts))

    def get(self, actor_id: bytes) -> gcs_pb2.ActorInfo | None:
        return self._actors.get(actor_id)

    def by_name(self, namespace: str, name: str) -> gcs_pb2.ActorInfo | None:
        actor_id = self._names.get((namespace, name))
        return self._actors[actor_id] if actor_id is not None else None

    def all(self) -> list[gcs_pb2.ActorInfo]:
        return list(self._actors.values())
