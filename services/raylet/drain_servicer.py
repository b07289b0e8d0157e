"""The NodeDrain service: before the autoscaler removes an idle node, each
other raylet pulls a copy of the objects it refers to whose only copy is
there (docs/autoscaler.md, "Scaling down")."""

from __future__ import annotations

import grpc.aio
from ember.v1 import autoscaler_pb2, autoscaler_pb2_grpc

from ember_common import ids
from ember_common.rpc import map_errors
from ember_raylet.node_manager import NodeManager


class NodeDrainServicer(autoscaler_pb2_grpc.NodeDrainServicer):
    def __init__(self, nm: NodeManager) -> None:
        self._nm = nm

    @map_errors
    async def EvacuateObjects(self, request: autoscaler_pb2.EvacuateObjectsRequest,
                              context: grpc.aio.ServicerContext) -> autoscaler_pb2.EvacuateObjectsReply:
        node_id = ids.check(request.node_id, ids.UNIQUE_ID_SIZE, "node_id")
        if node_id == self._nm.node_id:
            return autoscaler_pb2.EvacuateObjectsReply()  # (its own store is not what goes)
        stranded = self._nm.objects.only_on(node_id)
        started = sum(1 for object_id in stranded if object_id not in self._nm.fetches.pulls)
        for object_id in stranded:
            self._nm.fetches.make_local(object_id)
        return autoscaler_pb2.EvacuateObjectsReply(remaining=len(self._nm.objects.only_on(node_id)), started=started)
