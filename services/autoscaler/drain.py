"""Moving objects off a node before it goes: every other alive raylet is
asked (NodeDrain.EvacuateObjects) to pull a copy of what it refers to whose
only copy is on that node, until none is left."""

from __future__ import annotations

import grpc
import grpc.aio
from ember.v1 import autoscaler_pb2, autoscaler_pb2_grpc, gcs_pb2

from ember_common import rpc


class ObjectEvacuation:
    def __init__(self, token: str) -> None:
        self._token = token
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, node: gcs_pb2.NodeInfo) -> autoscaler_pb2_grpc.NodeDrainStub:
        address = f"{node.node_address}:{node.raylet_port}"
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = rpc.aio_channel(address, self._token)
        return autoscaler_pb2_grpc.NodeDrainStub(channel)

    async def remaining(self, node_id: bytes, others: list[gcs_pb2.NodeInfo]) -> int:
        """Objects still only on `node_id` over the `others` (pulls are
        started by asking); a raylet that does not answer counts as one."""
        left = 0
        for node in others:
            try:
                reply = await self._stub(node).EvacuateObjects(
                    autoscaler_pb2.EvacuateObjectsRequest(node_id=node_id), timeout=10)
                left += reply.remaining
            except grpc.aio.AioRpcError:
                left += 1
        return left

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
