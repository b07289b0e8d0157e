"""The actors this raylet hosts, event by event: creation (registered with
the GCS), calls sent to the actor's worker in order, restarts when its
worker dies, and its end (killed, exited, out of scope, owner gone), each
change reported for the GCS. The state is `actor_table`'s.
"""

from __future__ import annotations

import logging
from typing import Callable

from ember.v1 import gcs_pb2, raylet_pb2

from ember_common.errors import ProtocolError
from ember_common.object_layout import Failure, FailureType
from ember_raylet.actor_table import ALIVE, DEAD, PENDING, RESTARTING, Actor, ActorEntry, ActorTable
from ember_raylet.client_session import RAYLET, ClientSession
from ember_raylet.object_directory import ObjectDirectory
from ember_raylet.task_manager import ASSIGNED, QUEUED, WAITING, FinishTask, TaskEntry, TaskManager
from ember_raylet.worker_pool import WorkerHandle

log = logging.getLogger(__name__)

ActorEvent = gcs_pb2.RegisterActorRequest | gcs_pb2.UpdateActorRequest


class LocalActors:
    def __init__(self, node_id: bytes, table: ActorTable, tasks: TaskManager, objects: ObjectDirectory,
                 sessions: dict[bytes, ClientSession], on_actor_event: Callable[[ActorEvent], None],
                 finish: FinishTask, assign: Callable[[TaskEntry, WorkerHandle], None],
                 worker_died: Callable[[bytes, str], None]) -> None:
        self._node_id = node_id
        self._table = table
        self._tasks = tasks
        self._objects = objects
        self._sessions = sessions  # connected clients, by client id
        self._on_actor_event = on_actor_event
        self._finish = finish
        self._assign = assign
        self._worker_died = worker_died  # the node manager's: the worker's tasks and the pool too

    def check_creation(self, spec: raylet_pb2.TaskSpec) -> None:
        """A well-formed creation (`task_checks`) of an actor that must be new."""
        if spec.actor_creation.actor_id in self._table.actors:
            raise ProtocolError(f"actor {spec.actor_creation.actor_id.hex()} already exists")

    def add(self, task: TaskEntry) -> None:
        """A creation task was submitted: the actor exists (pending) from now."""
        spec = task.spec
        actor = ActorEntry(spec, task.submitter)
        self._table.add(actor)
        # Its own scheduling key: the worker that takes it is never shared.
        task.key = ("actor", actor.actor_id)
        task.retries_left = 0  # a crashed constructor counts as a restart instead
        if actor.options.scoped:
            self._objects.watch((actor.ready_id,))
        info = gcs_pb2.ActorInfo(
            actor_id=actor.actor_id, job_id=spec.job_id, class_name=actor.options.class_name,
            name=actor.options.name, namespace=actor.options.namespace, node_id=self._node_id,
            max_restarts=actor.options.max_restarts, detached=actor.options.detached,
            owner_node_id=task.submitter.node_id if task.submitter.kind == RAYLET else self._node_id)
        self._on_actor_event(gcs_pb2.RegisterActorRequest(actor=info))

    def queue_call(self, actor: ActorEntry, task: TaskEntry) -> bool:
        """A call submitted to an actor hosted here: True if it queued (to
        wait for its arguments), False if it ended or went to the worker."""
        spec = task.spec
        if actor.state == DEAD:
            # (a direct call cut off by the death is told so, as the raylet's own are)
            cut_off = f" (it died while running {spec.method_name})" if spec.direct_worker_id else ""
            self._finish(task, error=Failure(FailureType.ACTOR_DIED,
                f"{actor.describe()} is dead: {actor.death_message}{cut_off}"))
            return False
        task.retries_left = actor.options.max_task_retries
        if spec.direct_worker_id and not self._direct_call_broken(actor, task):
            return False
        actor.queue.append(spec.task_id)
        return True

    def _direct_call_broken(self, actor: ActorEntry, task: TaskEntry) -> bool:
        """A call that went straight to the actor's worker, whose connection
        broke mid-call: as if it had been running there. True if it is to be
        queued again (a retry), False if it is parked or finished."""
        spec = task.spec
        worker = actor.worker
        if worker is not None and worker.worker_id == spec.direct_worker_id:
            # Its death is not seen here yet: it decides, as for our own calls.
            task.state = ASSIGNED
            task.worker = worker
            worker.assigned.append(spec.task_id)
            actor.inflight.add(spec.task_id)
            return False
        if actor.state != DEAD and task.take_retry():
            return True
        self._finish(task, error=Failure(FailureType.ACTOR_DIED,
            f"{actor.describe()} died while running {spec.method_name}: {actor.last_death}"
            + ("" if actor.state == DEAD else "; it restarted, but this call may not be retried (max_task_retries)")))
        return False

    def call_ready(self, task: TaskEntry) -> None:
        """A queued call's arguments are ready."""
        task.state = QUEUED  # in its actor's queue
        self.dispatch(self._table.actors[task.spec.actor_id])

    def dispatch(self, actor: ActorEntry) -> None:
        """Send the actor's queued calls whose arguments are ready to its
        worker. An ordered actor stops at the first call still waiting."""
        if actor.state != ALIVE or actor.worker is None:
            return
        queue = actor.queue
        tasks = self._tasks.tasks
        if actor.ordered:
            while queue and tasks[queue[0]].state != WAITING:
                task_id = queue.popleft()
                actor.inflight.add(task_id)
                self._assign(tasks[task_id], actor.worker)
            return
        for task_id in [t for t in queue if tasks[t].state != WAITING]:
            queue.remove(task_id)
            actor.inflight.add(task_id)
            self._assign(tasks[task_id], actor.worker)

    def task_done(self, task: TaskEntry, result: raylet_pb2.TaskResult) -> None:
        """The actor's worker finished its creation or one of its calls."""
        actor = self._table.actors[task.spec.actor_id]
        if task.spec.HasField("actor_creation"):
            if result.application_error:
                self._finish(task, returns=list(result.returns))
                self.end(actor, Actor.CREATION_FAILED, f"its constructor raised: {result.error_message or 'an exception'}")
                return
            if actor.state in (PENDING, RESTARTING):
                actor.state = ALIVE
                self._report(actor)
            self._finish(task, returns=list(result.returns))
            self.dispatch(actor)
            self._maybe_end_out_of_scope(actor)
            return
        self._finish(task, returns=list(result.returns))
        if result.actor_exit:
            self.end(actor, Actor.EXITED, "it called ember.actor.exit_actor()")
        else:
            self._maybe_end_out_of_scope(actor)

    def out_of_scope(self, ready_id: bytes) -> None:
        """Every handle to the (scoped) actor whose ready object this is went."""
        actor = self._table.by_ready_id.get(ready_id)
        if actor is not None:
            actor.out_of_scope = True
            self._maybe_end_out_of_scope(actor)

    def _maybe_end_out_of_scope(self, actor: ActorEntry) -> None:
        if actor.out_of_scope and actor.state == ALIVE and not actor.queue and not actor.inflight:
            self.end(actor, Actor.OUT_OF_SCOPE, "every handle to it went out of scope")

    def kill(self, actor: ActorEntry, no_restart: bool, cause: int, reason: str) -> None:
        if actor.state == DEAD:
            return
        if no_restart:
            self.end(actor, cause or Actor.KILLED, reason or "it was killed by ember.kill()")
        elif actor.worker is not None:
            worker = actor.worker
            worker.process.kill()
            self._worker_died(worker.worker_id, "killed by ember.kill(no_restart=False)")

    def end(self, actor: ActorEntry, cause: int, message: str) -> None:
        """End an actor on purpose (no restart): kill its worker if it has one."""
        if actor.state == DEAD:
            return
        actor.ending = (cause, message)
        worker = actor.worker
        if worker is not None:
            worker.process.kill()
            self._worker_died(worker.worker_id, message)
        else:
            self._dead(actor, cause, message)

    def worker_died(self, worker: WorkerHandle, reason: str) -> None:
        """The actor's worker is gone: restart the actor if it may be, else it is dead."""
        actor = self._table.get(worker.actor_id)  # type: ignore[arg-type]
        if actor is None or actor.state == DEAD:
            return
        actor.worker = None
        restart = actor.ending is None and actor.restarts_left()
        died = (f"its worker process (pid {worker.process.pid}) died: {reason}"
                + (f", after {actor.num_restarts} restart(s)" if actor.num_restarts else ""))
        actor.last_death = died
        # Calls cut off mid-run: retried on the restarted actor if they may be,
        # in their order, ahead of the calls still queued.
        retry = []
        for task_id in worker.assigned:
            task = self._tasks.tasks.get(task_id)
            if task is None or task.spec.HasField("actor_creation"):
                continue
            actor.inflight.discard(task_id)
            if restart and task.take_retry():
                task.state = QUEUED
                retry.append(task_id)
            else:
                self._finish(task, error=Failure(FailureType.ACTOR_DIED,
                    f"{actor.describe()} died while running {task.spec.method_name}: {died}"
                    + ("; it is restarting, but this call may not be retried (max_task_retries)" if restart else "")))
        actor.queue.extendleft(reversed(retry))
        if not restart:
            cause, message = actor.ending or (Actor.WORKER_DIED, died)
            self._dead(actor, cause, message)
            return
        actor.num_restarts += 1
        actor.state = RESTARTING
        log.warning("%s: %s; restarting (%d/%s)", actor.describe(), died, actor.num_restarts,
                    "inf" if actor.options.max_restarts < 0 else actor.options.max_restarts)
        self._report(actor)
        creation = self._tasks.tasks.get(actor.creation.task_id)
        if creation is None:
            creation = TaskEntry(actor.creation, actor.owner)
            creation.key = ("actor", actor.actor_id)
            self._tasks.tasks[actor.creation.task_id] = creation
        # The new worker learns it is a restart (was_current_actor_reconstructed).
        creation.spec.actor_creation.num_restarts = actor.num_restarts
        self._tasks.enqueue(creation)

    def _report(self, actor: ActorEntry) -> None:
        worker = actor.worker
        self._on_actor_event(gcs_pb2.UpdateActorRequest(
            actor_id=actor.actor_id, state=actor.state, death_cause=actor.death_cause,
            death_message=actor.death_message, node_id=self._node_id, num_restarts=actor.num_restarts,
            pid=worker.process.pid if worker is not None else 0))

    def _dead(self, actor: ActorEntry, cause: int, message: str) -> None:
        actor.state = DEAD
        actor.death_cause, actor.death_message = cause, message
        log.info("%s is dead: %s", actor.describe(), message)
        self._report(actor)
        why = f"{actor.describe()} is dead: {message}"
        creator = actor.owner
        if creator.kind == RAYLET and self._sessions.get(creator.client_id) is creator:
            # Created for another node, which would start it again if ours
            # died: it must know the actor is over.
            creator.outbox.actors_ended.add(actor_id=actor.actor_id, message=why)
            creator.touch()
        error = Failure(FailureType.ACTOR_DIED, why)
        creation = self._tasks.tasks.get(actor.creation.task_id)
        if creation is not None:  # never placed, or mid-(re)start
            self._finish(creation, error=error)
        else:
            self._objects.unpin(actor.creation.dependencies)
            self._objects.unpin(actor.creation.nested_refs)
        for task_id in [*actor.queue, *actor.inflight]:
            task = self._tasks.tasks.get(task_id)
            if task is not None:
                self._finish(task, error=error)
        actor.queue.clear()
        actor.inflight.clear()
        self._table.forget(actor)
        self._tasks.drop_queues(("actor", actor.actor_id))
