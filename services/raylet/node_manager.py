"""The raylet's logic: client events in, messages and process actions out.

No sockets here: sessions are outboxes, workers come from an injected pool,
so this is tested directly (tests/unit/test_node_manager.py). The servicer
feeds it the batches of each client's stream; `service` runs the timers.

This class keeps the client batch protocol, task submission and the
scheduling loop (arguments ready -> queued -> a worker -> done); the rest is
delegated to one part per responsibility, each given the callbacks it needs:
`peer_forwarding` (tasks to and from other nodes), `remote_actors` (actors
other nodes host), `local_actors` (actors hosted here), `object_pulls`
(pulls and lineage rebuilds), `task_placement` (where a ready task goes),
`task_completion` (a task's end), `worker_leases` (workers and their
leases), `cancellation` and `bundles` (placement group reservations).
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import time
from typing import Any, Callable, Iterable, Protocol, Sequence

from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember_common import ids, service_spans, task_error_types
from ember_common.errors import ProtocolError
from ember_common.object_layout import Failure, FailureType
from ember_common.span_export import SAMPLED_DIGITS
from ember_raylet import resources, scheduling_policy, task_spans
from ember_raylet.actor_table import Actor, ActorTable
from ember_raylet.admission import Admission
from ember_raylet.bundles import BundleReservations
from ember_raylet.cancellation import Cancellation
from ember_raylet.client_session import DRIVER, RAYLET, WORKER, ClientSession
from ember_raylet.cluster_view import ClusterView
from ember_raylet.lineage import Lineage
from ember_raylet.local_actors import ActorEvent, LocalActors
from ember_raylet.memory_monitor import Candidate
from ember_raylet.metrics import APPLICATION_ERROR, RayletMetrics
from ember_raylet.object_directory import ObjectDirectory, error_value
from ember_raylet.object_pulls import ObjectPulls
from ember_raylet.peer_forwarding import PeerForwarding
from ember_raylet.remote_actors import RemoteActors
from ember_raylet.resources import Resources
from ember_raylet.task_checks import check_object_id, check_task_spec
from ember_raylet.task_completion import TaskCompletion
from ember_raylet.task_events import TaskEvents
from ember_raylet.task_manager import ASSIGNED, QUEUED, WAITING, TaskEntry, TaskManager
from ember_raylet.task_placement import TaskPlacement
from ember_raylet.user_metrics import UserMetrics
from ember_raylet.worker_leases import WorkerLeases
from ember_raylet.worker_pool import WorkerHandle, WorkerPool

__all__ = ["NodeManager", "error_value"]

log = logging.getLogger(__name__)
# Workers started at once: on a small machine, starting many at a time slows
# each start (and what runs meanwhile) more than it helps.
_MAX_STARTS = 4


def _ignore(*_args: Any) -> None:
    pass


class RuntimeEnvBuilder(Protocol):
    """What the scheduler needs of ember_raylet.runtime_envs.RuntimeEnvs."""

    def is_ready(self, env: str) -> bool: ...

    def prepare(self, env: str) -> None: ...


class NodeManager:
    def __init__(
        self,
        node_id: bytes,
        total: Resources,
        pool: WorkerPool,
        min_workers: int,
        pipeline_depth: int,
        nested_tasks_warning: int = 200,
        on_store_delete: Callable[[list[bytes]], None] = _ignore,
        on_actor_event: Callable[[ActorEvent], None] = _ignore,
        on_kv_get: Callable[[ClientSession, raylet_pb2.KvKey], None] = _ignore,
        on_pull: Callable[[bytes, bytes, int, str], None] = _ignore,
        on_peer_send: Callable[[bytes], None] = _ignore,
        on_actor_lookup: Callable[[bytes, float], None] = _ignore,
        labels: dict[str, str] | None = None,
        count_tasks: bool = True,
        admission: Admission | None = None,
        runtime_envs: RuntimeEnvBuilder | None = None,
        task_events: TaskEvents | None = None,
    ) -> None:
        # Builds runtime environments on this node (None: tasks that need one fail).
        self._runtime_envs = runtime_envs
        self.labels = dict(labels or {})
        self._count_tasks = count_tasks  # metrics on: each result's outcome and latencies are recorded
        # Each task's lifecycle, for `ember list tasks` and the timeline (None: off).
        self.task_events = task_events
        self.node_id = node_id
        self.total = dict(total)  # changed in place only: the parts share these two
        self.available = dict(total)
        self.pool = pool
        pipeline_depth = max(1, pipeline_depth)
        self.objects = ObjectDirectory(node_id)
        self.tasks = TaskManager()
        self.admission = admission or Admission()  # backpressure on clients (queued tasks, inline values)
        self.view = ClusterView(node_id)  # other nodes: where tasks this node cannot run now may go
        self.job_driver_node: dict[bytes, bytes] = {}  # where each job's output goes
        self.lineage = Lineage()  # how to rebuild our objects stored on other nodes
        self.sessions: dict[bytes, ClientSession] = {}
        self.actors = ActorTable()
        self.metrics = RayletMetrics()  # event counts; states are read at scrape time (metrics.RayletCollector)
        self.user_metrics = UserMetrics()  # ember.util.metrics values of this node's clients
        # Workers gone from the pool whose processes the caller must still
        # reap (wait for), so none lingers as a zombie.
        self.to_reap: list[WorkerHandle] = []
        self._on_store_delete = on_store_delete
        self._on_kv_get = on_kv_get
        # Totals or the cluster view changed: infeasible tasks are looked at again.
        self._resources_changed = False
        # The submitter of work this raylet starts on its own (actor restarts):
        # never connected, so nothing is pushed to it.
        internal = ClientSession(b"", RAYLET, node_id=node_id)
        internal.closed = True

        self.forward_count: collections.Counter[bytes] = collections.Counter()  # unfinished, per node
        # (The lambdas reach parts made below; they run only for actor
        # creations and dropped forwarded tasks.)
        self.completion = TaskCompletion(
            node_id, self.tasks, self.objects, self.actors, self.lineage, self.forward_count, self._ready,
            lambda actor_id, returns: self.remote.creation_finished(actor_id, returns),
            lambda node_id_: self.peers.peer_batch(node_id_), self.metrics, task_events)
        self._finish = finish = self.completion.finish
        self.peers = PeerForwarding(node_id, self.total, pipeline_depth, self.view, self.tasks, self.objects,
                                    self.forward_count, on_peer_send, finish, self._ready, self._await_deps)
        self.remote = RemoteActors(self.view, self.tasks, self.objects, self.actors, internal, on_actor_lookup,
                                   self.peers.forward, self.peers.peer_batch, finish)
        self.local_actors = LocalActors(node_id, self.actors, self.tasks, self.objects, self.sessions,
                                        on_actor_event, finish, self._assign, self.worker_died)
        self.workers = WorkerLeases(pool, self.total, self.available, min_workers, pipeline_depth, self.tasks,
                                    finish, self.local_actors.worker_died, self.actors.owned_by, self._warn_job,
                                    nested_tasks_warning)
        self.fetches = ObjectPulls(self.objects, self.tasks, self.view, self.lineage, on_pull, finish,
                                   self._ready, self._await_deps, self._dispatch_after)
        self.placement = TaskPlacement(
            node_id, self.total, self.labels, self.view, self.tasks, self.objects, finish, self._dispatch_after,
            self.peers, self.remote, self.local_actors.call_ready, self.fetches.make_local)
        self.cancellation = Cancellation(self.tasks, finish, self._dispatch_after, self.peers.peer_batch,
                                         self.worker_died)
        self.reservations = BundleReservations(self.total, self.available)
        # The parts' state, under the names the service and tests read.
        self.remote_actors = self.remote.actors
        self.bundles = self.reservations.held
        self.peer_out = self.peers.peer_out
        # Bound once: these are on the per-task path.
        self._forward = self.peers.forward
        self._spillable = self.peers.spillable
        self._deps_ready = self.placement.place
        self._pick_worker = self.workers.pick
        self._release_lease = self.workers.release

    # ---- clients -------------------------------------------------------

    def connect(self, session: ClientSession) -> None:
        self.sessions[session.client_id] = session
        self.admission.connected(session)
        if session.kind == DRIVER:
            self.metrics.driver_connects += 1
        if session.kind == WORKER:
            handle = self.pool.register(session.worker_id, session)
            if handle is None:
                raise ProtocolError(f"unknown worker id {session.worker_id.hex()}")
        self.schedule()

    def disconnect(self, session: ClientSession) -> None:
        session.close()
        self.sessions.pop(session.client_id, None)
        self.user_metrics.client_gone(session.client_id)
        self.admission.forget(session)
        if session.kind == DRIVER:
            self.metrics.driver_disconnects += 1
        owner_exited = f"its owner ({'driver' if session.kind == DRIVER else 'worker'} pid {session.pid}) exited"
        for actor in self.actors.owned_by(session):
            self.local_actors.end(actor, Actor.OWNER_DIED, owner_exited)
        for actor_id in self.remote.owned_by(session):
            self.remote.kill(actor_id, Actor.OWNER_DIED, owner_exited)
        if session.kind == WORKER:
            self.worker_died(session.worker_id, "the worker's connection closed")
        else:
            # A driver is gone: its queued work is moot.
            for task in [t for t in self.tasks.tasks.values() if t.submitter is session and t.state != ASSIGNED
                         and not (t.spec.HasField("actor_creation") and t.spec.actor_creation.detached)]:
                self.completion.drop(task)
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
        # Which fields are set, asked once: each look at an empty repeated
        # field builds a wrapper (~0.3 us), and most batches set one field.
        fields = {fd.name for fd, _ in batch.ListFields()}
        if "promises" in fields:
            for object_id in batch.promises:
                check_object_id(object_id)
                self.objects.create_pending(object_id, session)
                session.promised.add(object_id)
        if "puts" in fields:
            for value in batch.puts:
                check_object_id(value.object_id)
                self._stamp(value)
                session.promised.discard(value.object_id)
                self._ready(self.objects.put(value, session))
        if "provide" in fields:
            if session.kind != RAYLET:
                raise ProtocolError("only raylets may `provide` values")
            for value in batch.provide:
                check_object_id(value.object_id)
            borrowed = self.objects.provide(batch.provide, session)
            if borrowed:  # before any result of the tasks they came with
                for object_id in borrowed:
                    _add_or_cancel(session.outbox.borrowed, session.outbox.returned_borrows, object_id)
                session.touch()
        if "add_refs" in fields:
            for object_id in batch.add_refs:
                self.objects.add_holder(object_id, session)
        if "submit" in fields:
            for spec in batch.submit:
                self.submit(spec, session)
            self.admission.submitted(session, len(batch.submit), len(self.tasks.tasks))
        if self.objects.inline_bytes > self.admission.max_inline_bytes:
            self.admission.stored_inline(self.objects.inline_bytes, self.sessions.values())
        if "provide" in fields:
            self.objects.release_unused(v.object_id for v in batch.provide)
        if "results" in fields:
            for result in batch.results:
                self.task_done(session, result)
        if "subscribe" in fields:
            for object_id in batch.subscribe:
                check_object_id(object_id)
                if not self.objects.subscribe(object_id, session):
                    session.outbox.ready.append(error_value(object_id, Failure(FailureType.OBJECT_LOST,
                        f"object {object_id.hex()} is unknown to this node: it was freed (no reference "
                        "was left) or never created")))
                    session.touch()
        if "fetch" in fields:
            for object_id in batch.fetch:
                check_object_id(object_id)
                self.fetches.fetch(session, object_id)
        if "remove_refs" in fields:
            for object_id in batch.remove_refs:
                self.objects.remove_holder(object_id, session)
        if "cancel" in fields:
            for cancel in batch.cancel:
                self.cancel(cancel.task_id, cancel.force, cancel.recursive, cancel.children_only)
        if "blocked" in fields:
            self.worker_blocked(session, batch.blocked)
        if "reclaimed" in fields:
            self.workers.reclaimed(session, batch.reclaimed)
        if "threads_blocked" in fields:
            for blocked in batch.threads_blocked:
                self.workers.thread_blocked(session, blocked)
        if "logs" in fields:
            self._forward_logs(batch.logs, local_only=session.kind == RAYLET)
        if "kill_actors" in fields:
            for kill in batch.kill_actors:
                self.kill_actor(kill.actor_id, kill.no_restart, kill.death_cause, kill.reason)
        if "kv_get" in fields:
            for key in batch.kv_get:
                self._on_kv_get(session, key)
        if "user_metrics" in fields:
            self.user_metrics.report(session.client_id, batch.user_metrics)
        if "task_events" in fields and self.task_events is not None:
            self.task_events.direct_calls(batch.task_events, session.worker_id, session.pid)
        self._after_changes()
        self.schedule()

    def _stamp(self, value: common_pb2.ObjectValue) -> None:
        """A stored value written on this node says so, wherever it travels."""
        if not value.node_id and value.WhichOneof("location") == "stored_size":
            value.node_id = self.node_id

    def _after_changes(self) -> None:
        """Act on what freeing objects set off (ending what watched them may free more)."""
        freed = self.objects.take_freed()
        while freed is not None:
            for ready_id in freed.watched:
                self.local_actors.out_of_scope(ready_id)
                for actor_id in self.remote.scoped_by(ready_id):
                    self.remote.kill(actor_id, Actor.OUT_OF_SCOPE, "every handle to it went out of scope")
                spec = self.lineage.release(ready_id)
                if spec is not None:  # no return of it left: its arguments may go
                    self.objects.unpin(spec.dependencies)
                    self.objects.unpin(spec.nested_refs)
            for node_id, object_id in freed.remote_releases:
                if node_id in self.view.nodes:
                    self.peers.peer_batch(node_id).remove_refs.append(object_id)
            for lender, object_id in freed.borrow_returns:
                if self.sessions.get(lender.client_id) is lender:  # (gone: it dropped our borrows itself)
                    _add_or_cancel(lender.outbox.returned_borrows, lender.outbox.borrowed, object_id)
                    lender.touch()
            if freed.store_deletes:
                self._on_store_delete(freed.store_deletes)
            freed = self.objects.take_freed()

    def _warn_job(self, job_id: bytes, message: str) -> None:
        """A warning for the drivers of a job, wherever they run (as a line
        of this raylet's stderr, printed like task output)."""
        self._forward_logs([raylet_pb2.LogLines(job_id=job_id, pid=os.getpid(), task_name="raylet", is_stderr=True,
                                                lines=[f"WARNING: {message}"])])

    def _forward_logs(self, logs: Iterable[raylet_pb2.LogLines], local_only: bool = False) -> None:
        for lines in logs:
            driver_node = self.job_driver_node.get(lines.job_id, self.node_id)
            if driver_node != self.node_id and not local_only:
                if driver_node in self.view.nodes:
                    self.peers.peer_batch(driver_node).logs.append(lines)
                continue
            for session in self.sessions.values():
                if session.kind == DRIVER and session.job_id == lines.job_id and not session.closed:
                    session.outbox.logs.append(lines)
                    session.touch()

    # ---- tasks ---------------------------------------------------------

    def submit(self, spec: raylet_pb2.TaskSpec, submitter: ClientSession) -> None:
        if spec.task_id in self.tasks.tasks:
            return  # a resubmission of a task we have (its spec was checked then): idempotent
        check_task_spec(spec)
        creation = spec.HasField("actor_creation")
        if creation:
            self.local_actors.check_creation(spec)
        if submitter.kind == DRIVER:
            spec.driver_node_id = self.node_id
        elif not spec.driver_node_id:
            spec.driver_node_id = self.job_driver_node.get(spec.job_id, self.node_id)
        self.job_driver_node[spec.job_id] = spec.driver_node_id
        task = TaskEntry(spec, submitter)
        self.tasks.tasks[spec.task_id] = task
        if self.task_events is not None:
            task.describe = self.task_events.submitted(spec, bool(spec.dependencies))
        for i in range(spec.num_returns):
            self.objects.create_pending(ids.object_id_for(spec.task_id, i + 1), submitter)
        if submitter.promised and spec.direct_worker_id:  # the task will make what was promised
            submitter.promised.difference_update(ids.object_id_for(spec.task_id, i + 1) for i in range(spec.num_returns))
        for object_id in (*spec.dependencies, *spec.nested_refs):
            self.objects.pin(object_id)
        if creation:
            self.local_actors.add(task)
        elif spec.actor_id:
            actor = self.actors.get(spec.actor_id)
            if actor is None:  # hosted elsewhere (or unknown): sent on from here
                self.remote.queue_call(task)
            elif not self.local_actors.queue_call(actor, task):
                return
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

    def _ready(self, waiting: list[bytes]) -> None:
        for task_id in waiting:
            task = self.tasks.tasks.get(task_id)
            if task is not None and task.state == WAITING:
                task.missing -= 1
                if task.missing == 0:
                    self._deps_ready(task)

    def _await_deps(self, task: TaskEntry) -> None:
        """Wait for a task's arguments (some may be pending: being rebuilt),
        then place it."""
        task.missing = 0
        for dep in dict.fromkeys(task.spec.dependencies):
            if self.objects.wait_for(dep, task.spec.task_id):
                task.missing += 1
        if task.missing == 0:
            self._deps_ready(task)

    def _dispatch_after(self, task: TaskEntry) -> None:
        """An actor call ended without running: the calls behind it may go."""
        if task.spec.actor_id and not task.spec.HasField("actor_creation"):
            actor = self.actors.get(task.spec.actor_id)
            if actor is not None:
                self.local_actors.dispatch(actor)
            elif task.spec.actor_id in self.remote_actors:
                self.remote.pump(self.remote_actors[task.spec.actor_id])

    # ---- scheduling ----------------------------------------------------

    def schedule(self) -> None:
        """Hand queued tasks to workers: idle workers first (each lease holds
        the task's resources), then pipeline onto leased workers of the same
        shape, then start workers."""
        if self._resources_changed:
            self._resources_changed = False
            if self.tasks.infeasible:
                self.placement.recheck_infeasible()
        if self.admission.engaged:
            self.admission.drained(len(self.tasks.tasks), self.objects.inline_bytes, self.sessions.values())
        want_workers = 0
        want_env: dict[str, int] = {}  # workers to start, per runtime environment
        planned: Resources = {}  # what the workers to start will be leased with
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
                    if task.env and not self._env_ready(task.env):
                        break  # (scheduled again once it is built)
                    # Start workers for as many queued tasks as free resources allow
                    # (free now: earlier queues' tasks may have taken some).
                    spare = dict(self.available)
                    resources.subtract(spare, planned)
                    num_planned = 0
                    for task_id in itertools.islice(queue, _MAX_STARTS):
                        queued = self.tasks.tasks[task_id]
                        shape = queued.shape
                        if queued.remote_only or not resources.fits(shape, spare) or want_workers >= _MAX_STARTS:
                            break
                        resources.subtract(spare, shape)
                        resources.add(planned, shape)
                        want_workers += 1
                        want_env[queued.env] = want_env.get(queued.env, 0) + 1
                        num_planned += 1
                    if self.view.nodes:
                        self.peers.spill(queue, num_planned)
                    break
                queue.popleft()
                self._assign(task, worker)
        for env, wanted in want_env.items():
            for _ in range(max(0, wanted - self.pool.num_starting(env))):
                if self.pool.start(env) is None:
                    break

    def _env_ready(self, env: str) -> bool:
        """Whether workers can start in `env` on this node now; if not, it
        is being built (or, with no builder, its tasks fail)."""
        builder = self._runtime_envs
        if builder is None:
            self.runtime_env_failed(env, "this raylet builds no runtime environments")
            return False
        if builder.is_ready(env):
            return True
        builder.prepare(env)
        return False

    def runtime_env_ready(self, env: str) -> None:
        self.schedule()

    def runtime_env_failed(self, env: str, message: str) -> None:
        """Building `env` failed: the tasks here waiting for it fail with
        RuntimeEnvSetupError (an actor's creation ends the actor)."""
        failed = [t for t in self.tasks.tasks.values() if t.env == env and t.state == QUEUED]
        for task in failed:
            self.tasks.remove_queued(task)
            error = Failure(FailureType.RUNTIME_ENV_SETUP_FAILED,
                            f"the runtime_env of {task.spec.function_name} could not be set up on node "
                            f"{self.node_id.hex()[:8]}: {message}")
            actor = self.actors.get(task.spec.actor_id) if task.spec.HasField("actor_creation") else None
            if actor is not None:  # (its death fails the creation and its calls, with this message)
                self.local_actors.end(actor, Actor.CREATION_FAILED, error.message)
            else:
                self._finish(task, error=error)
        self._after_changes()

    def _assign(self, task: TaskEntry, worker: WorkerHandle) -> None:
        if task.spec.HasField("actor_creation") and worker.actor_id is None:
            actor = self.actors.actors[task.spec.actor_id]
            actor.worker = worker
            self.pool.dedicate(worker, actor.actor_id)
            self.ensure_min_workers()
        task.state = ASSIGNED
        task.worker = worker
        if self.task_events is not None:
            self.task_events.dispatched(task.spec, worker.worker_id, worker.session.pid)  # type: ignore[union-attr]
        if (service_spans.active is not None and not task.span_leased
                and task.spec.traceparent[54:55] in SAMPLED_DIGITS):
            task.span_leased = True
            task_spans.leased(task, self.node_id, worker.session.pid)  # type: ignore[union-attr]
        execute = worker.session.outbox.execute.add()  # type: ignore[union-attr]
        if task.spec.task_id in worker.threads:  # leased by pick, beside the worker's waiting tasks
            execute.own_thread = True
        else:
            if not worker.assigned:
                worker.head_since = time.monotonic()
            worker.assigned.append(task.spec.task_id)
        execute.spec.CopyFrom(task.spec)
        for object_id in task.spec.dependencies:
            execute.args.append(self.objects.local_value(object_id))
        worker.session.touch()  # type: ignore[union-attr]

    def task_done(self, session: ClientSession, result: raylet_pb2.TaskResult) -> None:
        returns = result.returns  # (once: each look at a repeated field builds a wrapper)
        for value in returns:
            self._stamp(value)
        task = self.tasks.tasks.get(result.task_id)
        if result.partial:
            self.stream_values(task, returns)
            return
        if task is not None and (self._count_tasks or self.task_events is not None):
            self._record_run(task, result, returns, session)
        worker = self.pool.workers.get(session.worker_id)
        if worker is None or (worker.threads and self.workers.thread_done(worker, result.task_id)):
            pass  # (a task on a thread of its own: the worker's lease is not its)
        elif result.task_id in worker.assigned:
            worker.assigned.remove(result.task_id)
            if worker.assigned:
                worker.head_since = time.monotonic()  # (the next one starts about now)
            elif worker.actor_id is None:
                self._release_lease(worker)
        if task is None:
            if result.actor_exit and worker is not None and worker.actor_id is not None:
                actor = self.actors.get(worker.actor_id)  # a direct call (never ours) ran exit_actor()
                if actor is not None:
                    self.local_actors.end(actor, Actor.EXITED, "it called ember.actor.exit_actor()")
            return
        if task.spec.actor_id:
            self.local_actors.task_done(task, result)
            return
        if result.application_error and task.spec.retry_exceptions and task.take_retry():
            self.tasks.enqueue(task)
            return
        self._finish(task, returns=list(returns))

    def _record_run(self, task: TaskEntry, result: raylet_pb2.TaskResult, returns: Sequence[common_pb2.ObjectValue],
                    session: ClientSession) -> None:
        """Metrics and the task event of a task (or actor call) that ran on
        a worker here: how it ended, how long it waited and ran. (One pass
        over the result for both: on every task's path.)"""
        if result.application_error:
            error: str | None = APPLICATION_ERROR
        elif returns and returns[0].is_error:  # ended by the runtime while it ran
            error = "ActorDiedError" if result.actor_exit else "TaskCancelledError"
        else:
            error = None
        run_time = result.run_time_s  # (0: a worker that does not say)
        if self._count_tasks:
            m = self.metrics
            if error is None:
                m.tasks_succeeded += 1
            else:
                m.tasks_failed[error] += 1
            if run_time > 0:
                m.execution_time.observe(run_time)
                waited = time.monotonic() - task.submitted_at - run_time
                m.scheduling_latency.observe(waited if waited > 0.0 else 0.0)
        if self.task_events is not None:
            if error is None:
                self.task_events.ran(task.spec, result.start_time, session.worker_id, session.pid,
                                     describe=task.describe, run_time=run_time)
            else:
                self.task_events.ran(task.spec, result.start_time, session.worker_id, session.pid,
                                     task_error_types.of_result(result), result.error_message,
                                     describe=task.describe, run_time=run_time)

    def stream_values(self, task: TaskEntry | None, values: Iterable[common_pb2.ObjectValue]) -> None:
        """Values a streaming generator yielded (returns 2, 3, ...): held by
        its submitter and sent to it now, the task going on."""
        for value in values:
            if (task is not None and ids.task_id_of(value.object_id) == task.spec.task_id
                    and ids.index_of(value.object_id) > task.spec.num_returns):
                self._ready(self.objects.set_streamed(value, task.submitter))
            else:  # a stream nobody waits for any more, or not its: dropped
                self.objects.set_ready(value)

    # ---- workers -------------------------------------------------------

    def worker_blocked(self, session: ClientSession, blocked: raylet_pb2.WorkerBlocked) -> None:
        self.workers.blocked(session, blocked)

    def worker_died(self, worker_id: bytes, reason: str,
                    failure_type: FailureType = FailureType.WORKER_CRASHED) -> None:
        worker = self.workers.died(worker_id, reason, failure_type)
        if worker is not None:
            self.to_reap.append(worker)
            self.schedule()

    def ensure_min_workers(self) -> None:
        self.workers.ensure_min_workers()

    def reclaim_stalled(self, now: float) -> None:
        """Ask back the tasks pipelined behind a task that has run long
        while their resources are free (a fast task would otherwise wait
        out a slow one while a CPU idles); they come back as
        ClientBatch.reclaimed and queue again."""
        for worker, task_ids in self.workers.stalled_pipelines(now):
            worker.session.outbox.reclaim.extend(task_ids)  # type: ignore[union-attr]
            worker.session.touch()  # type: ignore[union-attr]

    def memory_candidates(self) -> list[Candidate]:
        """The workers running work (tasks, actors), as the memory monitor
        chooses among them."""
        out = []
        for worker in self.pool.workers.values():
            pid = worker.process.pid
            if worker.actor_id is not None:
                actor = self.actors.get(worker.actor_id)
                if actor is not None:
                    out.append(Candidate(worker.worker_id, pid, actor.restarts_left(), worker.started_at,
                                         actor.describe()))
                continue
            running = [t for task_id in (*worker.threads, *itertools.islice(worker.assigned, 1))
                       if (t := self.tasks.tasks.get(task_id)) is not None]
            if running:  # (its lease began when it last left the idle list)
                out.append(Candidate(worker.worker_id, pid, all(t.retries_left != 0 for t in running),
                                     worker.idle_since, ", ".join(sorted({t.spec.function_name for t in running}))))
        return out

    def retire_idle_workers(self, now: float, idle_timeout_s: float) -> list[WorkerHandle]:
        """Idle workers beyond the minimum, removed from the pool for the caller to terminate."""
        return self.workers.retire_idle(now, idle_timeout_s)

    # ---- other nodes ---------------------------------------------------

    def update_view(self, nodes: list[gcs_pb2.NodeInfo]) -> None:
        """The GCS's list of alive nodes (the answer to each resource report)."""
        before = {n: v.total for n, v in self.view.nodes.items()}
        for node_id in self.view.update(nodes):
            self.peer_lost(node_id, "the GCS no longer lists it as alive")
        if before != {n: v.total for n, v in self.view.nodes.items()}:
            self._resources_changed = True
            if self.remote.homeless:
                self.remote.place_homeless()
        self.schedule()

    def handle_peer_batch(self, node_id: bytes, batch: raylet_pb2.RayletBatch) -> None:
        """What a peer raylet sent us on the stream we opened to it."""
        if batch.borrowed:  # before the results of the tasks that lent them
            borrower = self.peers.borrower(node_id)
            for object_id in batch.borrowed:
                self.objects.add_holder(object_id, borrower)
        for value in batch.ready:
            self.peers.peer_value(node_id, value)
        for object_id in batch.returned_borrows:
            self.objects.remove_holder(object_id, self.peers.borrower(node_id))
        if batch.handed_back:
            self._resources_changed = True
            self.peers.handed_back(node_id, batch.handed_back, batch.total)
        for ended in batch.actors_ended:
            self.remote.ended(ended.actor_id, ended.message)
        if batch.logs:
            self._forward_logs(batch.logs, local_only=True)
        for warning in batch.warnings:
            log.warning("node %s: %s", node_id.hex()[:8], warning)
        self._after_changes()
        self.schedule()

    def take_peer_batch(self, node_id: bytes) -> raylet_pb2.ClientBatch | None:
        return self.peers.take_peer_batch(node_id)

    def peer_lost(self, node_id: bytes, reason: str) -> None:
        """The stream to a peer broke (its node died or left): retry what we
        had sent it; what only it had is lost."""
        if node_id in self.view.lost:
            return
        log.warning("lost node %s: %s", node_id.hex()[:8], reason)
        self.view.remove(node_id)
        self.peers.drop_peer(node_id)
        restarting = self.remote.node_lost(node_id, reason)
        retried: dict[bytes, list[bytes]] = {}
        for task in self.tasks.forwarded_to(node_id):
            if task.spec.actor_id:
                self.remote.call_lost(task, node_id, reason, restarting, retried)
            else:
                self.peers.task_lost(task, node_id, reason)
        self.forward_count.pop(node_id, None)
        self.remote.restart_lost(restarting, retried, f"its node {node_id.hex()[:8]} died: {reason}")
        self.fetches.node_lost(node_id, reason)
        self._after_changes()
        self.schedule()

    # ---- actors, objects, cancel, bundles: delegated --------------------

    def actor_located(self, actor_id: bytes, info: gcs_pb2.ActorInfo | None) -> None:
        """The GCS's answer: where an actor we were asked to call lives."""
        self.remote.located(actor_id, info)
        self._after_changes()
        self.schedule()

    def kill_actor(self, actor_id: bytes, no_restart: bool, cause: int = 0, reason: str = "") -> None:
        actor = self.actors.get(actor_id)
        if actor is None:
            self.remote.kill(actor_id, cause, reason, no_restart)
        else:
            self.local_actors.kill(actor, no_restart, cause, reason)

    def unknown_objects(self, object_ids: Iterable[bytes]) -> list[bytes]:
        """Those of `object_ids` this raylet neither tracks nor is pulling."""
        return self.fetches.unknown_objects(object_ids)

    def pull_done(self, object_id: bytes, error: str | None) -> None:
        """The store finished (or failed) pulling an object into this node."""
        self.fetches.pull_done(object_id, error)
        self._after_changes()
        self.schedule()

    def cancel(self, task_id: bytes, force: bool, recursive: bool, children_only: bool = False) -> None:
        self.cancellation.cancel(task_id, force, recursive, children_only)

    def prepare_bundles(self, bundles: Iterable[raylet_pb2.Bundle]) -> str | None:
        """Reserve the bundles' resources, all or none; why not, or None."""
        return self.reservations.prepare(bundles)

    def commit_bundles(self, bundles: Iterable[raylet_pb2.Bundle]) -> None:
        """Reserved bundles become resources tasks in the group ask for."""
        if self.reservations.commit(bundles):
            self._resources_changed = True
        self._after_changes()
        self.schedule()

    def return_bundles(self, bundles: Iterable[raylet_pb2.Bundle]) -> None:
        self.reservations.give_back(bundles)
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
