"""The raylet's logic: client events in, messages and process actions out.

No sockets here: sessions are outboxes, workers come from an injected pool,
so this is tested directly (tests/unit/test_node_manager.py). The servicer
feeds it the batches of each client's stream; `service` runs the timers.
"""

from __future__ import annotations

import collections
import itertools
import logging
from typing import Any, Callable, Iterable

from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember_common import ids, placement
from ember_common.errors import ProtocolError
from ember_common.object_layout import Failure, FailureType
from ember_raylet import resources, scheduling_policy
from ember_raylet.actor_table import ALIVE, DEAD, PENDING, RESTARTING, Actor, ActorEntry, ActorTable, RemoteActor
from ember_raylet.client_session import DRIVER, RAYLET, WORKER, ClientSession
from ember_raylet.cluster_view import ClusterView
from ember_raylet.lineage import Lineage
from ember_raylet.object_directory import ObjectDirectory
from ember_raylet.resources import Resources
from ember_raylet.task_manager import ASSIGNED, FORWARDED, QUEUED, WAITING, TaskEntry, TaskManager
from ember_raylet.worker_pool import WorkerHandle, WorkerPool

log = logging.getLogger(__name__)
# Workers started at once: on a small machine, starting many at a time slows
# each start (and what runs meanwhile) more than it helps.
_MAX_STARTS = 4
# GCS lookups of an actor that is starting or restarting (0.25 s apart)
# before its calls fail.
_MAX_LOOKUPS = 240


def error_value(object_id: bytes, error: Failure) -> common_pb2.ObjectValue:
    return common_pb2.ObjectValue(object_id=object_id, data=error.encode(), is_error=True)


