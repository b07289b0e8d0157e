"""Placement groups: their records, and reserving their bundles on raylets.

A group is stored PENDING; `schedule()` (run by the GCS leader every half
second) picks nodes for the pending ones (placement_policy) and reserves
them in two phases: every chosen raylet prepares its bundles (all or none),
and only if all did, every one commits; otherwise the prepared ones are
returned and the group stays PENDING for the next round. A group whose
node dies is returned everywhere and goes back to PENDING.

A leader that dies between the phases leaves bundles on raylets that its
successor's table does not match: prepared for a group still PENDING (or
removed), or prepared but never committed for a CREATED one. Raylets
report what they hold with their resources; `settle` commits what the
table says is created there and returns the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from ember.v1 import gcs_pb2, raylet_pb2

from ember_common.errors import AlreadyExists, NotFound
from ember_gcs import placement_policy, placement_spans
from ember_gcs.node_table import NodeTable
from ember_gcs.storage import Storage

log = logging.getLogger(__name__)
TABLE = "placement_groups"
Group = gcs_pb2.PlacementGroupInfo


class BundleClient(Protocol):
    """The raylet side of the two phases (ember_gcs.raylet_client)."""

    async def prepare(self, node: gcs_pb2.NodeInfo, bundles: list[raylet_pb2.Bundle]) -> str | None: ...
    async def commit(self, node: gcs_pb2.NodeInfo, bundles: list[raylet_pb2.Bundle]) -> None: ...
    async def give_back(self, node: gcs_pb2.NodeInfo, bundles: list[raylet_pb2.Bundle]) -> None: ...


class PlacementGroupTable:
    table = TABLE

    def __init__(self, storage: Storage, nodes: NodeTable, raylets: BundleClient) -> None:
        self._storage = storage
        self._nodes = nodes
        self._raylets = raylets
        self._groups: dict[bytes, Group] = {}
        self._lock = asyncio.Lock()  # one change at a time: scheduling awaits raylets
        self._settling: dict[bytes, asyncio.Task[None]] = {}  # node id -> its settle in flight

    def restore(self, rows: dict[bytes, bytes]) -> None:
        """Replace what is in memory with the stored rows (at start and at takeover)."""
        self._groups = {k: Group.FromString(v) for k, v in rows.items()}

    async def _save(self, group: Group) -> None:
        await self._storage.put(TABLE, group.placement_group_id, group.SerializeToString())

    def _named(self, namespace: str, name: str) -> Group | None:
        for g in self._groups.values():
            if g.name == name and g.namespace == namespace and g.state != Group.REMOVED:
                return g
        return None

    async def create(self, group: Group) -> None:
        async with self._lock:
            if group.placement_group_id in self._groups:
                return  # a retry
            if group.name and self._named(group.namespace, group.name) is not None:
                raise AlreadyExists(f"a placement group named {group.name!r} already exists in namespace "
                                      f"{group.namespace!r}")
            stored = Group()
            stored.CopyFrom(group)
            stored.state = Group.PENDING
            stored.create_time = time.time()
            del stored.bundle_nodes[:]
            await self._save(stored)
            self._groups[stored.placement_group_id] = stored

    async def remove(self, group_id: bytes) -> None:
        async with self._lock:
            group = self._groups.get(group_id)
            if group is None:
                raise NotFound(f"placement group {group_id.hex()} does not exist")
            if group.state == Group.REMOVED:
                return
            changed = Group()
            changed.CopyFrom(group)
            changed.state = Group.REMOVED
            await self._save(changed)  # stored first: a failed write changes nothing
            self._groups[group_id] = changed
            placement_spans.forget(group_id)
            await self._give_back(group)

    async def remove_job(self, job_id: bytes) -> None:
        """A job ended: its groups go (detached ones stay)."""
        for group in list(self._groups.values()):
            if group.job_id == job_id and not group.detached and group.state != Group.REMOVED:
                await self.remove(group.placement_group_id)

    def get(self, group_id: bytes = b"", namespace: str = "", name: str = "") -> Group | None:
        return self._groups.get(group_id) if group_id else self._named(namespace, name)

    def all(self) -> list[Group]:
        return list(self._groups.values())

    async def schedule(self) -> None:
        """Try to reserve every pending group, oldest first."""
        for group in sorted((g for g in self._groups.values() if g.state == Group.PENDING), key=lambda g: g.create_time):
            async with self._lock:
                if self._groups.get(group.placement_group_id) is group:  # not removed meanwhile
                    await self._try(group)

    async def _try(self, group: Group) -> None:
        alive = {n.node_id: n for n in self._nodes.alive()}
        bundles = [dict(b.amounts) for b in group.bundles]
        placed = placement_policy.assign(bundles, group.strategy, {i: dict(n.available.amounts) for i, n in alive.items()})
        if placed is None:
            ever = placement_policy.assign(bundles, group.strategy, {i: dict(n.total.amounts) for i, n in alive.items()})
            await self._set_reason(group, "no set of alive nodes can ever hold it" if ever is None
                                   else "waiting for resources to be free")
            return
        by_node: dict[bytes, list[raylet_pb2.Bundle]] = {}
        for index, node_id in enumerate(placed):
            by_node.setdefault(node_id, []).append(raylet_pb2.Bundle(
                placement_group_id=group.placement_group_id, index=index, resources=group.bundles[index]))
        answers = await asyncio.gather(*(self._raylets.prepare(alive[n], b) for n, b in by_node.items()),
                                       return_exceptions=True)
        failed = [(n, a) for n, a in zip(by_node, answers) if a is not None]
        if failed:
            # Phase one failed somewhere: give back what was reserved (on every
            # node asked: a prepare that timed out may have been applied); retry later.
            await asyncio.gather(*(self._raylets.give_back(alive[n], b) for n, b in by_node.items()),
                                 return_exceptions=True)
            await self._set_reason(group, f"node {failed[0][0].hex()[:8]} could not reserve its bundles: {failed[0][1]}")
            return
        created = Group()
        created.CopyFrom(group)
        created.state = Group.CREATED
        created.pending_reason = ""
        created.bundle_nodes.extend(placed)
        try:
            await self._save(created)
        except Exception:
            await asyncio.gather(*(self._raylets.give_back(alive[n], b) for n, b in by_node.items()),
                                 return_exceptions=True)
            raise
        self._groups[group.placement_group_id] = created
        await asyncio.gather(*(self._commit(alive[n], b) for n, b in by_node.items()))
        placement_spans.scheduled(group.placement_group_id, list(placed))
        log.info("placement group %s created on %d node(s)", group.placement_group_id.hex()[:8], len(by_node))

    async def _commit(self, node: gcs_pb2.NodeInfo, bundles: list[raylet_pb2.Bundle]) -> None:
        """Commit is idempotent: retried while the node lives (if it dies,
        its death sends the group back to PENDING)."""
        for attempt in range(5):
            try:
                await self._raylets.commit(node, bundles)
                return
            except Exception as e:
                log.warning("committing bundles of %s on node %s failed (%s); attempt %d",
                            bundles[0].placement_group_id.hex()[:8], node.node_id.hex()[:8], e, attempt + 1)
                if node.node_id not in {n.node_id for n in self._nodes.alive()}:
                    return
                await asyncio.sleep(0.2 * (attempt + 1))

    def _placed_on(self, node_id: bytes, held: gcs_pb2.HeldBundle) -> bool:
        """Whether the table has that bundle created on that node."""
        group = self._groups.get(held.placement_group_id)
        return (group is not None and group.state == Group.CREATED
                and 0 <= held.index < len(group.bundle_nodes) and group.bundle_nodes[held.index] == node_id)

    def _matches(self, node_id: bytes, held: gcs_pb2.HeldBundle) -> bool:
        return held.committed and self._placed_on(node_id, held)

    def settle(self, node_id: bytes, held: list[gcs_pb2.HeldBundle]) -> None:
        """Check a node's reported bundles against the table (cheap: every
        report); if they differ, put it right in the background."""
        if node_id in self._settling or all(self._matches(node_id, h) for h in held):
            return
        task = asyncio.create_task(self._settle(node_id, held))
        self._settling[node_id] = task
        task.add_done_callback(lambda _: self._settling.pop(node_id, None))

    async def _settle(self, node_id: bytes, held: list[gcs_pb2.HeldBundle]) -> None:
        # Under the lock no two-phase reservation is in flight, so a bundle
        # that does not match the table now is one nobody will finish.
        async with self._lock:
            node = next((n for n in self._nodes.alive() if n.node_id == node_id), None)
            if node is None:
                return
            commit, give_back = [], []
            for h in held:
                if self._matches(node_id, h):
                    continue
                group = self._groups.get(h.placement_group_id)
                bundle = raylet_pb2.Bundle(placement_group_id=h.placement_group_id, index=h.index)
                if group is not None and 0 <= h.index < len(group.bundles):
                    bundle.resources.CopyFrom(group.bundles[h.index])
                if self._placed_on(node_id, h):
                    commit.append(bundle)  # created here, never committed
                else:
                    give_back.append(bundle)  # pending, removed, unknown or placed elsewhere
            try:
                if commit:
                    log.warning("committing %d bundle(s) on node %s left prepared", len(commit), node_id.hex()[:8])
                    await self._raylets.commit(node, commit)
                if give_back:
                    log.warning("returning %d bundle(s) on node %s that no placement group holds there",
                                len(give_back), node_id.hex()[:8])
                    await self._raylets.give_back(node, give_back)
            except Exception as e:  # the next report tries again
                log.warning("settling the bundles of node %s failed: %s", node_id.hex()[:8], e)

    async def _set_reason(self, group: Group, reason: str) -> None:
        if group.pending_reason != reason:
            group.pending_reason = reason  # not stored: recomputed on every round

    async def node_died(self, node_id: bytes) -> None:
        """Groups with a bundle on that node are reserved again from scratch."""
        async with self._lock:
            for group in list(self._groups.values()):
                if group.state == Group.CREATED and node_id in group.bundle_nodes:
                    pending = Group()
                    pending.CopyFrom(group)
                    pending.state = Group.PENDING
                    pending.pending_reason = f"node {node_id.hex()[:8]} of one of its bundles died"
                    del pending.bundle_nodes[:]
                    await self._save(pending)
                    self._groups[group.placement_group_id] = pending
                    await self._give_back(group, skip=node_id)

    async def _give_back(self, group: Group, skip: bytes = b"") -> None:
        nodes = {n.node_id: n for n in self._nodes.alive()}
        by_node: dict[bytes, list[raylet_pb2.Bundle]] = {}
        for index, node_id in enumerate(group.bundle_nodes):
            if node_id != skip and node_id in nodes:
                by_node.setdefault(node_id, []).append(raylet_pb2.Bundle(
                    placement_group_id=group.placement_group_id, index=index, resources=group.bundles[index]))
        results = await asyncio.gather(*(self._raylets.give_back(nodes[n], b) for n, b in by_node.items()),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("returning bundles of %s failed: %s", group.placement_group_id.hex()[:8], result)
