"""A CoreClient's outgoing items and reference counts, without sockets.

Producers queue items (submissions, puts, reference changes, subscriptions,
results, ...) on the `Outbox`; whoever sends drains the queue into one
ClientBatch. Reference counts are kept by the draining code alone (callers
hold the send lock or are the only sender), so ObjectRef.__del__ only
enqueues. An item is a plain `(ItemKind, payload)` tuple: this is the
per-task path, and a tuple costs a fifth of a NamedTuple to make; `Item`
spells out which payload goes with which kind.
"""

from __future__ import annotations

import collections
import enum
import queue
import threading
from typing import Callable, Iterable, Literal, NamedTuple, Union

from ember.v1 import common_pb2, node_state_pb2, raylet_pb2
from ember_common import ids, task_error_types

MAX_ITEMS_PER_BATCH = 4096


class ItemKind(enum.IntEnum):
    SUBMIT = enum.auto()  # TaskSpec: a new task
    RESERVE = enum.auto()  # TaskSpec: its returns are ours, the raylet sees it later (RESUBMIT)
    RESUBMIT = enum.auto()  # TaskSpec: submitted late (after direct calls, or their connection broke)
    PUT = enum.auto()  # ObjectValue: our own put
    PUT_DIRECT = enum.auto()  # ObjectValue: a direct call's result handed to the raylet
    REF_ADD = enum.auto()  # object id: an ObjectRef made
    REF_DEL = enum.auto()  # object id: an ObjectRef dropped
    RESULT = enum.auto()  # TaskResult of a task this worker ran
    SUBSCRIBE = enum.auto()  # object ids: tell us when they are ready
    FETCH = enum.auto()  # object ids: bring them from other nodes to ours
    CANCEL = enum.auto()  # CancelTask
    BLOCKED = enum.auto()  # Blocked: this worker waits in get (its CPU is free) or is back
    LOGS = enum.auto()  # LogLines of the task this worker runs
    KILL = enum.auto()  # KillActor: ends the batch
    KV_GET = enum.auto()  # KvKey: read the GCS KV through the raylet
    CLOSE = enum.auto()  # None: the session ends
    RELEASE = enum.auto()  # object ids: values the raylet keeps for us that no ref here wants
    METRICS = enum.auto()  # UserMetrics: this process's changed ember.util.metrics families
    TASK_EVENT = enum.auto()  # (TaskSpec, TaskResult, start, end): a direct actor call this worker ran
    WAKE = enum.auto()  # None: the raylet raised our submit allowance (kept submissions may go)
    RECLAIMED = enum.auto()  # task ids: tasks the raylet asked back that this worker had not started


class Blocked(NamedTuple):
    blocked: bool
    returned_task_ids: list[bytes]  # tasks this worker hands back to the raylet
    task_id: bytes = b""  # set for a task on a thread of its own (ExecuteTask.own_thread)


_Ids = Union[list[bytes], tuple[bytes, ...]]
Item = Union[
    tuple[Literal[ItemKind.SUBMIT, ItemKind.RESERVE, ItemKind.RESUBMIT], raylet_pb2.TaskSpec],
    tuple[Literal[ItemKind.PUT, ItemKind.PUT_DIRECT], common_pb2.ObjectValue],
    tuple[Literal[ItemKind.REF_ADD, ItemKind.REF_DEL], bytes],
    tuple[Literal[ItemKind.RESULT], raylet_pb2.TaskResult],
    tuple[Literal[ItemKind.SUBSCRIBE, ItemKind.FETCH], _Ids],
    tuple[Literal[ItemKind.CANCEL], raylet_pb2.CancelTask],
    tuple[Literal[ItemKind.BLOCKED], Blocked],
    tuple[Literal[ItemKind.LOGS], raylet_pb2.LogLines],
    tuple[Literal[ItemKind.KILL], raylet_pb2.KillActor],
    tuple[Literal[ItemKind.KV_GET], raylet_pb2.KvKey],
    tuple[Literal[ItemKind.CLOSE], None],
    tuple[Literal[ItemKind.RELEASE], _Ids],
    tuple[Literal[ItemKind.METRICS], raylet_pb2.UserMetrics],
    tuple[Literal[ItemKind.WAKE], None],
    tuple[Literal[ItemKind.RECLAIMED], list[bytes]],
]

# Module globals: an enum attribute lookup costs three of these on the hot path.
(_SUBMIT, _RESERVE, _RESUBMIT, _PUT, _PUT_DIRECT, _REF_ADD, _REF_DEL, _RESULT, _SUBSCRIBE, _FETCH, _CANCEL, _BLOCKED,
 _LOGS, _KILL, _KV_GET, _CLOSE, _RELEASE, _METRICS, _TASK_EVENT, _WAKE, _RECLAIMED) = ItemKind

