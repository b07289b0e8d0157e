"""The streams this raylet opens to other nodes' raylets, as their client
(kind RAYLET): what the node manager queued for a peer goes out on its
stream; what the peer sends back goes to `NodeManager.handle_peer_batch`;
a broken stream is `NodeManager.peer_lost`."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import AsyncIterator

import grpc
import grpc.aio
from ember.v1 import raylet_pb2, raylet_pb2_grpc

from ember_common import rpc
from ember_raylet.node_manager import NodeManager

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0


class PeerLinks:
    def __init__(self, nm: NodeManager, token: str) -> None:
        self._nm = nm
        self._token = token
        self._links: dict[bytes, _Link] = {}

    def wake(self, node_id: bytes) -> None:
        """Something is queued for `node_id`: open its stream if need be."""
        link = self._links.get(node_id)
        if link is None:
            link = self._links[node_id] = _Link(self, node_id)
        link.wake.set()

    def _ended(self, link: "_Link", reason: str) -> None:
        if self._links.get(link.node_id) is link:
            del self._links[link.node_id]
        self._nm.peer_lost(link.node_id, reason)

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        for link in links:
            link.task.cancel()
        await asyncio.gather(*(link.task for link in links), return_exceptions=True)


class _Link:
    def __init__(self, links: PeerLinks, node_id: bytes) -> None:
        self.links = links
        self.node_id = node_id
        self.wake = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        nm = self.links._nm
        node = nm.view.get(self.node_id)
        if node is None:
            self.links._ended(self, "the node is not alive")
            return
        # The token goes as call metadata: grpc.aio's client interceptors fail
        # a stream-stream call fed by an async generator (INTERNAL).
        channel = rpc.aio_channel(node.raylet_address, None)
        reason = "its raylet closed the stream"
        try:
            # A node the GCS lists may still be starting (or the machine
            # slow): connecting rides over transient failures for a while
            # before the node counts as lost.
            await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT_S)
            call = raylet_pb2_grpc.RayletStub(channel).Connect(
                self._requests(), metadata=rpc.token_metadata(self.links._token))
            async for batch in call:
                nm.handle_peer_batch(self.node_id, batch)
        except grpc.aio.AioRpcError as e:
            reason = f"{e.code().name}: {e.details()}"
        except asyncio.TimeoutError:
            reason = f"its raylet at {node.raylet_address} did not accept a connection within {CONNECT_TIMEOUT_S:.0f} s"
        except asyncio.CancelledError:
            await channel.close()
            raise
        except Exception as e:  # a bug: say so, and treat the peer as gone
            log.exception("the stream to node %s failed", self.node_id.hex()[:8])
            reason = f"{type(e).__name__}: {e}"
        await channel.close()
        self.links._ended(self, reason)

    async def _requests(self) -> AsyncIterator[raylet_pb2.ClientBatch]:
        nm = self.links._nm
        yield raylet_pb2.ClientBatch(register=raylet_pb2.RegisterClient(
            kind=raylet_pb2.RegisterClient.RAYLET, node_id=nm.node_id, pid=os.getpid()))
        while True:
            await self.wake.wait()
            self.wake.clear()
            while (batch := nm.take_peer_batch(self.node_id)) is not None:
                yield batch
