"""Nodes and jobs leaving the cluster, and what follows in the other tables:
a dead node's actors die or restart elsewhere and its placement groups are
reserved again; a finished job's placement groups go. The servicer and the
health checker both come here, so a node's death has one set of
consequences whoever noticed it."""

from __future__ import annotations

import logging

from ember.v1 import common_pb2, gcs_pb2

from ember_gcs.actor_table import ActorTable
from ember_gcs.job_table import JobTable
from ember_gcs.node_table import NodeTable
from ember_gcs.placement_group_table import PlacementGroupTable

log = logging.getLogger(__name__)


class ClusterMembership:
    def __init__(self, nodes: NodeTable, jobs: JobTable, actors: ActorTable,
                 placement_groups: PlacementGroupTable) -> None:
        self._nodes = nodes
        self._jobs = jobs
        self._actors = actors
        self._groups = placement_groups
        # Nodes declared dead whose consequences have not all been applied
        # (storage failed mid-way): tried again at each health check, since
        # the node table will not name them again.
        self._unsettled: set[bytes] = set()

    async def on_node_dead(self, node_id: bytes) -> None:
        """The node is marked dead in the node table: its actors and its
        placement groups' bundles follow. Safe to repeat (both steps skip
        what they already did)."""
        await self._actors.node_died(node_id, {n.node_id for n in self._nodes.alive()})
        await self._groups.node_died(node_id)

    async def unregister_node(self, node_id: bytes, reason: str) -> None:
        """A raylet leaving says so. The consequences follow even if the
        node was dead already (they skip what is done)."""
        await self._nodes.mark_dead(node_id, reason)
        await self.on_node_dead(node_id)

    async def check_health(self) -> None:
        """Declare dead the nodes silent for too long, with the consequences.
        One node's failing consequences hold up no other's; they are tried
        again at the next check."""
        self._unsettled.update(await self._nodes.check_health())
        for node_id in list(self._unsettled):
            try:
                await self.on_node_dead(node_id)
            except Exception:
                log.exception("the consequences of node %s's death failed; trying again at the next check",
                              node_id.hex())
            else:
                self._unsettled.discard(node_id)

    async def report(self, node_id: bytes, available: common_pb2.ResourceSet,
                     infeasible: list[common_pb2.ResourceSet], total: common_pb2.ResourceSet,
                     bundles: list[gcs_pb2.HeldBundle]) -> bytes:
        """A node's resource report; the nodes alive, for its cluster view,
        as an encoded ReportResourcesReply (NodeTable.view_reply).
        The bundles it says it holds are checked against the placement groups."""
        await self._nodes.report(node_id, available, infeasible, total)
        self._groups.settle(node_id, bundles)
        return self._nodes.view_reply()

    async def finish_job(self, job_id: bytes) -> None:
        """A job ended: its placement groups go (detached ones stay)."""
        await self._jobs.finish(job_id)
        await self._groups.remove_job(job_id)