# What the raylet counts against a driver's submit allowance.
_SENT_AS_SUBMISSION = frozenset((_SUBMIT, _RESUBMIT))
# Items that go even while submissions are kept back: none refers to a kept
# task or its returns. (PUT_DIRECT is a value the raylet was promised by a
# submission already sent; its tasks may be what the raylet waits on.)
_NEVER_KEPT = frozenset((_PUT_DIRECT, _RESULT, _BLOCKED, _LOGS, _KV_GET, _CLOSE, _METRICS, _TASK_EVENT, _WAKE,
                         _RECLAIMED))


def _add_task_event(batch: raylet_pb2.ClientBatch, spec: raylet_pb2.TaskSpec, result: raylet_pb2.TaskResult,
                    start: float, end: float) -> None:
    """A direct actor call's task event (RAN), described whole: no raylet saw it submitted."""
    batch.task_events.add(kind=node_state_pb2.TaskEvent.RAN, task_id=spec.task_id,
                          attempt_number=spec.attempt_number, time=end, start_time=start,
                          name=spec.function_name, func_or_class_name=spec.function_name, job_id=spec.job_id,
                          actor_id=spec.actor_id, parent_task_id=spec.parent_task_id,
                          type=node_state_pb2.ACTOR_TASK, error_type=task_error_types.of_result(result),
                          error_message=result.error_message)


class DirectState(enum.Enum):
    """A direct actor call's result not (yet) known to the raylet."""
    RUNNING = enum.auto()  # the call runs
    HERE = enum.auto()  # it arrived: the value is ours alone
    PROMISED = enum.auto()  # passed on while running: put it when it arrives


_RUNNING, _HERE, _PROMISED = DirectState


class WakingCondition(threading.Condition):
    """A condition whose notify_all also calls `wakers`: how a reader that
    waits by running an event loop (ReentrantLoop.run_once), not on the
    condition, learns that something changed."""

    def __init__(self) -> None:
        super().__init__()
        self.wakers: list[Callable[[], None]] = []  # changed under the lock

    def notify_all(self) -> None:
        super().notify_all()
        for wake in self.wakers:
            wake()


class ObjectStates:
    """What this process knows of objects, guarded by `cond` (readers wait
    on it for values)."""

    def __init__(self) -> None:
        self.cond = WakingCondition()
        self.values: dict[bytes, common_pb2.ObjectValue] = {}  # ready and readable here
        self.live: set[bytes] = set()  # ids this process refers to
        self.subscribed: set[bytes] = set()  # the raylet tells us when they are ready
        # Stored values on another node's store: not readable here until
        # the raylet fetched them (wait_values asks).
        self.remote: dict[bytes, common_pb2.ObjectValue] = {}
        self.fetching: set[bytes] = set()
        # Streaming generators this process submitted and still reads: task
        # id -> the last value index come so far. Their values come unasked
        # (as returns do) before any ref to them exists here.
        self.streams: dict[bytes, int] = {}
        # Those dropped unfinished: values still coming are not wanted.
        self.dropped_streams: set[bytes] = set()
        self.unwanted: list[bytes] = []  # such values come: to be released (ItemKind.RELEASE)
        # Sets of ids waiting readers still miss (CoreClient.wait_values on
        # many ids): each value put in `values` leaves every one of them.
        self.watchers: list[set[bytes]] = []

    def arrived(self, object_id: bytes) -> None:
        """A value is now in `values` (the caller holds `cond`)."""
        for missing in self.watchers:
            missing.discard(object_id)

    def expect(self, object_ids: Iterable[bytes]) -> None:
        """Returns of our own tasks: the raylet pushes them to their
        submitter unasked, so a get need not subscribe (one message less).
        The caller holds `cond`."""
        self.live.update(object_ids)
        self.subscribed.update(object_ids)

    def ready(self, values: Iterable[common_pb2.ObjectValue], node_id: bytes) -> None:
        """Values the raylet says are ready; those stored on another node
        must be fetched before they are read here. Wakes the readers."""
        with self.cond:
            for value in values:
                oid = value.object_id
                self.subscribed.discard(oid)
                if oid not in self.live and self.streams:
                    stream = oid[:ids.UNIQUE_ID_SIZE]
                    if stream in self.streams:
                        self.live.add(oid)  # a stream's value: the generator makes its ref
                        self.streams[stream] = max(self.streams[stream], ids.index_of(oid))
                    elif stream in self.dropped_streams:
                        self.unwanted.append(oid)
                if oid in self.live:
                    if value.node_id and value.node_id != node_id:
                        self.remote[oid] = value
                    else:
                        self.values[oid] = value
                        self.remote.pop(oid, None)
                        if self.watchers:
                            self.arrived(oid)
                    self.fetching.discard(oid)  # (a rebuilt value): fetch it anew
            self.cond.notify_all()


