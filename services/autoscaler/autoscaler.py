"""The autoscaler's rounds, run by the GCS leader: match launches to the
nodes that registered, track idle time, gather demand, ask the policy, and
act on its decisions through the provider (launches and removals run in the
background; a round never waits on a provider).

Every launch is stored (LAUNCHING) before the provider is asked and every
removal (DRAINING, TERMINATING) before it starts, so a standby that takes
over continues them: it waits for a stored launch's node to register (up to
launch_timeout_s from its launch time) instead of launching again.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from typing import Awaitable, Callable

from ember.v1 import autoscaler_pb2, gcs_pb2

from ember_autoscaler import policy
from ember_autoscaler.config import AutoscalingConfig
from ember_autoscaler.demand import REQUEST_KEY, REQUEST_NAMESPACE, DemandBoard, decode_request, pending_gangs
from ember_autoscaler.instance_table import Instance, InstanceTable
from ember_autoscaler.provider import INSTANCE_LABEL, LaunchError, LaunchRequest, NodeProvider
from ember_common import placement
from ember_gcs.actor_table import ActorTable
from ember_gcs.kv_table import KvTable
from ember_gcs.membership import ClusterMembership
from ember_gcs.node_table import NodeTable
from ember_gcs.placement_group_table import PlacementGroupTable

log = logging.getLogger(__name__)
State = autoscaler_pb2.AutoscalerInstance.State
_MAX_BACKOFF_S = 60.0
_EPS = 1e-9
# A node this new counts as wholly free room and its own queue is not
# counted: the demand the raylets report lags (a report every 0.5 s, and a
# raylet learns of the node from its next one), so the work it was launched
# for may still show as waiting elsewhere while it already fills (or queues
# on) the node; without this, that stale demand launches another.
SETTLE_S = 2.0
# How long a drain may take to move a node's objects off before the node is kept instead.
DRAIN_TIMEOUT_S = 60.0
# Objects only on `node_id`, over the `others` nodes' raylets, asking them to pull copies.
Evacuate = Callable[[bytes, list[gcs_pb2.NodeInfo]], Awaitable[int]]


class LaunchStats:
    """Counts for the metrics: launches asked, failed and registered, nodes removed, by type."""

    def __init__(self) -> None:
        self.launched: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.registered: collections.Counter[str] = collections.Counter()
        self.removed: collections.Counter[str] = collections.Counter()


class Autoscaler:
    def __init__(self, config: AutoscalingConfig, provider: NodeProvider, instances: InstanceTable,
                 nodes: NodeTable, groups: PlacementGroupTable, kv: KvTable, actors: ActorTable,
                 membership: ClusterMembership, board: DemandBoard, gcs_address: Callable[[], str],
                 evacuate: Evacuate) -> None:
        self.config = config
        self.provider = provider
        self.instances = instances
        self._nodes = nodes
        self._groups = groups
        self._kv = kv
        self._actors = actors
        self._membership = membership
        self.board = board
        self._gcs_address = gcs_address
        self._evacuate = evacuate
        self.stats = LaunchStats()
        self._failures: collections.Counter[str] = collections.Counter()
        self._last_failure: dict[str, str] = {}
        self._backoff_until: dict[str, float] = {}
        self._gave_up: set[str] = set()
        self._idle_since: dict[bytes, float] = {}
        self._registered_at: dict[bytes, float] = {}   # launched nodes' registration (monotonic), while settling
        self._busy: dict[str, asyncio.Task[None]] = {}   # instance id -> its launch or removal under way here
        self._told_infeasible: set[tuple[policy.Shape, str]] = set()
        self.events: collections.deque[str] = collections.deque(maxlen=50)
        self.last = policy.Decision({}, [], [])
        self.requested: list[policy.Shape] = []

    # ---- one round ------------------------------------------------------

    async def step(self) -> policy.Decision:
        now, wall = time.monotonic(), time.time()
        alive = self._nodes.alive()
        by_label = {n.labels.get(INSTANCE_LABEL): n for n in alive if n.labels.get(INSTANCE_LABEL)}
        by_id = {n.node_id: n for n in alive}
        node_of: dict[str, gcs_pb2.NodeInfo] = {}
        for inst in self.instances.all():
            node = by_label.get(inst.instance_id) or (by_id.get(inst.node_id) if inst.node_id else None)
            if node is not None:
                node_of[inst.instance_id] = node
            await self._follow(inst, node, wall)
        self._track_idle(alive, now)

        views: list[policy.NodeView] = []
        instance_nodes = {node_of[i].node_id: self.instances.get(i) for i in node_of}
        for n in alive:
            inst = instance_nodes.get(n.node_id)
            if inst is None:
                views.append(policy.NodeView(n.node_id.hex(), None, dict(n.total.amounts),
                                             dict(n.available.amounts), dict(n.labels)))
                continue
            removing = inst.state in (State.DRAINING, State.TERMINATING)
            settling = now - self._registered_at.get(n.node_id, -SETTLE_S) < SETTLE_S
            views.append(policy.NodeView(
                n.node_id.hex(), inst.node_type, {} if removing else dict(n.total.amounts),
                {} if removing else dict(n.total.amounts if settling else n.available.amounts), dict(n.labels),
                idle_s=0.0 if removing else now - self._idle_since.get(n.node_id, now)))
        for node_id in [i for i, t in self._registered_at.items() if now - t >= SETTLE_S]:
            del self._registered_at[node_id]
        for inst in self.instances.all():
            if inst.instance_id not in node_of and inst.state == State.LAUNCHING \
                    and inst.node_type in self.config.node_types:
                t = self.config.node_types[inst.node_type]
                views.append(policy.NodeView(inst.instance_id, inst.node_type, dict(t.resources), {},
                                             dict(t.labels), launching=True))

        # A settling node's own queue is work it was launched for, moved there
        # since the last report of the node it came from (which still counts
        # it): counted once, as that report's, until the reports catch up.
        demand = self.board.shapes(by_id, skip=self._registered_at.keys())
        gangs = pending_gangs(self._groups.all())
        self.requested = decode_request(self._kv.get(REQUEST_NAMESPACE, REQUEST_KEY))
        launchable = {name for name in self.config.node_types
                      if name not in self._gave_up and self._backoff_until.get(name, 0.0) <= now}
        decision = policy.decide(self.config, views, demand, gangs, self.requested, launchable)
        self.last = decision
        for unmet in decision.unmet:
            if unmet.infeasible and (unmet.shape, unmet.reason) not in self._told_infeasible:
                self._told_infeasible.add((unmet.shape, unmet.reason))
                self._event(f"infeasible: {unmet.shape.describe()} x{unmet.count}: {unmet.reason}; not launching for it",
                            logging.WARNING)
        for name, count in sorted(decision.launches.items()):
            for _ in range(count):
                await self._launch(name, wall)
        for key in decision.remove:
            inst = instance_nodes.get(bytes.fromhex(key))
            if inst is not None and inst.instance_id not in self._busy:
                idle = now - self._idle_since.get(inst.node_id, now)
                await self._start_removal(inst, f"idle for {idle:.1f}s")
        return decision

    async def _follow(self, inst: Instance, node: gcs_pb2.NodeInfo | None, wall: float) -> None:
        """Bring one stored launch up to date with the node table."""
        busy = inst.instance_id in self._busy
        if inst.state == State.LAUNCHING:
            if node is not None:
                updated = _copy(inst)
                updated.state, updated.node_id = State.RUNNING, node.node_id
                await self.instances.put(updated)
                self._failures[inst.node_type] = 0
                self._gave_up.discard(inst.node_type)
                self.stats.registered[inst.node_type] += 1
                self._registered_at[node.node_id] = time.monotonic()
                self._event(f"node {node.node_id.hex()[:8]} ({inst.node_type}) registered "
                            f"{wall - inst.launch_time:.1f}s after its launch")
            elif not busy and wall - inst.launch_time > self.config.provider.launch_timeout_s:
                self._failed(inst.node_type, f"the node did not register within "
                                             f"{self.config.provider.launch_timeout_s:g}s of its launch")
                await self._start_removal(inst, "never registered")
        elif inst.state == State.RUNNING:
            if node is None and not busy:
                await self._start_removal(inst, "its node is gone (died or was stopped)")
        elif not busy:  # DRAINING or TERMINATING: a removal this process did not start (or that failed)
            await self._start_removal(inst, "continuing a removal")

    def _track_idle(self, alive: list[gcs_pb2.NodeInfo], now: float) -> None:
        with_actors = {a.node_id for a in self._actors.all() if a.state == gcs_pb2.ActorInfo.ALIVE}
        for node_id in [n for n in self._idle_since if n not in {a.node_id for a in alive}]:
            del self._idle_since[node_id]
        for n in alive:
            total, available = n.total.amounts, n.available.amounts
            idle = (n.node_id not in with_actors and not self.board.of(n.node_id)
                    and not any(placement.is_group_resource(k) for k in total)
                    and all(available.get(k, 0.0) + _EPS >= v for k, v in total.items()))
            if idle:
                self._idle_since.setdefault(n.node_id, now)
            else:
                self._idle_since.pop(n.node_id, None)

    # ---- launching ------------------------------------------------------

    async def _launch(self, node_type: str, wall: float) -> None:
        inst = Instance(instance_id=os.urandom(8).hex(), node_type=node_type, state=State.LAUNCHING,
                        launch_time=wall, attempt=self._failures[node_type])
        await self.instances.put(inst)  # stored before the provider is asked
        self.stats.launched[node_type] += 1
        self._event(f"launching a node of type {node_type} (instance {inst.instance_id})")
        self._busy[inst.instance_id] = asyncio.create_task(self._create(inst))

    async def _create(self, inst: Instance) -> None:
        try:
            request = LaunchRequest(inst.instance_id, self.config.node_types[inst.node_type], self._gcs_address())
            launched = await self.provider.create_node(request)
            current = self.instances.get(inst.instance_id)
            if current is not None:
                updated = _copy(current)
                updated.provider_id = launched.provider_id
                if launched.node_id and not updated.node_id:
                    updated.node_id = launched.node_id
                await self.instances.put(updated)
        except LaunchError as e:
            self._failed(inst.node_type, str(e))
            await self._forget(inst.instance_id)
        except Exception as e:  # a bug or a storage failure: the stored launch stays, and times out if need be
            log.exception("launching instance %s failed", inst.instance_id)
            self._event(f"launch of instance {inst.instance_id} hit an error: {e}", logging.ERROR)
        finally:
            self._busy.pop(inst.instance_id, None)

    def _failed(self, node_type: str, why: str) -> None:
        self._failures[node_type] += 1
        self.stats.failed[node_type] += 1
        n = self._failures[node_type]
        self._last_failure[node_type] = why
        limit = self.config.provider.max_launch_failures
        if n >= limit:
            self._gave_up.add(node_type)
            self._event(f"launch of a node of type {node_type} failed ({why}); {n} failures in a row: no more launches of "
                        "this type until the GCS restarts", logging.ERROR)
            return
        delay = min(_MAX_BACKOFF_S, self.config.provider.launch_backoff_s * 2 ** (n - 1))
        self._backoff_until[node_type] = time.monotonic() + delay
        self._event(f"launch of a node of type {node_type} failed ({why}); next try in {delay:g}s "
                    f"(failure {n} of at most {limit})", logging.WARNING)

    # ---- removing -------------------------------------------------------

    async def _start_removal(self, inst: Instance, reason: str) -> None:
        if inst.state not in (State.DRAINING, State.TERMINATING):
            updated = _copy(inst)
            updated.state = State.DRAINING
            await self.instances.put(updated)  # stored first: a new leader finishes it
            inst = updated
            self._event(f"removing {inst.node_type} node {inst.node_id.hex()[:8] or inst.instance_id}: {reason}")
        self._busy[inst.instance_id] = asyncio.create_task(self._remove(inst))

    async def _drained(self, inst: Instance) -> str:
        """Move the node's objects off and check it is still idle: '' when
        it may go, else why it stays."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while True:
            alive = {n.node_id: n for n in self._nodes.alive()}
            if inst.node_id not in alive:
                return ""  # gone already: nothing left to move
            left = await self._evacuate(inst.node_id, [n for i, n in alive.items() if i != inst.node_id])
            if left == 0:
                break
            if time.monotonic() > deadline:
                return f"{left} object(s) whose only copy is there could not be moved in {DRAIN_TIMEOUT_S:g}s"
            await asyncio.sleep(0.2)
        # Work may have come while it drained (its view lags a report): then it stays.
        self._track_idle(self._nodes.alive(), time.monotonic())
        return "" if inst.node_id in self._idle_since else "work arrived while it drained"

    async def _remove(self, inst: Instance) -> None:
        try:
            if inst.state == State.DRAINING and inst.node_id:
                kept = await self._drained(inst)
                if kept:
                    updated = _copy(inst)
                    updated.state = State.RUNNING
                    await self.instances.put(updated)
                    self._idle_since.pop(inst.node_id, None)
                    self._event(f"kept {inst.node_type} node {inst.node_id.hex()[:8]}: {kept}", logging.WARNING)
                    return
            if inst.state == State.DRAINING:
                updated = _copy(inst)
                updated.state = State.TERMINATING
                await self.instances.put(updated)
                inst = updated
            provider_id = inst.provider_id or self.provider.fallback_id(inst.instance_id, inst.node_id)
            if provider_id:
                await self.provider.terminate_node(provider_id, inst.node_id)
            if inst.node_id:
                await self._membership.unregister_node(inst.node_id, "removed by the autoscaler")
            await self._forget(inst.instance_id)
            self.stats.removed[inst.node_type] += 1
            self._idle_since.pop(inst.node_id, None)
            self._event(f"{inst.node_type} node {inst.node_id.hex()[:8] or inst.instance_id} removed")
        except Exception as e:  # tried again next round (the record says TERMINATING)
            log.exception("removing instance %s failed", inst.instance_id)
            self._event(f"removing instance {inst.instance_id} failed: {e}; trying again", logging.ERROR)
            await asyncio.sleep(1.0)
        finally:
            self._busy.pop(inst.instance_id, None)

    async def _forget(self, instance_id: str) -> None:
        await self.instances.delete(instance_id)

    # ---- what it shows --------------------------------------------------

    def _event(self, text: str, level: int = logging.INFO) -> None:
        log.log(level, "%s", text)
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")

    def idle_seconds(self, node_id: bytes) -> float:
        since = self._idle_since.get(node_id)
        return 0.0 if since is None else time.monotonic() - since

    def status(self) -> autoscaler_pb2.GetAutoscalerStatusReply:
        reply = autoscaler_pb2.GetAutoscalerStatusReply(enabled=True, provider=self.provider.name,
                                                        max_workers=self.config.max_workers)
        instances = self.instances.all()
        now = time.monotonic()
        for name, t in sorted(self.config.node_types.items()):
            mine = [i for i in instances if i.node_type == name]
            status = reply.node_types.add(
                name=name, running=sum(1 for i in mine if i.state == State.RUNNING),
                launching=sum(1 for i in mine if i.state == State.LAUNCHING), min_workers=t.min_workers,
                max_workers=t.max_workers, failed_launches=self._failures[name],
                last_failure=self._last_failure.get(name, ""),
                backoff_s=max(0.0, self._backoff_until.get(name, 0.0) - now), gave_up=name in self._gave_up)
            status.resources.amounts.update(t.resources)
        for inst in sorted(instances, key=lambda i: i.launch_time):
            view = reply.instances.add()
            view.CopyFrom(inst)
            view.idle_s = self.idle_seconds(inst.node_id) if inst.state == State.RUNNING else 0.0
        for unmet in self.last.unmet:
            u = reply.unmet.add(count=unmet.count, reason=unmet.reason, infeasible=unmet.infeasible)
            u.shape.amounts.update(unmet.shape.resources)
        reply.recent_events.extend(self.events)
        for shape in self.requested:
            reply.requested_bundles.add().amounts.update(shape.resources)
        return reply


def _copy(inst: Instance) -> Instance:
    out = Instance()
    out.CopyFrom(inst)
    return out
