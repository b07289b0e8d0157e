"""A standby GCS replica refuses the Gcs RPCs (after the token check) with
UNAVAILABLE, naming the leader in the message and in the `ember-leader`
trailing metadata, so clients can go there. GetClusterInfo is answered by
every replica: it is how anyone finds the leader."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

import grpc
import grpc.aio

from ember_common import rpc

ANSWERED_BY_STANDBYS = {"/ember.v1.Gcs/GetClusterInfo"}
LEADER_METADATA = "ember-leader"


class Leadership(Protocol):
    is_leader: bool
    leader: str
    replicas: list[str]


class SoleLeader:
    """Leadership without replicas (in-memory storage): always the leader."""

    is_leader = True

    def __init__(self) -> None:
        self.leader = ""

    @property
    def replicas(self) -> list[str]:
        return [self.leader]


class LeaderGate(grpc.aio.ServerInterceptor):
    def __init__(self, leadership: Leadership) -> None:
        self._leadership = leadership

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        method = details.method  # type: ignore[attr-defined]
        if self._leadership.is_leader or not method.startswith("/ember.v1.Gcs/") or method in ANSWERED_BY_STANDBYS:
            return handler
        leader = self._leadership.leader
        where = f"the leader is at {leader}" if leader else "no leader yet (an election is under way)"
        return rpc.refusal(handler, grpc.StatusCode.UNAVAILABLE, f"this GCS replica is a standby; {where}",
                           ((LEADER_METADATA, leader),) if leader else ())