class DirectResults:
    """Results of direct actor calls the raylet does not know (yet), by
    object id. `lock` is the direct-call lock (it also guards the actor
    channels); take it before ObjectStates.cond, never after."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: dict[bytes, DirectState] = {}


class Outbox:
    """The queue of items and the reference counts kept while draining it.
    `on_forget(object_id)` runs when this process drops its last ref."""

    def __init__(self, objects: ObjectStates, direct: DirectResults, on_forget: Callable[[bytes], None]) -> None:
        self.queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._objects = objects
        self._direct = direct
        self._on_forget = on_forget
        self.counts: dict[bytes, int] = {}  # our refs per object id
        self.held_remote: set[bytes] = set()  # ids the raylet counts us as holding
        # The raylet's backpressure (services/raylet/admission.py): once it
        # holds us, submissions past `submit_allowance` wait in `kept`,
        # serialized, with every later item that may refer to them, in order.
        self.submit_allowance: int | None = None  # None: not held
        self.submitted = 0  # submissions sent (what the raylet counts)
        self.kept: collections.deque[Item] = collections.deque()

    def _may_send(self, kind: ItemKind) -> bool:
        """Whether an item of this kind is within the submit allowance."""
        allowance = self.submit_allowance
        return kind not in _SENT_AS_SUBMISSION or allowance is None or self.submitted < allowance

    def can_send_kept(self) -> bool:
        """Whether the next kept item may go now."""
        return bool(self.kept) and self._may_send(self.kept[0][0])

    def _admit(self, item: Item) -> Item | None:
        """`item`, or None if it must wait behind kept submissions (then it is kept)."""
        kind = item[0]
        if kind in _NEVER_KEPT or (not self.kept and self._may_send(kind)):
            return item
        if kind in _SENT_AS_SUBMISSION:
            spec = item[1]
            with self._objects.cond:  # expected now: a get waits for them without asking the raylet
                self._objects.expect([ids.object_id_for(spec.task_id, i + 1)  # type: ignore[union-attr]
                                      for i in range(spec.num_returns)])  # type: ignore[union-attr]
            item = (kind, spec.SerializeToString())  # type: ignore[union-attr,assignment]  # (a fifth of a parsed spec)
        self.kept.append(item)
        return None

    def _next_kept(self) -> Item | None:
        if not self.can_send_kept():
            return None
        kind, payload = self.kept.popleft()
        if kind in _SENT_AS_SUBMISSION:
            payload = raylet_pb2.TaskSpec.FromString(payload)  # type: ignore[arg-type]
        return kind, payload  # type: ignore[return-value]

    def drain(self, item: Item | None) -> tuple[raylet_pb2.ClientBatch, bool]:
        """`item` (None: none) and whatever else may go now as one batch,
        and whether the client is closing (then the batch is the last).
        Kept items go first, as far as the submit allowance lets them."""
        counts, held_remote = self.counts, self.held_remote
        objects, direct_local = self._objects, self._direct.states
        cond, live, subscribed = objects.cond, objects.live, objects.subscribed
        out = self.queue
        batch = raylet_pb2.ClientBatch()
        delta: dict[bytes, int] = {}
        n = 0
        closing = False
        if item is not None and (self.kept or self.submit_allowance is not None):
            item = self._admit(item)
        while True:
            if item is None:  # the next one: kept ones first, then the queue's
                if self.kept:
                    item = self._next_kept()
                if item is None:
                    try:
                        item = out.get_nowait()
                    except queue.Empty:
                        break
                    if self.kept or self.submit_allowance is not None:
                        item = self._admit(item)
                        if item is None:
                            continue
            kind, payload = item
            if kind is _REF_ADD:
                c = counts.get(payload, 0)
                counts[payload] = c + 1
                if c == 0:
                    if payload not in held_remote and payload not in direct_local:
                        held_remote.add(payload)
                        delta[payload] = delta.get(payload, 0) + 1
                    with cond:
                        live.add(payload)
            elif kind is _REF_DEL:
                c = counts.get(payload, 0) - 1
                if c > 0:
                    counts[payload] = c
                else:
                    counts.pop(payload, None)
                    if payload in held_remote:
                        held_remote.discard(payload)
                        delta[payload] = delta.get(payload, 0) - 1
                    elif payload in direct_local:
                        with self._direct.lock:
                            direct_local.pop(payload, None)
                    with cond:
                        live.discard(payload)
                        objects.values.pop(payload, None)
                        subscribed.discard(payload)
                        objects.remote.pop(payload, None)
                        objects.fetching.discard(payload)
                    self._on_forget(payload)
            elif kind is _SUBMIT or kind is _RESERVE or kind is _RESUBMIT:
                returns = [ids.object_id_for(payload.task_id, i + 1) for i in range(payload.num_returns)]
                if kind is not _RESERVE:
                    self._publish_direct((*payload.dependencies, *payload.nested_refs), batch)
                    batch.submit.append(payload)
                    self.submitted += 1
                held_remote.update(returns)
                with cond:  # (as ObjectStates.expect: inline on the per-task path)
                    live.update(returns)
                    subscribed.update(returns)
                if kind is _RESUBMIT:
                    # Submitted late (it waited for direct calls, or its
                    # direct connection broke): refs to its returns may be
                    # gone already.
                    for object_id in returns:
                        if object_id not in counts:
                            held_remote.discard(object_id)
                            batch.remove_refs.append(object_id)
            elif kind is _PUT:
                self._publish_direct(payload.nested_ids, batch)
                batch.puts.append(payload)
                held_remote.add(payload.object_id)
                with cond:
                    live.add(payload.object_id)
            elif kind is _PUT_DIRECT:
                # A direct call's result for the raylet: passed on, or stored.
                batch.puts.append(payload)
                if payload.object_id in counts:
                    held_remote.add(payload.object_id)
                else:
                    held_remote.discard(payload.object_id)
                    batch.remove_refs.append(payload.object_id)
            elif kind is _RESULT:
                for value in payload.returns:
                    self._publish_direct(value.nested_ids, batch)
                batch.results.append(payload)
            elif kind is _SUBSCRIBE:
                batch.subscribe.extend(payload)
            elif kind is _FETCH:
                batch.fetch.extend(payload)
            elif kind is _CANCEL:
                batch.cancel.append(payload)
            elif kind is _BLOCKED:
                if payload.task_id:  # a task on a thread of its own
                    batch.threads_blocked.add(blocked=payload.blocked, task_id=payload.task_id)
                else:
                    batch.blocked.blocked = payload.blocked
                    batch.blocked.returned_task_ids.extend(payload.returned_task_ids)
            elif kind is _LOGS:
                batch.logs.append(payload)
            elif kind is _KILL:
                # The raylet applies a batch's kills after its submissions:
                # a call made after the kill must go in a later batch, or it
                # would run on (and die with) the killed worker.
                batch.kill_actors.append(payload)
                break
            elif kind is _KV_GET:
                batch.kv_get.append(payload)
            elif kind is _RELEASE:
                for object_id in payload:
                    if object_id not in counts:  # (else a ref made meanwhile holds it)
                        held_remote.discard(object_id)
                        batch.remove_refs.append(object_id)
                        with cond:
                            live.discard(object_id)
                            objects.values.pop(object_id, None)
                            objects.remote.pop(object_id, None)
            elif kind is _METRICS:  # (a later report's families replace an earlier one's at the raylet)
                batch.user_metrics.families.extend(payload.families)
            elif kind is _TASK_EVENT:
                _add_task_event(batch, *payload)
            elif kind is _RECLAIMED:
                batch.reclaimed.extend(payload)
            elif kind is _CLOSE:
                closing = True
                break
            n += 1
            if n >= MAX_ITEMS_PER_BATCH:
                break
            item = None
        for object_id, d in delta.items():
            if d > 0:
                batch.add_refs.append(object_id)
            elif d < 0:
                batch.remove_refs.append(object_id)
        return batch, closing

    def _publish_direct(self, object_ids: Iterable[bytes], batch: raylet_pb2.ClientBatch) -> None:
        """Results of direct calls among `object_ids` are being passed on:
        the raylet must know them first (put, or promised while running)."""
        direct_local = self._direct.states
        for object_id in object_ids:
            if object_id not in direct_local:
                continue
            with self._direct.lock:
                state = direct_local.get(object_id)
                if state is _HERE:
                    del direct_local[object_id]
                    with self._objects.cond:
                        value = self._objects.values.get(object_id)
                    if value is None:
                        continue
                    batch.puts.append(value)
                elif state is _RUNNING:
                    direct_local[object_id] = _PROMISED
                    batch.promises.append(object_id)
                else:
                    continue
            self.held_remote.add(object_id)
