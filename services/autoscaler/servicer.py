"""The Autoscaler service's handler: the status, from the leader only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import grpc.aio
from ember.v1 import autoscaler_pb2, autoscaler_pb2_grpc

from ember_common.rpc import map_errors
from ember_gcs.leader_gate import LEADER_METADATA, Leadership

if TYPE_CHECKING:
    from ember_autoscaler.autoscaler import Autoscaler


class AutoscalerServicer(autoscaler_pb2_grpc.AutoscalerServicer):
    def __init__(self, autoscaler: "Autoscaler | None", leadership: Leadership) -> None:
        self._autoscaler = autoscaler
        self._leadership = leadership

    @map_errors
    async def GetAutoscalerStatus(self, request: autoscaler_pb2.GetAutoscalerStatusRequest,
                                  context: grpc.aio.ServicerContext) -> autoscaler_pb2.GetAutoscalerStatusReply:
        if not self._leadership.is_leader:  # a standby's view is not the autoscaler's
            leader = self._leadership.leader
            if leader:
                context.set_trailing_metadata(((LEADER_METADATA, leader),))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "this GCS replica is a standby; "
                                + (f"the leader is at {leader}" if leader else "no leader yet"))
        if self._autoscaler is None:
            return autoscaler_pb2.GetAutoscalerStatusReply(enabled=False)
        return self._autoscaler.status()
