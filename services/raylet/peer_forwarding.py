"""Tasks leaving for other nodes' raylets and what those raylets send back:
spilling, forwarding with the values a task uses, handing a peer's task
back, a peer's returns and borrows, and the forwarded tasks of a lost peer.

What goes to each peer collects in `peer_out` (we are its client); the
service sends it. Where a task goes is `scheduling_policy`'s choice.
"""

from __future__ import annotations

import collections
import logging
from typing import Callable, Iterable

from ember.v1 import common_pb2, raylet_pb2

from ember_common import ids, service_spans
from ember_common.object_layout import Failure, FailureType
from ember_common.span_export import SAMPLED_DIGITS
from ember_raylet import scheduling_policy, task_spans
from ember_raylet.client_session import RAYLET, ClientSession
from ember_raylet.cluster_view import ClusterView
from ember_raylet.object_directory import ObjectDirectory
from ember_raylet.resources import Resources
from ember_raylet.task_manager import FORWARDED, WAITING, FinishTask, TaskEntry, TaskManager

log = logging.getLogger(__name__)


class PeerForwarding:
    def __init__(self, node_id: bytes, total: Resources, pipeline_depth: int, view: ClusterView, tasks: TaskManager,
                 objects: ObjectDirectory, forward_count: collections.Counter[bytes],
                 on_peer_send: Callable[[bytes], None], finish: FinishTask,
                 ready: Callable[[list[bytes]], None], await_deps: Callable[[TaskEntry], None]) -> None:
        self.node_id = node_id
        self._total = total  # this node's (shared, kept current by the node manager)
        self._pipeline_depth = pipeline_depth
        self._view = view
        self._tasks = tasks
        self._objects = objects
        self._on_peer_send = on_peer_send
        self._finish = finish
        self._ready = ready
        self._await_deps = await_deps
        self.forward_count = forward_count  # unfinished tasks forwarded, per node (shared with the node manager)
        # Batches for each peer, oldest first; a batch with a kill takes
        # nothing more (the peer applies kills after a batch's submissions).
        self.peer_out: dict[bytes, list[raylet_pb2.ClientBatch]] = {}
        self.borrowers: dict[bytes, ClientSession] = {}  # node id -> holder of its borrows of our objects

    def spillable(self, task: TaskEntry) -> bool:
        """Whether the task may run on another node: not actor work (actors
        stay where they are created, for now), not already spilled to us,
        and every ref inside its arguments known (its value goes along)."""
        spec = task.spec
        return (bool(self._view.nodes) and task.submitter.kind != RAYLET and not spec.actor_id and not task.pinned
                and all(self._objects.is_ready(o) for o in spec.nested_refs))

    def peer_batch(self, node_id: bytes) -> raylet_pb2.ClientBatch:
        """The batch to the peer that is still open for more."""
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

    def forward(self, task: TaskEntry, node_id: bytes) -> None:
        """Submit the task to another node's raylet, with the values it uses.
        We stay its owner: its returns come back to us."""
        task.state = FORWARDED
        task.node = node_id
        if service_spans.active is not None and task.spec.traceparent[54:55] in SAMPLED_DIGITS:
            task_spans.forwarded(task, self.node_id, node_id)
        task.returns = {}
        if not task.spec.actor_id:  # actor work does not take a node's task slots
            self.forward_count[node_id] += 1
        batch = self.peer_batch(node_id)
        todo, seen = [*task.spec.dependencies, *task.spec.nested_refs], set()
        while todo:
            object_id = todo.pop()
            value = self._objects.get(object_id)
            if object_id in seen or value is None:
                continue
            seen.add(object_id)
            batch.provide.append(value)
            todo.extend(value.nested_ids)
        batch.submit.append(task.spec)

    def spill(self, queue: collections.deque[bytes], skip: int) -> None:
        """Forward the queued tasks past the first `skip` to nodes with room."""
        while len(queue) > skip:
            task = self._tasks.tasks[queue[skip]]
            if not self.spillable(task):
                return
            node_id = scheduling_policy.pick_spill_node(task.shape, self._view, self.forward_count,
                                                        self._pipeline_depth, task.spec.label_selector)
            if node_id is None:
                return
            del queue[skip]
            self.forward(task, node_id)

    def locality_target(self, task: TaskEntry) -> bytes | None:
        """The node holding most of the task's argument bytes, if it should run there."""
        by_node: collections.Counter[bytes] = collections.Counter()
        for object_id in task.spec.dependencies:
            value = self._objects.get(object_id)
            node_id = self._objects.stored_on(value) if value is not None else None
            if node_id is not None:
                by_node[self.node_id if self._objects.is_local(object_id) else node_id] += value.stored_size
        return scheduling_policy.locality_node(by_node, task.shape, self._view, self.node_id,
                                               task.spec.label_selector)

    def hand_back(self, task: TaskEntry) -> None:
        """A peer's task this node cannot run: it goes back to the peer, who
        places it again (its owner keeps its retries); nothing of it stays."""
        spec = task.spec
        self._tasks.tasks.pop(spec.task_id, None)
        for i in range(spec.num_returns):
            self._objects.remove_holder(ids.object_id_for(spec.task_id, i + 1), task.submitter)
        self._objects.unpin(spec.dependencies)
        self._objects.unpin(spec.nested_refs)
        outbox = task.submitter.outbox
        outbox.handed_back.append(spec.task_id)
        outbox.total.Clear()
        outbox.total.amounts.update(self._total)
        task.submitter.touch()

    def handed_back(self, node_id: bytes, task_ids: Iterable[bytes], total: common_pb2.ResourceSet) -> None:
        """Tasks we forwarded that the peer cannot run: placed again, with
        our view of that node corrected so they do not go straight back."""
        self._view.correct_total(node_id, dict(total.amounts))
        for task_id in task_ids:
            task = self._tasks.tasks.get(task_id)
            if task is None or task.state != FORWARDED or task.node != node_id or task.spec.actor_id:
                continue
            self.forward_count[node_id] -= 1
            log.info("node %s handed %s back; placing it again", node_id.hex()[:8], task.spec.function_name)
            task.state, task.node, task.returns = WAITING, None, {}
            self._await_deps(task)

    def borrower(self, node_id: bytes) -> ClientSession:
        """The holder standing for a peer's borrows of objects we own."""
        borrower = self.borrowers.get(node_id)
        if borrower is None:
            borrower = self.borrowers[node_id] = ClientSession(b"borrower:" + node_id, RAYLET, node_id=node_id)
        return borrower

    def peer_value(self, node_id: bytes, value: common_pb2.ObjectValue) -> None:
        """A value the peer sent: a return of a task we forwarded to it, or
        an object it owns that we wait for."""
        objects = self._objects
        # Refs inside it that we do not know: the peer keeps them for us (if
        # the value itself is still wanted here).
        for nested in value.nested_ids if value.object_id in objects else ():
            if nested not in objects:
                objects.create_remote(nested, node_id)
                batch = self.peer_batch(node_id)
                batch.add_refs.append(nested)
                batch.subscribe.append(nested)
        task = self._tasks.tasks.get(ids.task_id_of(value.object_id))
        if (task is not None and task.state == FORWARDED and task.node == node_id
                and ids.index_of(value.object_id) > task.spec.num_returns):
            self._ready(objects.set_streamed(value, task.submitter))  # a streaming generator's value
        elif task is not None and task.state == FORWARDED and task.node == node_id:
            task.returns[value.object_id] = value
            if len(task.returns) >= task.spec.num_returns:
                self._finish(task, returns=list(task.returns.values()))  # type: ignore[arg-type]
        else:
            self._ready(objects.set_ready(value))
        # The peer keeps what we may still read from it; the rest it may drop.
        if value.object_id in objects and (value.WhichOneof("location") == "stored_size" or value.nested_ids):
            objects.set_remote(value.object_id, node_id)
        else:
            objects.set_remote(value.object_id, None)
            self.peer_batch(node_id).remove_refs.append(value.object_id)

    def drop_peer(self, node_id: bytes) -> None:
        """A lost peer: nothing more goes to it, and what it borrowed from us
        it cannot read any more."""
        self.peer_out.pop(node_id, None)
        borrower = self.borrowers.pop(node_id, None)
        if borrower is not None:
            self._objects.drop_session(borrower)

    def task_lost(self, task: TaskEntry, node_id: bytes, reason: str) -> None:
        """A task (not actor work) forwarded to a lost peer: retried if it may be."""
        if task.cancelled:
            self._finish(task, error=task.cancelled_failure())
        elif task.take_retry():
            log.info("retrying %s after losing node %s (%d retries left)", task.spec.function_name,
                     node_id.hex()[:8], task.retries_left)
            task.state, task.node, task.returns = WAITING, None, {}
            self._await_deps(task)
        else:
            self._finish(task, error=Failure(FailureType.NODE_DIED,
                f"the node running {task.spec.function_name} ({node_id.hex()}) died: {reason}; "
                f"no retries left (max_retries={task.spec.max_retries})"))
