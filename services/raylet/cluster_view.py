"""The other nodes as this raylet knows them: addresses and resources, from
the GCS's answer to each resource report (every `report_interval_s`)."""

from __future__ import annotations

import dataclasses
import logging
import time

from ember.v1 import gcs_pb2

from ember_raylet.resources import Resources

log = logging.getLogger(__name__)


@dataclasses.dataclass
class NodeView:
    node_id: bytes
    address: str          # host other nodes reach it at
    raylet_port: int
    store_port: int
    transfer_port: int  # the store's data plane
    total: Resources
    available: Resources
    labels: dict[str, str]

    @property
    def raylet_address(self) -> str:
        return f"{self.address}:{self.raylet_port}"

    @property
    def transfer_address(self) -> str:
        return f"{self.address}:{self.transfer_port}"


class ClusterView:
    def __init__(self, local_id: bytes) -> None:
        self.local_id = local_id
        self.nodes: dict[bytes, NodeView] = {}
        # Nodes we lost (their stream broke), and when: not used while the
        # GCS may still list a dead node (it notices a death only after its
        # health timeout). One it still lists `readmit_after_s` later kept
        # reporting all along: the break was the network's, and the node is
        # used again. (A restarted node comes back with a new id anyway.)
        self.lost: dict[bytes, float] = {}
        self.readmit_after_s = 30.0  # set to twice the GCS's health timeout at registration

    def update(self, nodes: list[gcs_pb2.NodeInfo], now: float | None = None) -> list[bytes]:
        """Replace the view with the GCS's alive nodes; the ids that left."""
        now = time.monotonic() if now is None else now
        for n in nodes:
            since = self.lost.get(n.node_id)
            if n.alive and since is not None and now - since >= self.readmit_after_s:
                del self.lost[n.node_id]
                log.warning("node %s is still alive %.0f s after its stream broke: using it again",
                            n.node_id.hex()[:8], now - since)
        fresh = {}
        for n in nodes:
            if n.alive and n.node_id != self.local_id and n.node_id not in self.lost:
                fresh[n.node_id] = NodeView(n.node_id, n.node_address, n.raylet_port, n.object_store_port,
                                            n.object_transfer_port, dict(n.total.amounts),
                                            dict(n.available.amounts), dict(n.labels))
        gone = [node_id for node_id in self.nodes if node_id not in fresh]
        self.nodes = fresh
        return gone

    def correct_total(self, node_id: bytes, total: dict[str, float]) -> None:
        """What a node said its resources are now (newer than the GCS's last
        list): resources it no longer has are not free there either."""
        node = self.nodes.get(node_id)
        if node is not None:
            node.total = total
            node.available = {k: v for k, v in node.available.items() if k in total}

    def remove(self, node_id: bytes, now: float | None = None) -> None:
        self.nodes.pop(node_id, None)
        self.lost[node_id] = time.monotonic() if now is None else now

    def get(self, node_id: bytes) -> NodeView | None:
        return self.nodes.get(node_id)
