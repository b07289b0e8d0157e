"""Actors other nodes host that this raylet's clients call: where each one
is (the GCS is asked), its calls sent there in order, and, for those this
raylet created there, restarting them elsewhere when their node dies and
ending them when their owner here exits or, if scoped, no handle is left.
"""

from __future__ import annotations

import logging
from typing import Callable

from ember.v1 import gcs_pb2, raylet_pb2

from ember_common.object_layout import Failure, FailureType
from ember_raylet import scheduling_policy
from ember_raylet.actor_table import ALIVE, DEAD, ActorTable, RemoteActor
from ember_raylet.client_session import ClientSession
from ember_raylet.cluster_view import ClusterView
from ember_raylet.object_directory import ObjectDirectory
from ember_raylet.task_manager import QUEUED, WAITING, FinishTask, TaskEntry, TaskManager

log = logging.getLogger(__name__)
# GCS lookups of an actor that is starting or restarting (0.25 s apart)
# before its calls fail.
MAX_LOOKUPS = 240


class RemoteActors:
    def __init__(self, view: ClusterView, tasks: TaskManager, objects: ObjectDirectory, local: ActorTable,
                 internal: ClientSession, on_actor_lookup: Callable[[bytes, float], None],
                 forward: Callable[[TaskEntry, bytes], None],
                 peer_batch: Callable[[bytes], raylet_pb2.ClientBatch], finish: FinishTask) -> None:
        self._view = view
        self._tasks = tasks
        self._objects = objects
        self._local = local
        # The submitter of restarts this raylet starts on its own.
        self._internal = internal
        self._on_actor_lookup = on_actor_lookup
        self._forward = forward
        self._peer_batch = peer_batch
        self._finish = finish
        self.actors: dict[bytes, RemoteActor] = {}
        # Actors to restart that no node can host now (their node died and no
        # other has their resources): started when the nodes change, as Ray
        # keeps such an actor RESTARTING until a node fits. Why they restart.
        self.homeless: dict[bytes, str] = {}

    def get(self, actor_id: bytes) -> RemoteActor | None:
        return self.actors.get(actor_id)

    def queue_call(self, task: TaskEntry) -> None:
        """A call to an actor not hosted here (or unknown): it waits here
        until it can go to the host."""
        remote = self.actors.get(task.spec.actor_id) or self.locate(task.spec.actor_id)
        if remote.creation is not None:
            task.retries_left = remote.creation.actor_creation.max_task_retries
        remote.queue.append(task.spec.task_id)

    def call_ready(self, task: TaskEntry) -> None:
        """A queued call's arguments are ready."""
        task.state = QUEUED
        self.pump(self.actors[task.spec.actor_id])

    def create_elsewhere(self, task: TaskEntry, node_id: bytes) -> None:
        """Create the actor on another node; we stay the way to it for our
        clients, and end it when its owner here exits or, if scoped, when no
        handle is left here."""
        actor = self._local.actors[task.spec.actor_id]
        self._local.remove(actor)
        opts = actor.options
        remote = RemoteActor(actor.actor_id, node_id, owner=None if opts.detached else task.submitter,
                             ready_id=actor.ready_id if opts.scoped else None)
        remote.queue = actor.queue  # calls made meanwhile follow the creation
        self.actors[actor.actor_id] = remote
        task.spec.actor_creation.scoped = False  # the host must not end it when our copy of `ready` goes
        remote.creation = raylet_pb2.TaskSpec()
        remote.creation.CopyFrom(task.spec)
        self._forward(task, node_id)
        self.pump(remote)

    def locate(self, actor_id: bytes) -> RemoteActor:
        remote = self.actors[actor_id] = RemoteActor(actor_id)
        self._on_actor_lookup(actor_id, 0.0)
        return remote

    def located(self, actor_id: bytes, info: gcs_pb2.ActorInfo | None) -> None:
        """The GCS's answer: where an actor we were asked to call lives."""
        remote = self.actors.get(actor_id)
        if remote is None or remote.node is not None:
            return
        usable = info is not None and info.state == ALIVE and info.node_id in self._view.nodes
        if info is not None and not usable and info.state != DEAD and remote.lookups < MAX_LOOKUPS:
            remote.lookups += 1  # starting, or restarting elsewhere: ask again shortly
            self._on_actor_lookup(actor_id, 0.25)
            return
        if info is None:
            remote.dead = f"actor {actor_id.hex()} is unknown to the cluster"
        elif info.state == DEAD:
            remote.dead = f"{info.class_name} actor {actor_id.hex()[:8]} is dead: {info.death_message}"
        elif not usable:
            remote.dead = (f"{info.class_name} actor {actor_id.hex()[:8]} was on node {info.node_id.hex()[:8]}, "
                           "which is gone")
        else:
            remote.node = info.node_id
            if remote.kill is not None:
                self._peer_batch(remote.node).kill_actors.append(remote.kill)
        self.pump(remote)

    def pump(self, remote: RemoteActor) -> None:
        """Send the actor's waiting calls to its host, in order, up to the
        first whose arguments are not ready; or fail them if it is dead."""
        queue = remote.queue
        while queue:
            task = self._tasks.tasks.get(queue[0])
            if task is None:
                queue.popleft()
            elif remote.dead is not None:
                queue.popleft()
                self._finish(task, error=Failure(FailureType.ACTOR_DIED, remote.dead))
            elif remote.node is None or task.state == WAITING:
                return
            else:
                queue.popleft()
                self._forward(task, remote.node)

    def place_homeless(self) -> None:
        """The nodes changed: restart the actors that had nowhere to go."""
        for actor_id, why in list(self.homeless.items()):
            del self.homeless[actor_id]
            remote = self.actors.get(actor_id)
            if remote is None or remote.dead is not None or remote.node is not None or remote.creation is None:
                continue
            self._restart(remote, why)
            self.pump(remote)

    def ended(self, actor_id: bytes, message: str) -> None:
        """An actor we created on another node ended for good there: never
        restarted, its constructor's arguments released, later calls fail."""
        remote = self.actors.get(actor_id)
        if remote is None or remote.dead is not None:
            return
        remote.dead = message
        remote.owner = remote.ready_id = None
        self._forget_creation(remote)
        self.pump(remote)

    def kill(self, actor_id: bytes, cause: int, reason: str, no_restart: bool = True) -> None:
        remote = self.actors.get(actor_id) or self.locate(actor_id)
        kill = raylet_pb2.KillActor(actor_id=remote.actor_id, no_restart=no_restart, reason=reason, death_cause=cause)
        if no_restart:
            remote.owner = remote.ready_id = None  # ended: nothing more to end it for
            self._forget_creation(remote)
        if remote.node is not None:
            self._peer_batch(remote.node).kill_actors.append(kill)
        elif no_restart and self.homeless.pop(actor_id, None) is not None:
            remote.dead = reason or "it was killed while it waited for a node to restart on"
            self.pump(remote)
        elif remote.dead is None:
            remote.kill = kill

    def owned_by(self, session: ClientSession) -> list[bytes]:
        return [r.actor_id for r in self.actors.values() if r.owner is session]

    def scoped_by(self, ready_id: bytes) -> list[bytes]:
        return [r.actor_id for r in self.actors.values() if r.ready_id == ready_id]

    def creation_finished(self, actor_id: bytes, returns: list) -> bool:
        """The creation of an actor we may restart elsewhere ended: True if
        its arguments stay pinned (for restarts there)."""
        remote = self.actors.get(actor_id)
        if remote is None or remote.creation is None or remote.creation.actor_creation.max_restarts == 0:
            return False
        if any(v.is_error for v in returns):  # its constructor raised there: dead for good
            remote.dead = f"{remote.creation.actor_creation.class_name} actor {actor_id.hex()[:8]} failed to start"
            self._forget_creation(remote)
            self.pump(remote)
        return True

    def _forget_creation(self, remote: RemoteActor) -> None:
        """An actor we created elsewhere ended for good: no restarts, and the
        constructor's arguments (kept for restarts) may go."""
        creation, remote.creation = remote.creation, None
        if creation is not None and creation.actor_creation.max_restarts != 0:
            self._objects.unpin(creation.dependencies)
            self._objects.unpin(creation.nested_refs)

    # ---- a lost node ---------------------------------------------------

    def node_lost(self, node_id: bytes, reason: str) -> list[RemoteActor]:
        """The actors that lived on a lost node: those we may restart (returned),
        those to look up again, and those dead now."""
        restarting: list[RemoteActor] = []
        for remote in self.actors.values():
            if remote.node == node_id and remote.dead is None:
                if remote.restarts_left():
                    remote.node = None  # until it is started elsewhere
                    restarting.append(remote)
                elif remote.creation is None:
                    remote.node = None  # its creator may restart it elsewhere: ask the GCS again
                    remote.lookups = 0
                    self._on_actor_lookup(remote.actor_id, 1.0)
                else:
                    remote.dead = (f"actor {remote.actor_id.hex()[:8]} lived on node {node_id.hex()[:8]}, which "
                                   f"died: {reason}")
        return restarting

    def call_lost(self, task: TaskEntry, node_id: bytes, reason: str, restarting: list[RemoteActor],
                  retried: dict[bytes, list[bytes]]) -> None:
        """Actor work forwarded to a lost node: a creation we restart is
        dropped (started again), a call that may be retried waits in
        `retried` for the restarted actor, the rest fail."""
        remote = self.actors.get(task.spec.actor_id)
        if remote is not None and remote in restarting and task.spec.HasField("actor_creation"):
            self._tasks.tasks.pop(task.spec.task_id, None)
        elif remote is not None and remote in restarting and task.take_retry():
            task.state, task.node = QUEUED, None
            retried.setdefault(remote.actor_id, []).append(task.spec.task_id)
        else:
            self._finish(task, error=Failure(FailureType.ACTOR_DIED,
                remote.dead if remote is not None and remote.dead else
                f"the node of actor {task.spec.actor_id.hex()[:8]} ({node_id.hex()[:8]}) died while it ran "
                f"{task.spec.method_name or 'its constructor'}: {reason}"
                + ("; it is restarting, but this call may not be retried (max_task_retries)"
                   if remote in restarting else "")))

    def restart_lost(self, restarting: list[RemoteActor], retried: dict[bytes, list[bytes]], why: str) -> None:
        """Start the lost node's actors elsewhere, their retried calls first;
        fail the calls still waiting for a dead host."""
        for remote in restarting:
            remote.queue.extendleft(reversed(retried.get(remote.actor_id, [])))  # in their order
            self._restart(remote, why)
        for remote in list(self.actors.values()):
            self.pump(remote)

    def _restart(self, remote: RemoteActor, why: str) -> None:
        """Start an actor we created again, on another node that fits it."""
        creation = remote.creation
        assert creation is not None
        shape = dict(creation.resources.amounts)
        target = scheduling_policy.pick_spill_node(shape, self._view, {}, 1, creation.label_selector)
        if target is None:
            if remote.actor_id not in self.homeless:
                log.warning("actor %s must restart (%s), but no node can host it now (%s): it waits for one",
                            remote.actor_id.hex()[:8], why, shape)
            self.homeless[remote.actor_id] = why
            return
        creation.actor_creation.num_restarts += 1
        log.warning("restarting actor %s on node %s (%s; restart %d)", remote.actor_id.hex()[:8], target.hex()[:8],
                    why, creation.actor_creation.num_restarts)
        spec = raylet_pb2.TaskSpec()
        spec.CopyFrom(creation)
        # (A detached actor's creator may be gone: the restart is our own doing.)
        task = TaskEntry(spec, remote.owner or self._internal)
        self._tasks.tasks[spec.task_id] = task
        remote.node = target
        self._forward(task, target)
