"""Moving objects off a node before it goes: every other alive raylet is
asked (NodeDrain.EvacuateObjects) to pull a copy of what it refers to whose
only copy is on that node, until none is left."""

from __future__ import annotations

from typing import Callable

import grpc.aio
from ember.v1 import autoscaler_pb2, autoscaler_pb2_grpc, gcs_pb2


class ObjectEvacuation:
    def __init__(self, channel_of: Callable[[gcs_pb2.NodeInfo], grpc.aio.Channel]) -> None:
        self._channel_of = channel_of  # the GCS's channels to raylets

    async def remaining(self, node_id: bytes, others: list[gcs_pb2.NodeInfo]) -> int:
        """Objects still only on `node_id` over the `others` (pulls are
        started by asking); a raylet that does not answer counts as one."""
        left = 0
        for node in others:
            try:
                reply = await autoscaler_pb2_grpc.NodeDrainStub(self._channel_of(node)).EvacuateObjects(
                    autoscaler_pb2.EvacuateObjectsRequest(node_id=node_id), timeout=10)
                left += reply.remaining
            except grpc.aio.AioRpcError:
                left += 1
        return left
