"""The GCS as a client of raylets: reserving placement group bundles."""

from __future__ import annotations

import grpc.aio
from ember.v1 import gcs_pb2, raylet_pb2, raylet_pb2_grpc

from ember_common import rpc


class RayletBundleClient:
    """One channel per raylet address; each call is bounded in time."""

    def __init__(self, token: str, timeout_s: float = 10.0) -> None:
        self._token = token
        self._timeout = timeout_s
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, node: gcs_pb2.NodeInfo) -> grpc.aio.Channel:
        """The channel to a node's raylet (also the autoscaler's, for its drains)."""
        address = f"{node.node_address}:{node.raylet_port}"
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = rpc.aio_channel(address, self._token)
        return channel

    def _stub(self, node: gcs_pb2.NodeInfo) -> raylet_pb2_grpc.RayletStub:
        return raylet_pb2_grpc.RayletStub(self.channel(node))

    async def prepare(self, node: gcs_pb2.NodeInfo, bundles: list[raylet_pb2.Bundle]) -> str | None:
        reply = await self._stub(node).PrepareBundles(raylet_pb2.BundlesRequest(bundles=bundles), timeout=self._timeout)
        return None if reply.ok else reply.reason

    async def commit(self, node: gcs_pb2.NodeInfo, bundles: list[raylet_pb2.Bundle]) -> None:
        await self._stub(node).CommitBundles(raylet_pb2.BundlesRequest(bundles=bundles), timeout=self._timeout)

    async def give_back(self, node: gcs_pb2.NodeInfo, bundles: list[raylet_pb2.Bundle]) -> None:
        await self._stub(node).ReturnBundles(raylet_pb2.BundlesRequest(bundles=bundles), timeout=self._timeout)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
