"""The Raylet gRPC service: the Connect stream and node stats."""

from __future__ import annotations

from typing import AsyncIterator

import grpc
import grpc.aio
from ember.v1 import raylet_pb2, raylet_pb2_grpc

from ember_common import ids
from ember_common.errors import InvalidArgument
from ember_common.rpc import map_errors
from ember_raylet.client_stream import serve_session
from ember_raylet.node_manager import NodeManager


class RayletServicer(raylet_pb2_grpc.RayletServicer):
    def __init__(self, node_manager: NodeManager, registered: raylet_pb2.ClientRegistered) -> None:
        self._nm = node_manager
        self._registered = registered

    async def Connect(self, request_iterator: AsyncIterator[raylet_pb2.ClientBatch], context: grpc.aio.ServicerContext) -> None:
        async def read() -> raylet_pb2.ClientBatch | None:
            batch = await context.read()
            return None if batch is grpc.aio.EOF else batch

        failure = await serve_session(self._nm, self._registered, read, context.write)
        if failure:
            await context.abort(*failure)

    @map_errors
    async def ListObjects(self, request: raylet_pb2.ListObjectsRequest, context: grpc.aio.ServicerContext) -> raylet_pb2.ListObjectsReply:
        return raylet_pb2.ListObjectsReply(node_id=self._nm.node_id,
                                           objects=self._nm.objects.describe(set(self._nm.lineage.entries)))

    @map_errors
    async def PrepareBundles(self, request: raylet_pb2.BundlesRequest, context: grpc.aio.ServicerContext) -> raylet_pb2.PrepareBundlesReply:
        _check_bundles(request)
        reason = self._nm.prepare_bundles(request.bundles)
        return raylet_pb2.PrepareBundlesReply(ok=reason is None, reason=reason or "")

    @map_errors
    async def CommitBundles(self, request: raylet_pb2.BundlesRequest, context: grpc.aio.ServicerContext) -> raylet_pb2.BundlesReply:
        _check_bundles(request)
        self._nm.commit_bundles(request.bundles)
        return raylet_pb2.BundlesReply()

    @map_errors
    async def ReturnBundles(self, request: raylet_pb2.BundlesRequest, context: grpc.aio.ServicerContext) -> raylet_pb2.BundlesReply:
        _check_bundles(request)
        self._nm.return_bundles(request.bundles)
        return raylet_pb2.BundlesReply()

    @map_errors
    async def GetNodeStats(self, request: raylet_pb2.GetNodeStatsRequest, context: grpc.aio.ServicerContext) -> raylet_pb2.GetNodeStatsReply:
        return self._nm.stats()


def _check_bundles(request: raylet_pb2.BundlesRequest) -> None:
    for b in request.bundles:
        if len(b.placement_group_id) != ids.UNIQUE_ID_SIZE or b.index < 0:
            raise InvalidArgument(f"a bundle needs a {ids.UNIQUE_ID_SIZE}-byte placement_group_id and an index >= 0")
        if any(v < 0 for v in b.resources.amounts.values()):
            raise InvalidArgument("bundle resources must be non-negative")
