"""Where a task whose arguments are ready goes: failed at once (a failed
argument), its actor (here or on another node), its scheduling strategy
(SPREAD, node affinity), an actor created on another node, where its
arguments are (or a pull of them first), a queue here, or, if this node
cannot run it, spilled, handed back to the peer that sent it, or parked as
infeasible until a node fits. The scoring is `scheduling_policy`'s.
"""

from __future__ import annotations

import logging
from typing import Callable

from ember.v1 import raylet_pb2

from ember_common import placement
from ember_common.object_layout import Failure, FailureType
from ember_raylet import resources, scheduling_policy
from ember_raylet.client_session import RAYLET
from ember_raylet.cluster_view import ClusterView
from ember_raylet.object_directory import ObjectDirectory
from ember_raylet.peer_forwarding import PeerForwarding
from ember_raylet.remote_actors import RemoteActors
from ember_raylet.resources import Resources
from ember_raylet.task_manager import QUEUED, FinishTask, TaskEntry, TaskManager

log = logging.getLogger(__name__)


class TaskPlacement:
    def __init__(self, node_id: bytes, total: Resources, labels: dict[str, str], view: ClusterView,
                 tasks: TaskManager, objects: ObjectDirectory, finish: FinishTask,
                 dispatch_after: Callable[[TaskEntry], None], peers: PeerForwarding, remote: RemoteActors,
                 local_call_ready: Callable[[TaskEntry], None],
                 make_local: Callable[..., bool]) -> None:
        self._node_id = node_id
        self._total = total  # this node's (shared, kept current by the node manager)
        self._labels = labels
        self._view = view
        self._tasks = tasks
        self._objects = objects
        self._finish = finish
        self._dispatch_after = dispatch_after  # an actor call ended unrun: the calls behind it may go
        self._remote_actors = remote.actors
        self._remote_call_ready = remote.call_ready
        self._create_actor_on = remote.create_elsewhere
        self._local_call_ready = local_call_ready
        self._make_local = make_local  # pull an argument here, waking the task when done
        self._spillable = peers.spillable
        self._forward = peers.forward
        self._hand_back = peers.hand_back
        self._locality_target = peers.locality_target
        self._spread_next = 0
        self._warned_infeasible: set[tuple] = set()

    def place(self, task: TaskEntry) -> None:
        """Every argument is ready: fail it with a failed one, or place it
        (another node, a pull first, its actor, or a queue here)."""
        spec = task.spec
        objects = self._objects
        for object_id in spec.dependencies:
            value = objects.get(object_id)
            if value is not None and value.is_error:
                self._finish(task, failed_dep=value)  # propagate without running
                self._dispatch_after(task)
                return
        if spec.actor_id and not spec.HasField("actor_creation") and spec.actor_id in self._remote_actors:
            self._remote_call_ready(task)
            return
        if spec.scheduling.kind and not task.pinned and self.by_strategy(task):
            return
        if spec.HasField("actor_creation") and task.submitter.kind != RAYLET and self._view.nodes \
                and self.create_elsewhere(task):
            return
        remote = [o for o in spec.dependencies if not objects.is_local(o)]
        if remote:
            # Run where most argument bytes are, or make them local here first.
            target = self._locality_target(task) if self._spillable(task) else None
            if target is not None:
                self._forward(task, target)
                return
            for object_id in dict.fromkeys(remote):
                task.missing += 1
                self._make_local(object_id, task_id=spec.task_id)
            return
        if spec.actor_id and not spec.HasField("actor_creation"):
            self._local_call_ready(task)
        elif not self.fits_here(task):
            self.not_here(task)
        else:
            self._tasks.enqueue(task)

    def fits_here(self, task: TaskEntry) -> bool:
        """Whether this node could ever run the task (resources and labels)."""
        return resources.fits(task.shape, self._total) and scheduling_policy.labels_match(task.spec.label_selector,
                                                                                            self._labels)

    def by_strategy(self, task: TaskEntry) -> bool:
        """Apply a task's SPREAD or node affinity; False to go on as DEFAULT
        (a soft affinity that cannot be met, or work submitted by a peer,
        which the submitting node placed already)."""
        spec, shape = task.spec, task.shape
        if (spec.actor_id and not spec.HasField("actor_creation")) or task.submitter.kind == RAYLET:
            return False
        if not all(self._objects.is_ready(o) for o in spec.nested_refs):
            return False  # their values could not go along: run it here
        if spec.scheduling.kind == raylet_pb2.SchedulingStrategy.SPREAD:
            fitting = sorted(n.node_id for n in self._view.nodes.values() if resources.fits(shape, n.total)
                             and scheduling_policy.labels_match(spec.label_selector, n.labels))
            if self.fits_here(task):
                fitting.append(self._node_id)
            if not fitting:
                return False  # infeasible everywhere: reported as such
            target = fitting[self._spread_next % len(fitting)]
            self._spread_next += 1
        else:
            target = spec.scheduling.node_id
            node = self._view.get(target)
            if not (self.fits_here(task) if target == self._node_id
                    else node is not None and resources.fits(shape, node.total)
                    and scheduling_policy.labels_match(spec.label_selector, node.labels)):
                if spec.scheduling.soft:
                    return False
                self._finish(task, error=Failure(FailureType.TASK_UNSCHEDULABLE,
                    f"task {spec.function_name} must run on node {target.hex()} (hard node affinity), but that node "
                    + ("cannot fit " + resources.describe(shape) if target == self._node_id or node is not None
                       else "is not alive")))
                return True
        if target == self._node_id:
            task.pinned = True
            return False
        if spec.HasField("actor_creation"):
            self._create_actor_on(task, target)
        else:
            self._forward(task, target)  # a retry after losing that node places it again
        return True

    def create_elsewhere(self, task: TaskEntry) -> bool:
        """An actor creation this node cannot host: created on a node that
        fits, if one does (True)."""
        if self.fits_here(task):
            return False
        target = scheduling_policy.pick_spill_node(task.shape, self._view, {}, 1, task.spec.label_selector)
        if target is None:
            return False
        self._create_actor_on(task, target)
        return True

    def not_here(self, task: TaskEntry) -> None:
        """A task this node cannot run: waits to be spilled, goes back to the
        peer that sent it, or waits (infeasible) for a node that fits."""
        if self._spillable(task) and scheduling_policy.fits_somewhere(task.shape, self._view,
                                                                             task.spec.label_selector):
            task.remote_only = True
            self._tasks.enqueue(task)  # another node will take it
            return
        if task.submitter.kind == RAYLET:  # sent here on a view that is out of date (a bundle gone)
            if task.spec.actor_id:
                self._finish(task, error=Failure(FailureType.TASK_UNSCHEDULABLE,
                    f"task {task.spec.function_name} requests {resources.describe(task.shape)}, which node "
                    f"{self._node_id.hex()[:8]} does not have (any more): {resources.describe(self._total)}"))
            else:
                self._hand_back(task)
            return
        self._tasks.infeasible[task.key].append(task.spec.task_id)
        task.state = QUEUED
        if any(placement.is_group_resource(k) for k in task.shape):
            return  # its placement group is not reserved yet: it runs once it is
        if task.key not in self._warned_infeasible:
            self._warned_infeasible.add(task.key)
            wants = resources.describe(task.shape) + (
                f" on a node labelled {dict(task.spec.label_selector)}" if task.spec.label_selector else "")
            msg = (f"task {task.spec.function_name} requests {wants} but no node has that much (this node: "
                   f"{resources.describe(self._total)}, labels {self._labels}); it stays queued until a node "
                   "that fits joins")
            log.warning(msg)
            task.submitter.outbox.warnings.append(msg)
            task.submitter.touch()

    def recheck_infeasible(self) -> None:
        """Tasks no node could serve: queue those this node now fits (a
        bundle was committed) or a node that joined fits."""
        for key, waiting in list(self._tasks.infeasible.items()):
            for task_id in list(waiting):
                task = self._tasks.tasks[task_id]
                if self.fits_here(task):
                    waiting.remove(task_id)
                    self._tasks.enqueue(task)
                elif not self._view.nodes:
                    continue
                elif task.spec.HasField("actor_creation") and task.submitter.kind != RAYLET:
                    if self.create_elsewhere(task):
                        waiting.remove(task_id)
                elif self._spillable(task) and scheduling_policy.fits_somewhere(task.shape, self._view,
                                                                                      task.spec.label_selector):
                    waiting.remove(task_id)
                    task.remote_only = True
                    self._tasks.enqueue(task)
            if not waiting:
                del self._tasks.infeasible[key]
                self._warned_infeasible.discard(key)
