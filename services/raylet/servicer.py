"""The Raylet gRPC service: the client stream transport and node stats.
Batches go to the NodeManager as they arrive; whatever it queues for a client
leaves as one batch per event-loop turn."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import grpc
import grpc.aio
from ember.v1 import raylet_pb2, raylet_pb2_grpc

from ember._private import ids
from ember._private.service import map_errors
from ember_raylet.client_session import DRIVER, WORKER, ClientSession
from ember_raylet.node_manager import NodeManager, ProtocolError

log = logging.getLogger(__name__)


class RayletServicer(raylet_pb2_grpc.RayletServicer):
    def __init__(self, node_manager: NodeManager, registered: raylet_pb2.ClientRegistered) -> None:
        self._nm = node_manager
        self._registered = registered

    async def Connect(self, request_iterator: AsyncIterator[raylet_pb2.ClientBatch], context: grpc.aio.ServicerContext) -> None:
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        try:
            session = self._open(first)
        except ProtocolError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        failure: list[tuple[grpc.StatusCode, str]] = []
        reader = asyncio.create_task(self._read(context, session, failure))
        try:
            while (batch := await session.next_batch()) is not None:
                await context.write(batch)
        finally:
            reader.cancel()
            self._nm.disconnect(session)
        if failure:
            await context.abort(*failure[0])

    def _open(self, first: raylet_pb2.ClientBatch) -> ClientSession:
        if not first.HasField("register"):
            raise ProtocolError("the first message of a Connect stream must carry `register`")
        reg = first.register
        if reg.kind == WORKER:
            if len(reg.worker_id) != ids.UNIQUE_ID_SIZE:
                raise ProtocolError(f"worker_id must be {ids.UNIQUE_ID_SIZE} bytes")
        elif reg.kind == DRIVER:
            if reg.job_id and len(reg.job_id) != ids.JOB_ID_SIZE:
                raise ProtocolError(f"job_id must be {ids.JOB_ID_SIZE} bytes")
        else:
            raise ProtocolError("register.kind must be DRIVER or WORKER")
        session = ClientSession(ids.new_unique_id(), reg.kind, reg.job_id, reg.worker_id, reg.pid)
        session.outbox.registered.CopyFrom(self._registered)
        session.outbox.registered.client_id = session.client_id
        session.touch()
        self._nm.connect(session)
        self._nm.handle_batch(session, first)
        return session

    async def _read(self, context: grpc.aio.ServicerContext, session: ClientSession,
                    failure: list[tuple[grpc.StatusCode, str]]) -> None:
        try:
            while True:
                batch = await context.read()
                if batch is grpc.aio.EOF:
                    break
                self._nm.handle_batch(session, batch)
        except ProtocolError as e:
            failure.append((grpc.StatusCode.INVALID_ARGUMENT, str(e)))
        except asyncio.CancelledError:
            raise
        except grpc.RpcError:
            pass  # the client went away
        except Exception as e:
            log.exception("client %s: batch failed", session.client_id.hex()[:8])
            failure.append((grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"))
        finally:
            session.close()

    @map_errors
    async def GetNodeStats(self, request: raylet_pb2.GetNodeStatsRequest, context: grpc.aio.ServicerContext) -> raylet_pb2.GetNodeStatsReply:
        return self._nm.stats()