class NodeManager:
    def __init__(
        self,
        node_id: bytes,
        total: Resources,
        pool: WorkerPool,
        min_workers: int,
        pipeline_depth: int,
        on_store_delete: Callable[[list[bytes]], None] = lambda ids_: None,
        on_actor_event: Callable[[gcs_pb2.RegisterActorRequest | gcs_pb2.UpdateActorRequest], None] = lambda e: None,
        on_kv_get: Callable[[ClientSession, raylet_pb2.KvKey], None] = lambda s, k: None,
        on_pull: Callable[[bytes, bytes, int], None] = lambda object_id, node_id, size: None,
        on_peer_send: Callable[[bytes], None] = lambda node_id: None,
        on_actor_lookup: Callable[[bytes, float], None] = lambda actor_id, delay: None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.labels = dict(labels or {})
        self.node_id = node_id
        self.total = dict(total)
        self.available = dict(total)
        self.pool = pool
        self.min_workers = min_workers
        self.pipeline_depth = max(1, pipeline_depth)
        self.objects = ObjectDirectory(node_id)
        self.tasks = TaskManager()
        # Other nodes: where tasks this node cannot run now may go.
        self.view = ClusterView(node_id)
        self.forward_count: collections.Counter[bytes] = collections.Counter()  # unfinished, per node
        # What goes to each peer raylet (we are its client), sent by the service.
        # Batches for each peer, oldest first; a batch with a kill takes
        # nothing more (the peer applies kills after a batch's submissions).
        self.peer_out: dict[bytes, list[raylet_pb2.ClientBatch]] = {}
        # Pulls in flight: object id -> (tasks, sessions waiting for the local copy, source node).
        self.pulls: dict[bytes, tuple[list[bytes], list[ClientSession], bytes]] = {}
        self.job_driver_node: dict[bytes, bytes] = {}  # where each job's output goes
        self.lineage = Lineage()  # how to rebuild our objects stored on other nodes
        # The submitter of work this raylet starts on its own (actor restarts):
        # never connected, so nothing is pushed to it.
        self._internal = ClientSession(b"", RAYLET, node_id=node_id)
        self._internal.closed = True
        self._spread_next = 0
        # Totals or the cluster view changed: infeasible tasks are looked at again.
        self._resources_changed = False
        self.remote_actors: dict[bytes, RemoteActor] = {}  # actors other nodes host that we call
        self.borrowers: dict[bytes, ClientSession] = {}  # node id -> holder of its borrows of our objects
        # Placement group bundles held here: (group id, index) -> (resources, committed).
        self.bundles: dict[tuple[bytes, int], tuple[Resources, bool]] = {}
        self._on_actor_lookup = on_actor_lookup
        self._on_pull = on_pull
        self._on_peer_send = on_peer_send
        self.sessions: dict[bytes, ClientSession] = {}
        self._on_store_delete = on_store_delete
        self._on_actor_event = on_actor_event
        self._on_kv_get = on_kv_get
        self.actors = ActorTable()
        # Workers gone from the pool whose processes the caller must still
        # reap (wait for), so none lingers as a zombie.
        self.to_reap: list[WorkerHandle] = []
        self._warned_infeasible: set[tuple] = set()

    # ---- clients -------------------------------------------------------

    def connect(self, session: ClientSession) -> None:
        self.sessions[session.client_id] = session
        if session.kind == WORKER:
            handle = self.pool.register(session.worker_id, session)
            if handle is None:
                raise ProtocolError(f"unknown worker id {session.worker_id.hex()}")
        self.schedule()

    def disconnect(self, session: ClientSession) -> None:
        session.close()
        self.sessions.pop(session.client_id, None)
        owner_exited = f"its owner ({'driver' if session.kind == DRIVER else 'worker'} pid {session.pid}) exited"
        for actor in self.actors.owned_by(session):
            self._end_actor(actor, Actor.OWNER_DIED, owner_exited)
        for remote in [r for r in self.remote_actors.values() if r.owner is session]:
            self._kill_remote(remote, Actor.OWNER_DIED, owner_exited)
        if session.kind == WORKER:
            self.worker_died(session.worker_id, "the worker's connection closed")
        else:
            # A driver is gone: its queued work is moot.
            for task in [t for t in self.tasks.tasks.values() if t.submitter is session and t.state != ASSIGNED
                         and not (t.spec.HasField("actor_creation") and t.spec.actor_creation.detached)]:
                self._drop_task(task)
        for object_id in session.promised:
            if object_id in self.objects and not self.objects.is_ready(object_id):
                self._ready(self.objects.set_ready(error_value(object_id, Failure(FailureType.OWNER_DIED, 
                    f"object {object_id.hex()} was to come from a direct actor call of {session.describe()}, "
                    "which exited before it arrived"))))
        self.objects.drop_session(session)
        self._after_changes()
        self.schedule()

    def handle_batch(self, session: ClientSession, batch: raylet_pb2.ClientBatch) -> None:
        """Apply one client batch; field order is the protocol's order."""
        for object_id in batch.promises:
            self._check_object_id(object_id)
            self.objects.create_pending(object_id, session)
            session.promised.add(object_id)
        for value in batch.puts:
            self._check_object_id(value.object_id)
            self._stamp(value)
            session.promised.discard(value.object_id)
            self._ready(self.objects.put(value, session))
        if batch.provide and session.kind != RAYLET:
            raise ProtocolError("only raylets may `provide` values")
        for value in batch.provide:
            self._check_object_id(value.object_id)
        if batch.provide:
            borrowed = self.objects.provide(batch.provide, session)
            if borrowed:  # before any result of the tasks they came with
                for object_id in borrowed:
                    _add_or_cancel(session.outbox.borrowed, session.outbox.returned_borrows, object_id)
                session.touch()
        for object_id in batch.add_refs:
            self.objects.add_holder(object_id, session)
        for spec in batch.submit:
            self.submit(spec, session)
        self.objects.release_unused(v.object_id for v in batch.provide)
        for result in batch.results:
            self.task_done(session, result)
        for object_id in batch.subscribe:
            self._check_object_id(object_id)
            if not self.objects.subscribe(object_id, session):
                session.outbox.ready.append(error_value(object_id, Failure(FailureType.OBJECT_LOST, 
                    f"object {object_id.hex()} is unknown to this node: it was freed (no reference "
                    "was left) or never created")))
                session.touch()
        for object_id in batch.fetch:
            self._check_object_id(object_id)
            self._fetch(session, object_id)
        for object_id in batch.remove_refs:
            self.objects.remove_holder(object_id, session)
        for cancel in batch.cancel:
            self.cancel(cancel.task_id, cancel.force, cancel.recursive, cancel.children_only)
        if batch.HasField("blocked"):
            self.worker_blocked(session, batch.blocked)
        if batch.logs:
            self._forward_logs(batch.logs, local_only=session.kind == RAYLET)
        for kill in batch.kill_actors:
            self.kill_actor(kill.actor_id, kill.no_restart, kill.death_cause, kill.reason)
        for key in batch.kv_get:
            self._on_kv_get(session, key)
        self._after_changes()
        self.schedule()

    @staticmethod
    def _check_object_id(object_id: bytes) -> None:
        if len(object_id) != ids.OBJECT_ID_SIZE:
            raise ProtocolError(f"object_id must be {ids.OBJECT_ID_SIZE} bytes, got {len(object_id)}")

    def _stamp(self, value: common_pb2.ObjectValue) -> None:
        """A stored value written on this node says so, wherever it travels."""
        if not value.node_id and value.WhichOneof("location") == "stored_size":
            value.node_id = self.node_id

    def _after_changes(self) -> None:
        while self.objects.freed_watched:
            ready_id = self.objects.freed_watched.pop()
            actor = self.actors.by_ready_id.get(ready_id)
            if actor is not None:
                actor.out_of_scope = True
                self._maybe_end_out_of_scope(actor)
            for remote in [r for r in self.remote_actors.values() if r.ready_id == ready_id]:
                self._kill_remote(remote, Actor.OUT_OF_SCOPE, "every handle to it went out of scope")
            spec = self.lineage.release(ready_id)
            if spec is not None:  # no return of it left: its arguments may go
                self.objects.unpin(spec.dependencies)
                self.objects.unpin(spec.nested_refs)
        releases, self.objects.remote_releases = self.objects.remote_releases, []
        for node_id, object_id in releases:
            if node_id in self.view.nodes:
                self._peer_batch(node_id).remove_refs.append(object_id)
        returns, self.objects.borrow_returns = self.objects.borrow_returns, []
        for lender, object_id in returns:
            if self.sessions.get(lender.client_id) is lender:  # (gone: it dropped our borrows itself)
                _add_or_cancel(lender.outbox.returned_borrows, lender.outbox.borrowed, object_id)
                lender.touch()
        self._flush_store_deletes()

    def _flush_store_deletes(self) -> None:
        if self.objects.store_deletes:
            deletes, self.objects.store_deletes = self.objects.store_deletes, []
            self._on_store_delete(deletes)

    def _forward_logs(self, logs: Iterable[raylet_pb2.LogLines], local_only: bool = False) -> None:
        for lines in logs:
            driver_node = self.job_driver_node.get(lines.job_id, self.node_id)
            if driver_node != self.node_id and not local_only:
                if driver_node in self.view.nodes:
                    self._peer_batch(driver_node).logs.append(lines)
                continue
            for session in self.sessions.values():
                if session.kind == DRIVER and session.job_id == lines.job_id and not session.closed:
                    session.outbox.logs.append(lines)
                    session.touch()

    # ---- tasks ---------------------------------------------------------

    def submit(self, spec: raylet_pb2.TaskSpec, submitter: ClientSession) -> None:
        if len(spec.task_id) != ids.UNIQUE_ID_SIZE:
            raise ProtocolError(f"task_id must be {ids.UNIQUE_ID_SIZE} bytes, got {len(spec.task_id)}")
        if spec.task_id in self.tasks.tasks:
            return  # a resubmission of a task we have: idempotent
        if not 1 <= spec.num_returns <= 10_000 and spec.num_returns != 0:
            raise ProtocolError(f"num_returns must be 0..10000, got {spec.num_returns}")
        if len(spec.function_id) != 32:
            raise ProtocolError("function_id must be a 32-byte content hash")
        for name, amount in spec.resources.amounts.items():
            if amount < 0:
                raise ProtocolError(f"resource {name!r} requested a negative amount")
        for object_id in (*spec.dependencies, *spec.nested_refs):
            self._check_object_id(object_id)
        creation = spec.HasField("actor_creation")
        if creation:
            self._check_actor_creation(spec)
        elif spec.actor_id:
            if len(spec.actor_id) != ids.UNIQUE_ID_SIZE or not spec.method_name:
                raise ProtocolError(f"an actor call needs a {ids.UNIQUE_ID_SIZE}-byte actor_id and a method_name")
        if submitter.kind == DRIVER:
            spec.driver_node_id = self.node_id
        elif not spec.driver_node_id:
            spec.driver_node_id = self.job_driver_node.get(spec.job_id, self.node_id)
        self.job_driver_node[spec.job_id] = spec.driver_node_id
        task = TaskEntry(spec, submitter)
        self.tasks.tasks[spec.task_id] = task
        for i in range(spec.num_returns):
            self.objects.create_pending(ids.object_id_for(spec.task_id, i + 1), submitter)
        if submitter.promised and spec.direct_worker_id:  # the task will make what was promised
            submitter.promised.difference_update(ids.object_id_for(spec.task_id, i + 1) for i in range(spec.num_returns))
        for object_id in (*spec.dependencies, *spec.nested_refs):
            self.objects.pin(object_id)
        if creation:
            self._add_actor(task)
        elif spec.actor_id:
            actor = self.actors.get(spec.actor_id)
            if actor is None:  # hosted elsewhere (or unknown): sent on from here
                remote = self.remote_actors.get(spec.actor_id) or self._locate_actor(spec.actor_id)
                if remote.creation is not None:
                    task.retries_left = remote.creation.actor_creation.max_task_retries
                remote.queue.append(spec.task_id)
            elif actor.state == DEAD:
                # (a direct call cut off by the death is told so, as the raylet's own are)
                cut_off = f" (it died while running {spec.method_name})" if spec.direct_worker_id else ""
                self._finish(task, error=Failure(FailureType.ACTOR_DIED, 
                    f"{actor.describe()} is dead: {actor.death_message}{cut_off}"))
                return
            else:
                task.retries_left = actor.options.max_task_retries
                if spec.direct_worker_id and not self._direct_call_broken(actor, task):
                    return
                actor.queue.append(spec.task_id)
        lost = None
        # A call to an actor on another node goes with the values of the refs
        # inside its arguments: it waits for those too.
        awaited = (*spec.dependencies, *spec.nested_refs) if spec.actor_id in self.remote_actors else spec.dependencies
        for object_id in dict.fromkeys(awaited):
            if object_id not in self.objects:
                lost = object_id
            elif self.objects.wait_for(object_id, spec.task_id):
                task.missing += 1
        if lost is not None:
            self._finish(task, error=Failure(FailureType.OBJECT_LOST, 
                f"argument {lost.hex()} of {spec.function_name} is unknown to this node: it was freed "
                "or never created"))
        elif task.missing == 0:
            self._deps_ready(task)

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
        if actor.state != DEAD and task.retries_left != 0:
            task.retries_left -= 1
            return True
        self._finish(task, error=Failure(FailureType.ACTOR_DIED, 
            f"{actor.describe()} died while running {spec.method_name}: {actor.last_death}"
            + ("" if actor.state == DEAD else "; it restarted, but this call may not be retried (max_task_retries)")))
        return False

    def _ready(self, waiting: list[bytes]) -> None:
        for task_id in waiting:
            task = self.tasks.tasks.get(task_id)
            if task is not None and task.state == WAITING:
                task.missing -= 1
                if task.missing == 0:
                    self._deps_ready(task)

    def _deps_ready(self, task: TaskEntry) -> None:
        for object_id in task.spec.dependencies:
            value = self.objects.get(object_id)
            if value is not None and value.is_error:
                self._finish(task, failed_dep=value)  # propagate without running
                self._dispatch_after(task)
                return
        spec = task.spec
        if spec.actor_id and not spec.HasField("actor_creation") and spec.actor_id in self.remote_actors:
            task.state = QUEUED
            self._pump_remote(self.remote_actors[spec.actor_id])
            return
        if spec.scheduling.kind and not task.pinned and self._place_by_strategy(task):
            return
        if spec.HasField("actor_creation") and task.submitter.kind != RAYLET and self.view.nodes \
                and not self._fits_here(task):
            target = scheduling_policy.pick_spill_node(task.shape, self.view, {}, 1, task.spec.label_selector)
            if target is not None:
                self._forward_actor_creation(task, target)
                return
        remote = [o for o in task.spec.dependencies if not self.objects.is_local(o)]
        if remote:
            # Run where most argument bytes are, or make them local here first.
            target = self._locality_target(task) if self._spillable(task) else None
            if target is not None:
                self._forward(task, target)
                return
            for object_id in dict.fromkeys(remote):
                task.missing += 1
                self._make_local(object_id, task_id=task.spec.task_id)
            return
        if task.spec.actor_id and not task.spec.HasField("actor_creation"):
            task.state = QUEUED  # in its actor's queue
            self._dispatch_actor(self.actors.actors[task.spec.actor_id])
            return
        if not self._fits_here(task):
            if self._spillable(task) and scheduling_policy.fits_somewhere(task.shape, self.view,
                                                                          task.spec.label_selector):
                task.remote_only = True
                self.tasks.enqueue(task)  # another node will take it
                return
            if task.submitter.kind == RAYLET:  # sent here on a view that is out of date (a bundle gone)
                if task.spec.actor_id:
                    self._finish(task, error=Failure(FailureType.TASK_UNSCHEDULABLE, 
                        f"task {task.spec.function_name} requests {resources.describe(task.shape)}, which node "
                        f"{self.node_id.hex()[:8]} does not have (any more): {resources.describe(self.total)}"))
                else:
                    self._hand_back(task)
                return
            self.tasks.infeasible[task.key].append(task.spec.task_id)
            task.state = QUEUED
            if any(placement.is_group_resource(k) for k in task.shape):
                return  # its placement group is not reserved yet: it runs once it is
            if task.key not in self._warned_infeasible:
                self._warned_infeasible.add(task.key)
                wants = resources.describe(task.shape) + (
                    f" on a node labelled {dict(task.spec.label_selector)}" if task.spec.label_selector else "")
                msg = (f"task {task.spec.function_name} requests {wants} but no node has that much (this node: "
                       f"{resources.describe(self.total)}, labels {self.labels}); it stays queued until a node "
                       "that fits joins")
                log.warning(msg)
                task.submitter.outbox.warnings.append(msg)
                task.submitter.touch()
            return
        self.tasks.enqueue(task)

    def schedule(self) -> None:
        """Hand queued tasks to workers: idle workers first (each lease holds
        the task's resources), then pipeline onto leased workers of the same
        shape, then start workers."""
        if self._resources_changed:
            self._resources_changed = False
            if self.tasks.infeasible:
                self._recheck_infeasible()
        want_workers = 0
        spare = dict(self.available)  # what new workers could be leased with
        spread = bool(self.view.nodes)
        for _key, queue in self.tasks.queues():
            while queue:
                task = self.tasks.tasks[queue[0]]
                if spread and not task.remote_only and self._spillable(task):
                    # Pack this node to about half, then spread (scheduling_policy).
                    node_id = scheduling_policy.pick_spread_node(
                        task.shape, self.view, self.forward_count, self.total, self.available,
                        task.spec.label_selector)
                    if node_id is None and not (self.pool.idle and resources.fits(task.shape, self.available)):
                        node_id = scheduling_policy.pick_free_node(task.shape, self.view, self.forward_count,
                                                                   task.spec.label_selector)
                    if node_id is not None:
                        queue.popleft()
                        self._forward(task, node_id)
                        continue
                worker = self._pick_worker(task)
                if worker is None:
                    # Start workers for as many queued tasks as free resources allow.
                    planned = 0
                    for task_id in itertools.islice(queue, _MAX_STARTS):
                        queued = self.tasks.tasks[task_id]
                        shape = queued.shape
                        if queued.remote_only or not resources.fits(shape, spare) or want_workers >= _MAX_STARTS:
                            break
                        resources.subtract(spare, shape)
                        want_workers += 1
                        planned += 1
                    if self.view.nodes:
                        self._spill(queue, planned)
                    break
                queue.popleft()
                self._assign(task, worker)
        for _ in range(max(0, want_workers - len(self.pool.starting))):
            if self.pool.start() is None:
                break

    # ---- other nodes ---------------------------------------------------

    def _spillable(self, task: TaskEntry) -> bool:
        """Whether the task may run on another node: not actor work (actors
        stay where they are created, for now), not already spilled to us,
        and every ref inside its arguments known (its value goes along)."""
        spec = task.spec
        return (bool(self.view.nodes) and task.submitter.kind != RAYLET and not spec.actor_id and not task.pinned
                and all(self.objects.is_ready(o) for o in spec.nested_refs))

    def _place_by_strategy(self, task: TaskEntry) -> bool:
        """Apply a task's SPREAD or node affinity; False to go on as DEFAULT
        (a soft affinity that cannot be met, or work submitted by a peer,
        which the submitting node placed already)."""
        spec, shape = task.spec, task.shape
        if (spec.actor_id and not spec.HasField("actor_creation")) or task.submitter.kind == RAYLET:
            return False
        if not all(self.objects.is_ready(o) for o in spec.nested_refs):
            return False  # their values could not go along: run it here
        if spec.scheduling.kind == raylet_pb2.SchedulingStrategy.SPREAD:
            fitting = sorted(n.node_id for n in self.view.nodes.values() if resources.fits(shape, n.total)
                             and scheduling_policy.labels_match(spec.label_selector, n.labels))
            if self._fits_here(task):
                fitting.append(self.node_id)
            if not fitting:
                return False  # infeasible everywhere: reported as such
            target = fitting[self._spread_next % len(fitting)]
            self._spread_next += 1
        else:
            target = spec.scheduling.node_id
            node = self.view.get(target)
            if not (self._fits_here(task) if target == self.node_id
                    else node is not None and resources.fits(shape, node.total)
                    and scheduling_policy.labels_match(spec.label_selector, node.labels)):
                if spec.scheduling.soft:
                    return False
                self._finish(task, error=Failure(FailureType.TASK_UNSCHEDULABLE, 
                    f"task {spec.function_name} must run on node {target.hex()} (hard node affinity), but that node "
                    + ("cannot fit " + resources.describe(shape) if target == self.node_id or node is not None
                       else "is not alive")))
                return True
        if target == self.node_id:
            task.pinned = True
            return False
        if spec.HasField("actor_creation"):
            self._forward_actor_creation(task, target)
        else:
            self._forward(task, target)  # a retry after losing that node places it again
        return True

    # ---- actors on other nodes ----------------------------------------

    def _forward_actor_creation(self, task: TaskEntry, node_id: bytes) -> None:
        """Create the actor on another node; we stay the way to it for our
        clients, and end it when its owner here exits or, if scoped, when no
        handle is left here."""
        actor = self.actors.actors[task.spec.actor_id]
        self.actors.remove(actor)
        opts = actor.options
        remote = RemoteActor(actor.actor_id, node_id, owner=None if opts.detached else task.submitter,
                             ready_id=actor.ready_id if opts.scoped else None)
        remote.queue = actor.queue  # calls made meanwhile follow the creation
        self.remote_actors[actor.actor_id] = remote
        task.spec.actor_creation.scoped = False  # the host must not end it when our copy of `ready` goes
        remote.creation = raylet_pb2.TaskSpec()
        remote.creation.CopyFrom(task.spec)
        self._forward(task, node_id)
        self._pump_remote(remote)

    def _restart_remote(self, remote: RemoteActor, why: str) -> None:
        """Start an actor we created again, on another node that fits it."""
        creation = remote.creation
        assert creation is not None
        shape = dict(creation.resources.amounts)
        target = scheduling_policy.pick_spill_node(shape, self.view, {}, 1, creation.label_selector)
        if target is None:
            remote.dead = f"{creation.actor_creation.class_name} actor {remote.actor_id.hex()[:8]} is dead: {why}; " \
                          "no other node can host it"
            return
        creation.actor_creation.num_restarts += 1
        log.warning("restarting actor %s on node %s (%s; restart %d)", remote.actor_id.hex()[:8], target.hex()[:8],
                    why, creation.actor_creation.num_restarts)
        spec = raylet_pb2.TaskSpec()
        spec.CopyFrom(creation)
        # (A detached actor's creator may be gone: the restart is our own doing.)
        task = TaskEntry(spec, remote.owner or self._internal)
        self.tasks.tasks[spec.task_id] = task
        remote.node = target
        self._forward(task, target)

    def _locate_actor(self, actor_id: bytes) -> RemoteActor:
        remote = self.remote_actors[actor_id] = RemoteActor(actor_id)
        self._on_actor_lookup(actor_id, 0.0)
        return remote

    def actor_located(self, actor_id: bytes, info: gcs_pb2.ActorInfo | None) -> None:
        """The GCS's answer: where an actor we were asked to call lives."""
        remote = self.remote_actors.get(actor_id)
        if remote is None or remote.node is not None:
            return
        usable = info is not None and info.state == ALIVE and info.node_id in self.view.nodes
        if info is not None and not usable and info.state != DEAD and remote.lookups < _MAX_LOOKUPS:
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
        self._pump_remote(remote)
        self._after_changes()
        self.schedule()

    def _pump_remote(self, remote: RemoteActor) -> None:
        """Send the actor's waiting calls to its host, in order, up to the
        first whose arguments are not ready; or fail them if it is dead."""
        queue = remote.queue
        while queue:
            task = self.tasks.tasks.get(queue[0])
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

    def _remote_actor_ended(self, actor_id: bytes, message: str) -> None:
        """An actor we created on another node ended for good there: never
        restarted, its constructor's arguments released, later calls fail."""
        remote = self.remote_actors.get(actor_id)
        if remote is None or remote.dead is not None:
            return
        remote.dead = message
        remote.owner = remote.ready_id = None
        self._forget_creation(remote)
        self._pump_remote(remote)

    def _kill_remote(self, remote: RemoteActor, cause: int, reason: str, no_restart: bool = True) -> None:
        kill = raylet_pb2.KillActor(actor_id=remote.actor_id, no_restart=no_restart, reason=reason, death_cause=cause)
        if no_restart:
            remote.owner = remote.ready_id = None  # ended: nothing more to end it for
            self._forget_creation(remote)
        if remote.node is not None:
            self._peer_batch(remote.node).kill_actors.append(kill)
        elif remote.dead is None:
            remote.kill = kill

    def _forget_creation(self, remote: RemoteActor) -> None:
        """An actor we created elsewhere ended for good: no restarts, and the
        constructor's arguments (kept for restarts) may go."""
        creation, remote.creation = remote.creation, None
        if creation is not None and creation.actor_creation.max_restarts != 0:
            self.objects.unpin(creation.dependencies)
            self.objects.unpin(creation.nested_refs)

    def _spill(self, queue: collections.deque[bytes], skip: int) -> None:
        """Forward the queued tasks past the first `skip` to nodes with room."""
        while len(queue) > skip:
            task = self.tasks.tasks[queue[skip]]
            if not self._spillable(task):
                return
            node_id = scheduling_policy.pick_spill_node(task.shape, self.view, self.forward_count, self.pipeline_depth,
                                                        task.spec.label_selector)
            if node_id is None:
                return
            del queue[skip]
            self._forward(task, node_id)

    def _recheck_infeasible(self) -> None:
        """Tasks no node could serve: queue those this node now fits (a
        bundle was committed) or a node that joined fits."""
        for key, waiting in list(self.tasks.infeasible.items()):
            for task_id in list(waiting):
                task = self.tasks.tasks[task_id]
                if self._fits_here(task):
                    waiting.remove(task_id)
                    self.tasks.enqueue(task)
                elif not self.view.nodes:
                    continue
                elif task.spec.HasField("actor_creation") and task.submitter.kind != RAYLET:
                    target = scheduling_policy.pick_spill_node(task.shape, self.view, {}, 1, task.spec.label_selector)
                    if target is not None:
                        waiting.remove(task_id)
                        self._forward_actor_creation(task, target)
                elif self._spillable(task) and scheduling_policy.fits_somewhere(task.shape, self.view,
                                                                                task.spec.label_selector):
                    waiting.remove(task_id)
                    task.remote_only = True
                    self.tasks.enqueue(task)
            if not waiting:
                del self.tasks.infeasible[key]
                self._warned_infeasible.discard(key)

    def _hand_back(self, task: TaskEntry) -> None:
        """A peer's task this node cannot run: it goes back to the peer, who
        places it again (its owner keeps its retries); nothing of it stays."""
        spec = task.spec
        self.tasks.tasks.pop(spec.task_id, None)
        for i in range(spec.num_returns):
            self.objects.remove_holder(ids.object_id_for(spec.task_id, i + 1), task.submitter)
        self.objects.unpin(spec.dependencies)
        self.objects.unpin(spec.nested_refs)
        outbox = task.submitter.outbox
        outbox.handed_back.append(spec.task_id)
        outbox.total.Clear()
        outbox.total.amounts.update(self.total)
        task.submitter.touch()

    def _borrower(self, node_id: bytes) -> ClientSession:
        """The holder standing for a peer's borrows of objects we own."""
        borrower = self.borrowers.get(node_id)
        if borrower is None:
            borrower = self.borrowers[node_id] = ClientSession(b"borrower:" + node_id, RAYLET, node_id=node_id)
        return borrower

    def _handed_back(self, node_id: bytes, task_ids: Iterable[bytes], total: common_pb2.ResourceSet) -> None:
        """Tasks we forwarded that the peer cannot run: placed again, with
        our view of that node corrected so they do not go straight back."""
        self.view.correct_total(node_id, dict(total.amounts))
        self._resources_changed = True
        for task_id in task_ids:
            task = self.tasks.tasks.get(task_id)
            if task is None or task.state != FORWARDED or task.node != node_id or task.spec.actor_id:
                continue
            self.forward_count[node_id] -= 1
            log.info("node %s handed %s back; placing it again", node_id.hex()[:8], task.spec.function_name)
            task.state, task.node, task.returns = WAITING, None, {}
            self._await_deps(task)

    def _locality_target(self, task: TaskEntry) -> bytes | None:
        by_node: collections.Counter[bytes] = collections.Counter()
        for object_id in task.spec.dependencies:
            value = self.objects.get(object_id)
            node_id = self.objects.stored_on(value) if value is not None else None
            if node_id is not None:
                by_node[self.node_id if self.objects.is_local(object_id) else node_id] += value.stored_size
        return scheduling_policy.locality_node(by_node, task.shape, self.view, self.node_id, task.spec.label_selector)

    def _peer_batch(self, node_id: bytes) -> raylet_pb2.ClientBatch:
        batches = self.peer_out.get(node_id)
        if batches is None:
            batches = self.peer_out[node_id] = []
            self._on_peer_send(node_id)
        if not batches or batches[-1].kill_actors:
            batches.append(raylet_pb2.ClientBatch())
        return batches[-1]

    def take_peer_batch(self, node_id: bytes) -> raylet_pb2.ClientBatch | None:
        batches = self.peer_out.get(node_id)
        if not batches:
            return None
        batch = batches.pop(0)
        if not batches:
            del self.peer_out[node_id]
        return batch

    def _forward(self, task: TaskEntry, node_id: bytes) -> None:
        """Submit the task to another node's raylet, with the values it uses.
        We stay its owner: its returns come back to us."""
        task.state = FORWARDED
        task.node = node_id
        task.returns = {}
        if not task.spec.actor_id:  # actor work does not take a node's task slots
            self.forward_count[node_id] += 1
        batch = self._peer_batch(node_id)
        todo, seen = [*task.spec.dependencies, *task.spec.nested_refs], set()
        while todo:
            object_id = todo.pop()
            value = self.objects.get(object_id)
            if object_id in seen or value is None:
                continue
            seen.add(object_id)
            batch.provide.append(value)
            todo.extend(value.nested_ids)
        batch.submit.append(task.spec)

    def update_view(self, nodes: list[gcs_pb2.NodeInfo]) -> None:
        """The GCS's list of alive nodes (the answer to each resource report)."""
        before = {n: v.total for n, v in self.view.nodes.items()}
        for node_id in self.view.update(nodes):
            self.peer_lost(node_id, "the GCS no longer lists it as alive")
        if before != {n: v.total for n, v in self.view.nodes.items()}:
            self._resources_changed = True
        self.schedule()

    def handle_peer_batch(self, node_id: bytes, batch: raylet_pb2.RayletBatch) -> None:
        """What a peer raylet sent us on the stream we opened to it."""
        if batch.borrowed:  # before the results of the tasks that lent them
            borrower = self._borrower(node_id)
            for object_id in batch.borrowed:
                self.objects.add_holder(object_id, borrower)
        for value in batch.ready:
            self._peer_value(node_id, value)
        for object_id in batch.returned_borrows:
            self.objects.remove_holder(object_id, self._borrower(node_id))
        if batch.handed_back:
            self._handed_back(node_id, batch.handed_back, batch.total)
        for ended in batch.actors_ended:
            self._remote_actor_ended(ended.actor_id, ended.message)
        if batch.logs:
            self._forward_logs(batch.logs, local_only=True)
        for warning in batch.warnings:
            log.warning("node %s: %s", node_id.hex()[:8], warning)
        self._after_changes()
        self.schedule()

    def _peer_value(self, node_id: bytes, value: common_pb2.ObjectValue) -> None:
        # Refs inside it that we do not know: the peer keeps them for us (if
        # the value itself is still wanted here).
        for nested in value.nested_ids if value.object_id in self.objects else ():
            if nested not in self.objects:
                self.objects.create_remote(nested, node_id)
                batch = self._peer_batch(node_id)
                batch.add_refs.append(nested)
                batch.subscribe.append(nested)
        task = self.tasks.tasks.get(ids.task_id_of(value.object_id))
        if task is not None and task.state == FORWARDED and task.node == node_id:
            task.returns[value.object_id] = value
            if len(task.returns) >= task.spec.num_returns:
                self._finish(task, returns=list(task.returns.values()))  # type: ignore[arg-type]
        else:
            self._ready(self.objects.set_ready(value))
        # The peer keeps what we may still read from it; the rest it may drop.
        if value.object_id in self.objects and (value.WhichOneof("location") == "stored_size" or value.nested_ids):
            self.objects.set_remote(value.object_id, node_id)
        else:
            self.objects.set_remote(value.object_id, None)
            self._peer_batch(node_id).remove_refs.append(value.object_id)

    def peer_lost(self, node_id: bytes, reason: str) -> None:
        """The stream to a peer broke (its node died or left): retry what we
        had sent it; what only it had is lost."""
        if node_id in self.view.lost:
            return
        log.warning("lost node %s: %s", node_id.hex()[:8], reason)
        self.view.remove(node_id)
        self.peer_out.pop(node_id, None)
        borrower = self.borrowers.pop(node_id, None)
        if borrower is not None:  # what it borrowed from us it cannot read any more
            self.objects.drop_session(borrower)
        restarting: list[RemoteActor] = []
        for remote in self.remote_actors.values():
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
        retried: dict[bytes, list[bytes]] = {}
        for task in self.tasks.forwarded_to(node_id):
            remote = self.remote_actors.get(task.spec.actor_id) if task.spec.actor_id else None
            if remote is not None and remote in restarting and task.spec.HasField("actor_creation"):
                self.tasks.tasks.pop(task.spec.task_id, None)  # started again below
            elif (remote is not None and remote in restarting and task.retries_left != 0 and not task.cancelled):
                task.retries_left -= 1
                task.state, task.node = QUEUED, None
                retried.setdefault(remote.actor_id, []).append(task.spec.task_id)
            elif task.spec.actor_id:
                self._finish(task, error=Failure(FailureType.ACTOR_DIED, 
                    remote.dead if remote is not None and remote.dead else
                    f"the node of actor {task.spec.actor_id.hex()[:8]} ({node_id.hex()[:8]}) died while it ran "
                    f"{task.spec.method_name or 'its constructor'}: {reason}"
                    + ("; it is restarting, but this call may not be retried (max_task_retries)"
                       if remote in restarting else "")))
            elif task.cancelled:
                self._finish(task, error=Failure(FailureType.TASK_CANCELLED, f"task {task.spec.function_name} was cancelled"))
            elif task.retries_left != 0:
                task.retries_left -= 1
                log.info("retrying %s after losing node %s (%d retries left)", task.spec.function_name,
                         node_id.hex()[:8], task.retries_left)
                task.state, task.node, task.returns = WAITING, None, {}
                self._await_deps(task)
            else:
                self._finish(task, error=Failure(FailureType.NODE_DIED, 
                    f"the node running {task.spec.function_name} ({node_id.hex()}) died: {reason}; "
                    f"no retries left (max_retries={task.spec.max_retries})"))
        self.forward_count.pop(node_id, None)
        for remote in restarting:
            remote.queue.extendleft(reversed(retried.get(remote.actor_id, [])))  # in their order
            self._restart_remote(remote, f"its node {node_id.hex()[:8]} died: {reason}")
        for remote in list(self.remote_actors.values()):
            self._pump_remote(remote)  # fails the calls still waiting for a dead host
        pending, stored = self.objects.lost_node(node_id)
        for object_id in pending:  # values it was to send us
            self._ready(self.objects.set_ready(error_value(object_id, Failure(FailureType.OWNER_DIED, 
                f"object {object_id.hex()} was owned by node {node_id.hex()}, which died: {reason}"))))
        for object_id, owned_there in stored:  # values only it had
            if not self._rebuild(object_id):
                self.objects.replace(error_value(object_id, Failure(
                    FailureType.OWNER_DIED if owned_there else FailureType.OBJECT_LOST,
                    f"object {object_id.hex()} was stored only on node {node_id.hex()}, which died ({reason}), "
                    "and cannot be rebuilt: it was put, not computed by a task of this node")))
        self._after_changes()
        self.schedule()

    # ---- pulls ---------------------------------------------------------

    def _make_local(self, object_id: bytes, task_id: bytes | None = None, session: ClientSession | None = None) -> bool:
        """True if the object is readable here; else start (or join) a pull
        and wake the task or session when it is done."""
        if self.objects.is_local(object_id):
            return True
        waiters = self.pulls.get(object_id)
        if waiters is None:
            value = self.objects.get(object_id)
            assert value is not None
            source = self.objects.stored_on(value)
            assert source is not None
            waiters = self.pulls[object_id] = ([], [], source)
            self._on_pull(object_id, source, value.stored_size)
        if task_id is not None:
            waiters[0].append(task_id)
        if session is not None:
            waiters[1].append(session)
        return False

    def _await_deps(self, task: TaskEntry) -> None:
        """Wait for a task's arguments (some may be pending: being rebuilt),
        then place it."""
        task.missing = 0
        for dep in dict.fromkeys(task.spec.dependencies):
            if self.objects.wait_for(dep, task.spec.task_id):
                task.missing += 1
        if task.missing == 0:
            self._deps_ready(task)

    def _rebuild(self, object_id: bytes) -> bool:
        """Run again the task that made a lost object (its lineage); False if
        there is none. Its lost arguments are rebuilt first, the same way."""
        entry = self.lineage.of_object(object_id)
        if entry is None:
            return False
        if self.objects.is_ready(object_id):
            self.objects.reset(object_id)
        spec = entry.spec
        if spec.task_id in self.tasks.tasks:
            return True  # rebuilding already
        entry.rebuilds += 1
        log.warning("rebuilding %s (return of %s) from its lineage (rebuild %d)", object_id.hex()[:12],
                    spec.function_name, entry.rebuilds)
        task = TaskEntry(spec, entry.submitter)
        self.tasks.tasks[spec.task_id] = task
        for object_id_ in (*spec.dependencies, *spec.nested_refs):
            self.objects.pin(object_id_)  # its own, as a submission's (the lineage may let go meanwhile)
        for dep in spec.dependencies:
            value = self.objects.get(dep)
            if value is not None and not self.objects.is_local(dep) and self.objects.stored_on(value) in self.view.lost:
                self._rebuild(dep)
        self._await_deps(task)
        return True

    def _fetch(self, session: ClientSession, object_id: bytes) -> None:
        if object_id not in self.objects:
            session.outbox.ready.append(error_value(object_id, Failure(FailureType.OBJECT_LOST, 
                f"object {object_id.hex()} is unknown to this node: it was freed (no reference was left) or never "
                "created")))
            session.touch()
        elif not self.objects.is_ready(object_id):
            self.objects.subscribe(object_id, session)
        elif self._make_local(object_id, session=session):
            session.outbox.ready.append(self.objects.local_value(object_id))
            session.touch()

    def unknown_objects(self, object_ids: Iterable[bytes]) -> list[bytes]:
        """Those of `object_ids` this raylet neither tracks nor is pulling."""
        return [object_id for object_id in object_ids if object_id not in self.objects and object_id not in self.pulls]

    def pull_done(self, object_id: bytes, error: str | None) -> None:
        """The store finished (or failed) pulling an object into this node."""
        task_ids, sessions, source = self.pulls.pop(object_id, ([], [], b""))
        known = object_id in self.objects
        if error is None and not (known and self.objects.is_ready(object_id)):
            self.objects.store_deletes.append(object_id)  # freed, or reset for a rebuild: drop the copy
        if known and not self.objects.is_ready(object_id):
            self._wait_again(object_id, task_ids, sessions)  # reset meanwhile: a rebuild runs
        elif error is None and known:
            self.objects.mark_local_copy(object_id)
            value = self.objects.local_value(object_id)
            for session in sessions:
                if not session.closed:
                    session.outbox.ready.append(value)
                    session.touch()
            self._ready(task_ids)
        elif known and (source in self.view.lost or source not in self.view.nodes) and self._rebuild(object_id):
            self._wait_again(object_id, task_ids, sessions)  # its node is gone: wait for the rebuilt value
        else:
            lost = Failure(FailureType.OBJECT_LOST, f"object {object_id.hex()} could not be fetched to this node: "
                                              f"{error or 'it was freed'}")
            for session in sessions:
                if not session.closed:
                    session.outbox.ready.append(error_value(object_id, lost))
                    session.touch()
            for task_id in task_ids:
                task = self.tasks.tasks.get(task_id)
                if task is not None and task.state == WAITING:
                    self._finish(task, error=lost)
                    self._dispatch_after(task)
        self._after_changes()
        self.schedule()

    def _wait_again(self, object_id: bytes, task_ids: list[bytes], sessions: list[ClientSession]) -> None:
        """Waiters of a pull whose object went pending: wait for its value."""
        for task_id in task_ids:
            if not self.objects.wait_for(object_id, task_id):
                self._ready([task_id])
        for session in sessions:
            self.objects.subscribe(object_id, session)

    def _dispatch_after(self, task: TaskEntry) -> None:
        """An actor call ended without running: the calls behind it may go."""
        if task.spec.actor_id and not task.spec.HasField("actor_creation"):
            actor = self.actors.get(task.spec.actor_id)
            if actor is not None:
                self._dispatch_actor(actor)
            elif task.spec.actor_id in self.remote_actors:
                self._pump_remote(self.remote_actors[task.spec.actor_id])

    def _fits_here(self, task: TaskEntry) -> bool:
        """Whether this node could ever run the task (resources and labels)."""
        return resources.fits(task.shape, self.total) and scheduling_policy.labels_match(task.spec.label_selector,
                                                                                           self.labels)

    def _pick_worker(self, task: TaskEntry) -> WorkerHandle | None:
        if task.remote_only:
            return None
        if self.pool.idle and resources.fits(task.shape, self.available):
            worker = self.pool.idle[-1]
            self.pool.lease(worker, task.shape, task.key)
            resources.subtract(self.available, task.shape)
            return worker
        best = None
        for worker in self.pool.leased.get(task.key, ()):
            if not worker.blocked and len(worker.assigned) < self.pipeline_depth:
                if best is None or len(worker.assigned) < len(best.assigned):
                    best = worker
        return best

    def _assign(self, task: TaskEntry, worker: WorkerHandle) -> None:
        if task.spec.HasField("actor_creation") and worker.actor_id is None:
            actor = self.actors.actors[task.spec.actor_id]
            actor.worker = worker
            self.pool.dedicate(worker, actor.actor_id)
            self.ensure_min_workers()
        task.state = ASSIGNED
        task.worker = worker
        worker.assigned.append(task.spec.task_id)
        execute = worker.session.outbox.execute.add()  # type: ignore[union-attr]
        execute.spec.CopyFrom(task.spec)
        for object_id in task.spec.dependencies:
            execute.args.append(self.objects.local_value(object_id))
        worker.session.touch()  # type: ignore[union-attr]

    def task_done(self, session: ClientSession, result: raylet_pb2.TaskResult) -> None:
        for value in result.returns:
            self._stamp(value)
        task = self.tasks.tasks.get(result.task_id)
        worker = self.pool.workers.get(session.worker_id)
        if worker is not None and result.task_id in worker.assigned:
            worker.assigned.remove(result.task_id)
            if not worker.assigned and worker.actor_id is None:
                self._release_lease(worker)
        if task is None:
            if result.actor_exit and worker is not None and worker.actor_id is not None:
                actor = self.actors.get(worker.actor_id)  # a direct call (never ours) ran exit_actor()
                if actor is not None:
                    self._end_actor(actor, Actor.EXITED, "it called ember.actor.exit_actor()")
            return
        if task.spec.actor_id:
            self._actor_task_done(task, result)
            return
        if result.application_error and task.spec.retry_exceptions and task.retries_left != 0 and not task.cancelled:
            task.retries_left -= 1
            self.tasks.enqueue(task)
            return
        self._finish(task, returns=list(result.returns))

    def _finish(self, task: TaskEntry, returns: list[common_pb2.ObjectValue] | None = None,
                error: Failure | None = None, failed_dep: common_pb2.ObjectValue | None = None) -> None:
        spec = task.spec
        self.tasks.tasks.pop(spec.task_id, None)
        if task.state == FORWARDED and not spec.actor_id:
            self.forward_count[task.node] -= 1  # type: ignore[index]
        actor = self.actors.get(spec.actor_id) if spec.actor_id else None
        if actor is not None and not spec.HasField("actor_creation"):
            actor.inflight.discard(spec.task_id)
            if task.state != ASSIGNED and spec.task_id in actor.queue:
                actor.queue.remove(spec.task_id)
        elif task.state == QUEUED:
            self.tasks.remove_queued(task)
        if returns is None:
            err_data = failed_dep.data if failed_dep is not None else error.encode()  # type: ignore[union-attr]
            returns = [
                common_pb2.ObjectValue(object_id=ids.object_id_for(spec.task_id, i + 1), data=err_data, is_error=True)
                for i in range(spec.num_returns)
            ]
        for value in returns:
            if ids.task_id_of(value.object_id) != spec.task_id:
                log.warning("dropping return %s that does not belong to task %s", value.object_id.hex(), spec.task_id.hex())
                continue
            self._ready(self.objects.set_ready(value))
        if actor is not None and spec.HasField("actor_creation") and actor.state != DEAD:
            return  # a restart runs the constructor again: its arguments stay pinned
        if spec.task_id in self.lineage.entries and self.lineage.entries[spec.task_id].rebuilds:
            self.objects.unpin(spec.dependencies)  # a rebuild's own pins; the lineage keeps its own
            self.objects.unpin(spec.nested_refs)
            return
        remote = self.remote_actors.get(spec.actor_id) if spec.HasField("actor_creation") else None
        if remote is not None and remote.creation is not None and remote.creation.actor_creation.max_restarts != 0:
            if any(v.is_error for v in returns):  # its constructor raised there: dead for good
                remote.dead = f"{spec.actor_creation.class_name} actor {spec.actor_id.hex()[:8]} failed to start"
                self._forget_creation(remote)
                self._pump_remote(remote)
            return  # started on another node: its arguments stay pinned for restarts there
        if not spec.actor_id and error is None and failed_dep is None:
            stored_elsewhere = {v.object_id for v in returns if v.object_id in self.objects
                                and self.objects.stored_on(v) not in (None, self.node_id)}
            if stored_elsewhere:
                # Kept to rebuild them if their node dies: the arguments stay pinned.
                self.lineage.record(spec, task.submitter, stored_elsewhere)
                self.objects.watched.update(stored_elsewhere)
                return
        self.objects.unpin(spec.dependencies)
        self.objects.unpin(spec.nested_refs)

    def _drop_task(self, task: TaskEntry) -> None:
        actor = self.actors.get(task.spec.actor_id) if task.spec.actor_id else None
        if actor is not None and task.spec.task_id in actor.queue:
            actor.queue.remove(task.spec.task_id)
        self.tasks.remove_queued(task)
        self.tasks.tasks.pop(task.spec.task_id, None)
        if task.state == FORWARDED:  # its peer need not finish it
            if not task.spec.actor_id:
                self.forward_count[task.node] -= 1  # type: ignore[index]
            self._peer_batch(task.node).cancel.add(task_id=task.spec.task_id)  # type: ignore[arg-type]
        self.objects.unpin(task.spec.dependencies)
        self.objects.unpin(task.spec.nested_refs)

    def _release_lease(self, worker: WorkerHandle) -> None:
        if worker.lease is not None and not worker.blocked:
            resources.add(self.available, worker.lease)
            for name in worker.lease:
                if name not in self.total:  # a bundle returned while the task ran
                    self.available.pop(name, None)
        worker.blocked = False
        self.pool.release(worker)

    # ---- workers -------------------------------------------------------

    def worker_blocked(self, session: ClientSession, blocked: raylet_pb2.WorkerBlocked) -> None:
        worker = self.pool.workers.get(session.worker_id)
        if worker is None:
            return
        # Tasks it hands back go to the front of their queues, in order.
        # (An actor's calls are its own: never handed back.)
        for task_id in reversed(blocked.returned_task_ids if worker.actor_id is None else ()):
            task = self.tasks.tasks.get(task_id)
            if task is not None and task_id in worker.assigned and task.state == ASSIGNED:
                worker.assigned.remove(task_id)
                self.tasks.enqueue(task, front=True)
        if worker.lease is None:
            return
        if blocked.blocked and not worker.blocked:
            worker.blocked = True
            resources.add(self.available, worker.lease)
        elif not blocked.blocked and worker.blocked:
            worker.blocked = False
            resources.subtract(self.available, worker.lease)  # may oversubscribe briefly

    def worker_died(self, worker_id: bytes, reason: str) -> None:
        worker = self.pool.remove(worker_id)
        if worker is None:
            return
        log.warning("worker %s (pid %d) died: %s", worker_id.hex()[:8], worker.process.pid, reason)
        self.to_reap.append(worker)
        if worker.lease is not None and not worker.blocked:
            resources.add(self.available, worker.lease)
        if worker.actor_id is not None:
            self._actor_worker_died(worker, reason)
            worker.assigned.clear()
        running = True
        for task_id in list(worker.assigned):
            task = self.tasks.tasks.get(task_id)
            if task is None:
                continue
            if task.cancelled:
                self._finish(task, error=Failure(FailureType.TASK_CANCELLED, f"task {task.spec.function_name} was cancelled"))
            elif not running:
                self.tasks.enqueue(task)  # never started: no retry spent
            elif task.retries_left != 0:
                task.retries_left -= 1
                log.info("retrying %s after worker death (%d retries left)", task.spec.function_name, task.retries_left)
                self.tasks.enqueue(task)
            else:
                self._finish(task, error=Failure(FailureType.WORKER_CRASHED, 
                    f"the worker running {task.spec.function_name} (pid {worker.process.pid}) died: {reason}; "
                    f"no retries left (max_retries={task.spec.max_retries})"))
            running = False
        worker.assigned.clear()
        if worker.session is not None:
            worker.session.close()
        self.ensure_min_workers()
        self.schedule()

    def retire_idle_workers(self, now: float, idle_timeout_s: float) -> list[WorkerHandle]:
        """Workers started beyond the pool's minimum (for blocked nested
        tasks) that have been idle for a while: removed from the pool here,
        for the caller to terminate. The longest idle go first."""
        retired = []
        for worker in sorted(self.pool.idle, key=lambda w: w.idle_since):
            if self.pool.size - len(retired) <= self.min_workers:
                break
            if now - worker.idle_since >= idle_timeout_s and not (
                    worker.session is not None and self.actors.owned_by(worker.session)):
                retired.append(worker)
        for worker in retired:
            self.pool.remove(worker.worker_id)
        return retired

    def ensure_min_workers(self) -> None:
        while self.pool.size < self.min_workers and self.pool.start() is not None:
            pass

    # ---- actors --------------------------------------------------------

    def _check_actor_creation(self, spec: raylet_pb2.TaskSpec) -> None:
        creation = spec.actor_creation
        if len(creation.actor_id) != ids.UNIQUE_ID_SIZE or spec.actor_id != creation.actor_id:
            raise ProtocolError(f"actor_creation.actor_id must be {ids.UNIQUE_ID_SIZE} bytes and equal actor_id")
        if spec.num_returns != 1:
            raise ProtocolError("an actor creation task has exactly one return (the ready object)")
        if creation.actor_id in self.actors.actors:
            raise ProtocolError(f"actor {creation.actor_id.hex()} already exists")

    def _add_actor(self, task: TaskEntry) -> None:
        spec = task.spec
        actor = ActorEntry(spec, task.submitter)
        self.actors.add(actor)
        # Its own scheduling key: the worker that takes it is never shared.
        task.key = ("actor", actor.actor_id)
        task.retries_left = 0  # a crashed constructor counts as a restart instead
        if actor.options.scoped:
            self.objects.watched.add(actor.ready_id)
        info = gcs_pb2.ActorInfo(
            actor_id=actor.actor_id, job_id=spec.job_id, class_name=actor.options.class_name,
            name=actor.options.name, namespace=actor.options.namespace, node_id=self.node_id,
            max_restarts=actor.options.max_restarts, detached=actor.options.detached,
            owner_node_id=task.submitter.node_id if task.submitter.kind == RAYLET else self.node_id)
        self._on_actor_event(gcs_pb2.RegisterActorRequest(actor=info))

    def _report(self, actor: ActorEntry) -> None:
        worker = actor.worker
        self._on_actor_event(gcs_pb2.UpdateActorRequest(
            actor_id=actor.actor_id, state=actor.state, death_cause=actor.death_cause,
            death_message=actor.death_message, node_id=self.node_id, num_restarts=actor.num_restarts,
            pid=worker.process.pid if worker is not None else 0))

    def _dispatch_actor(self, actor: ActorEntry) -> None:
        """Send the actor's queued calls whose arguments are ready to its
        worker. An ordered actor stops at the first call still waiting."""
        if actor.state != ALIVE or actor.worker is None:
            return
        queue = actor.queue
        if actor.ordered:
            while queue and self.tasks.tasks[queue[0]].state != WAITING:
                task_id = queue.popleft()
                actor.inflight.add(task_id)
                self._assign(self.tasks.tasks[task_id], actor.worker)
            return
        for task_id in [t for t in queue if self.tasks.tasks[t].state != WAITING]:
            queue.remove(task_id)
            actor.inflight.add(task_id)
            self._assign(self.tasks.tasks[task_id], actor.worker)

    def _actor_task_done(self, task: TaskEntry, result: raylet_pb2.TaskResult) -> None:
        actor = self.actors.actors[task.spec.actor_id]
        if task.spec.HasField("actor_creation"):
            if result.application_error:
                self._finish(task, returns=list(result.returns))
                self._end_actor(actor, Actor.CREATION_FAILED,
                                f"its constructor raised: {result.error_message or 'an exception'}")
                return
            if actor.state in (PENDING, RESTARTING):
                actor.state = ALIVE
                self._report(actor)
            self._finish(task, returns=list(result.returns))
            self._dispatch_actor(actor)
            self._maybe_end_out_of_scope(actor)
            return
        self._finish(task, returns=list(result.returns))
        if result.actor_exit:
            self._end_actor(actor, Actor.EXITED, "it called ember.actor.exit_actor()")
        else:
            self._maybe_end_out_of_scope(actor)

    def _maybe_end_out_of_scope(self, actor: ActorEntry) -> None:
        if actor.out_of_scope and actor.state == ALIVE and not actor.queue and not actor.inflight:
            self._end_actor(actor, Actor.OUT_OF_SCOPE, "every handle to it went out of scope")

    def kill_actor(self, actor_id: bytes, no_restart: bool, cause: int = 0, reason: str = "") -> None:
        actor = self.actors.get(actor_id)
        if actor is None:
            remote = self.remote_actors.get(actor_id) or self._locate_actor(actor_id)
            self._kill_remote(remote, cause, reason, no_restart)
            return
        if actor.state == DEAD:
            return
        if no_restart:
            self._end_actor(actor, cause or Actor.KILLED, reason or "it was killed by ember.kill()")
        elif actor.worker is not None:
            worker = actor.worker
            worker.process.kill()
            self.worker_died(worker.worker_id, "killed by ember.kill(no_restart=False)")

    def _end_actor(self, actor: ActorEntry, cause: int, message: str) -> None:
        """End an actor on purpose (no restart): kill its worker if it has one."""
        if actor.state == DEAD:
            return
        actor.ending = (cause, message)
        worker = actor.worker
        if worker is not None:
            worker.process.kill()
            self.worker_died(worker.worker_id, message)
        else:
            self._actor_dead(actor, cause, message)

    def _actor_worker_died(self, worker: WorkerHandle, reason: str) -> None:
        actor = self.actors.get(worker.actor_id)  # type: ignore[arg-type]
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
            task = self.tasks.tasks.get(task_id)
            if task is None or task.spec.HasField("actor_creation"):
                continue
            actor.inflight.discard(task_id)
            if restart and task.retries_left != 0 and not task.cancelled:
                task.retries_left -= 1
                task.state = QUEUED
                retry.append(task_id)
            else:
                self._finish(task, error=Failure(FailureType.ACTOR_DIED, 
                    f"{actor.describe()} died while running {task.spec.method_name}: {died}"
                    + ("; it is restarting, but this call may not be retried (max_task_retries)" if restart else "")))
        actor.queue.extendleft(reversed(retry))
        if not restart:
            cause, message = actor.ending or (Actor.WORKER_DIED, died)
            self._actor_dead(actor, cause, message)
            return
        actor.num_restarts += 1
        actor.state = RESTARTING
        log.warning("%s: %s; restarting (%d/%s)", actor.describe(), died, actor.num_restarts,
                    "inf" if actor.options.max_restarts < 0 else actor.options.max_restarts)
        self._report(actor)
        creation = self.tasks.tasks.get(actor.creation.task_id)
        if creation is None:
            creation = TaskEntry(actor.creation, actor.owner)
            creation.key = ("actor", actor.actor_id)
            self.tasks.tasks[actor.creation.task_id] = creation
        self.tasks.enqueue(creation)

    def _actor_dead(self, actor: ActorEntry, cause: int, message: str) -> None:
        actor.state = DEAD
        actor.death_cause, actor.death_message = cause, message
        log.info("%s is dead: %s", actor.describe(), message)
        self._report(actor)
        why = f"{actor.describe()} is dead: {message}"
        creator = actor.owner
        if creator.kind == RAYLET and self.sessions.get(creator.client_id) is creator:
            # Created for another node, which would start it again if ours
            # died: it must know the actor is over.
            creator.outbox.actors_ended.add(actor_id=actor.actor_id, message=why)
            creator.touch()
        error = Failure(FailureType.ACTOR_DIED, why)
        creation = self.tasks.tasks.get(actor.creation.task_id)
        if creation is not None:  # never placed, or mid-(re)start
            self._finish(creation, error=error)
        else:
            self.objects.unpin(actor.creation.dependencies)
            self.objects.unpin(actor.creation.nested_refs)
        for task_id in [*actor.queue, *actor.inflight]:
            task = self.tasks.tasks.get(task_id)
            if task is not None:
                self._finish(task, error=error)
        actor.queue.clear()
        actor.inflight.clear()
        self.actors.forget(actor)
        self.tasks.drop_queues(("actor", actor.actor_id))

    # ---- cancel --------------------------------------------------------

    def cancel(self, task_id: bytes, force: bool, recursive: bool, children_only: bool = False) -> None:
        if children_only:
            for child in self.tasks.children_of(task_id):
                self.cancel(child.spec.task_id, force, True)
            return
        task = self.tasks.tasks.get(task_id)
        if task is None:
            return  # finished already: cancel is a no-op, as in Ray
        if recursive:
            for child in self.tasks.children_of(task_id):
                self.cancel(child.spec.task_id, force, recursive)
        task.cancelled = True
        error = Failure(FailureType.TASK_CANCELLED, f"task {task.spec.function_name} was cancelled")
        if task.state in (WAITING, QUEUED):
            self._finish(task, error=error)
            self._dispatch_after(task)
        elif task.state == FORWARDED:
            self._peer_batch(task.node).cancel.add(task_id=task_id, force=force, recursive=recursive)  # type: ignore[arg-type]
        elif task.state == ASSIGNED and task.worker is not None:
            worker = task.worker
            if force and worker.actor_id is None:  # never kill an actor for one call
                worker.process.kill()
                self.worker_died(worker.worker_id, "killed by ember.cancel(force=True)")
            elif worker.session is not None:
                worker.session.outbox.cancel.append(task_id)
                worker.session.touch()

    # ---- placement group bundles ---------------------------------------

    def prepare_bundles(self, bundles: Iterable[raylet_pb2.Bundle]) -> str | None:
        """Reserve the bundles' resources, all or none; why not, or None."""
        fresh = [b for b in bundles if (b.placement_group_id, b.index) not in self.bundles]
        need: Resources = {}
        for b in fresh:
            resources.add(need, b.resources.amounts)
        if not resources.fits(need, self.available):
            return f"needs {resources.describe(need)}; free here: {resources.describe(self.available)}"
        for b in fresh:
            amounts = dict(b.resources.amounts)
            resources.subtract(self.available, amounts)
            self.bundles[(b.placement_group_id, b.index)] = (amounts, False)
        return None

    def commit_bundles(self, bundles: Iterable[raylet_pb2.Bundle]) -> None:
        """Reserved bundles become resources tasks in the group ask for."""
        for b in bundles:
            key = (b.placement_group_id, b.index)
            held = self.bundles.get(key)
            if held is None or held[1]:
                continue
            self.bundles[key] = (held[0], True)
            derived = placement.bundle_resources(b.placement_group_id.hex(), b.index, held[0])
            resources.add(self.total, derived)
            resources.add(self.available, derived)
            self._resources_changed = True
        self._after_changes()
        self.schedule()

    def return_bundles(self, bundles: Iterable[raylet_pb2.Bundle]) -> None:
        for b in bundles:
            held = self.bundles.pop((b.placement_group_id, b.index), None)
            if held is None:
                continue
            amounts, committed = held
            if committed:
                derived = placement.bundle_resources(b.placement_group_id.hex(), b.index, amounts)
                resources.subtract(self.total, derived)
                resources.subtract(self.available, derived)
                for name in derived:
                    if self.total.get(name, 0.0) <= 1e-9:
                        self.total.pop(name, None)
                        self.available.pop(name, None)
            resources.add(self.available, amounts)
        self.schedule()

    # ---- views ---------------------------------------------------------

    def infeasible_shapes(self) -> list[Resources]:
        return [dict(self.tasks.tasks[q[0]].shape) for q in self.tasks.infeasible.values() if q]

    def stats(self) -> raylet_pb2.GetNodeStatsReply:
        reply = raylet_pb2.GetNodeStatsReply(
            node_id=self.node_id,
            num_workers=len(self.pool.workers),
            num_idle_workers=len(self.pool.idle),
            num_queued_tasks=self.tasks.num_queued(),
            num_running_tasks=self.tasks.num_assigned(),
            num_objects=len(self.objects),
            inline_bytes=self.objects.inline_bytes,
            num_actors=len(self.actors),
        )
        reply.total.amounts.update(self.total)
        reply.available.amounts.update(self.available)
        for shape in self.infeasible_shapes():
            reply.infeasible.add().amounts.update(shape)
        return reply


def _add_or_cancel(add_to: Any, opposite: Any, object_id: bytes) -> None:
    """Note a borrow or its return for the owner, unless the batch not yet
    sent holds the opposite note: then the owner need hear of neither."""
    if object_id in opposite:
        opposite.remove(object_id)
    else:
        add_to.append(object_id)
