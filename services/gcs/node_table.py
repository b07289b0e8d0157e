"""Nodes: registration, resource reports, and health (death by silence)."""

from __future__ import annotations

import logging
import time
from typing import Callable

from ember.v1 import common_pb2, gcs_pb2

from ember_common.errors import NotFound
from ember_gcs.storage import Storage

log = logging.getLogger(__name__)
TABLE = "nodes"


class NodeTable:
    table = TABLE

    def __init__(self, storage: Storage, health_timeout_s: float) -> None:
        self._storage = storage
        self.health_timeout_s = health_timeout_s
        self._nodes: dict[bytes, gcs_pb2.NodeInfo] = {}
        self._last_report: dict[bytes, float] = {}
        self._infeasible: dict[bytes, list[common_pb2.ResourceSet]] = {}
        # The cluster view each resource report is answered with, kept
        # encoded: a ReportResourcesReply is its `nodes` entries one after
        # another, so each alive node's entry is encoded when it changes
        # and the reply is their concatenation, joined again only after a
        # change. (Building and serializing every node's NodeInfo for every
        # report made the GCS's work grow with the square of the nodes.)
        self._view_entries: dict[bytes, bytes] = {}
        self._view: bytes | None = None
        # Called after a node joins, leaves or the table is reloaded (the
        # metrics discovery file follows the alive nodes).
        self.on_change: Callable[[], None] = lambda: None

    def report_ages(self, now: float) -> dict[bytes, float]:
        """Seconds since each alive node's last report (its heartbeat lag)."""
        return {node_id: now - last for node_id, last in self._last_report.items()}

    def restore(self, rows: dict[bytes, bytes]) -> None:
        """Replace what is in memory with the stored rows (at start and at takeover)."""
        self._nodes, self._last_report, self._infeasible = {}, {}, {}
        self._view_entries, self._view = {}, None
        for key, raw in rows.items():
            node = gcs_pb2.NodeInfo.FromString(raw)
            self._nodes[key] = node
            if node.alive:  # give restored nodes a full timeout to report
                self._last_report[key] = time.monotonic()
                self._view_entries[key] = _view_entry(node)
        self.on_change()

    async def _save(self, node: gcs_pb2.NodeInfo) -> None:
        await self._storage.put(TABLE, node.node_id, node.SerializeToString())

    async def register(self, node: gcs_pb2.NodeInfo) -> None:
        node.alive = True
        node.end_time = 0
        node.death_reason = ""
        if not node.start_time:
            node.start_time = time.time()
        if not node.HasField("available"):
            node.available.CopyFrom(node.total)
        await self._save(node)  # stored first: a failed write changes nothing
        self._nodes[node.node_id] = node
        self._last_report[node.node_id] = time.monotonic()
        self._view_entries[node.node_id], self._view = _view_entry(node), None
        log.info("node %s registered at %s:%d", node.node_id.hex(), node.node_address, node.raylet_port)
        self.on_change()

    async def report(self, node_id: bytes, available: common_pb2.ResourceSet, infeasible: list[common_pb2.ResourceSet],
                     total: common_pb2.ResourceSet | None = None) -> None:
        node = self._nodes.get(node_id)
        if node is None or not node.alive:
            raise NotFound(f"node {node_id.hex()} is not registered or was declared dead")
        changed = node.available != available
        if changed:
            node.available.CopyFrom(available)
        if total is not None and total.amounts and node.total != total:
            node.total.CopyFrom(total)  # bundles come and go; not stored (the raylet says it each time)
            changed = True
        if changed:
            self._view_entries[node_id], self._view = _view_entry(node), None
        if infeasible or node_id in self._infeasible:
            self._infeasible[node_id] = list(infeasible)
        self._last_report[node_id] = time.monotonic()

    async def mark_dead(self, node_id: bytes, reason: str) -> bool:
        current = self._nodes.get(node_id)
        if current is None or not current.alive:
            return False
        node = gcs_pb2.NodeInfo()
        node.CopyFrom(current)
        node.alive = False
        node.end_time = time.time()
        node.death_reason = reason
        node.available.Clear()
        await self._save(node)
        self._nodes[node_id] = node
        self._last_report.pop(node_id, None)
        self._infeasible.pop(node_id, None)
        self._view_entries.pop(node_id, None)
        self._view = None
        log.warning("node %s is dead: %s", node_id.hex(), reason)
        self.on_change()
        return True

    async def check_health(self) -> list[bytes]:
        """Declare dead the nodes silent for longer than the timeout."""
        now = time.monotonic()
        silent = [n for n, t in self._last_report.items() if now - t > self.health_timeout_s]
        for node_id in silent:
            await self.mark_dead(node_id, f"no report for {self.health_timeout_s:g}s (health check)")
        return silent

    def view_reply(self) -> bytes:
        """The alive nodes as a serialized ReportResourcesReply (what a
        raylet's cluster view uses of each: see `_view_entry`)."""
        if self._view is None:
            self._view = b"".join(self._view_entries.values())
        return self._view

    def alive(self) -> list[gcs_pb2.NodeInfo]:
        return [n for n in self._nodes.values() if n.alive]

    def all(self) -> list[gcs_pb2.NodeInfo]:
        out = []
        for node_id, node in self._nodes.items():
            view = gcs_pb2.NodeInfo()
            view.CopyFrom(node)
            view.infeasible.extend(self._infeasible.get(node_id, []))
            out.append(view)
        return out


def _view_entry(node: gcs_pb2.NodeInfo) -> bytes:
    """A node's entry in a ReportResourcesReply, encoded: the fields a
    raylet's cluster view uses (services/raylet/cluster_view.py), not its
    local paths and sockets, which only its own node's clients need."""
    view = gcs_pb2.NodeInfo(node_id=node.node_id, node_address=node.node_address, raylet_port=node.raylet_port,
                            object_store_port=node.object_store_port,
                            object_transfer_port=node.object_transfer_port, total=node.total,
                            available=node.available, alive=node.alive, labels=node.labels)
    return gcs_pb2.ReportResourcesReply(nodes=[view]).SerializeToString()
