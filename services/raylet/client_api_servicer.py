"""The ClientApi gRPC service (proto/ember/v1/client_api.proto): clients in
other languages. Thin: each handler checks its request, calls one method of
ForeignSessions and maps errors to status codes."""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable

import grpc
import grpc.aio
from ember.v1 import client_api_pb2, client_api_pb2_grpc

from ember_common.errors import EmberServiceError, InvalidArgument, ResourceExhausted
from ember_common.rpc import map_errors, status_of
from ember_raylet.foreign_sessions import ForeignSessions, GetTimeout


class ClientApiServicer(client_api_pb2_grpc.ClientApiServicer):
    def __init__(self, sessions: ForeignSessions) -> None:
        self._sessions = sessions

    async def Connect(self, request: client_api_pb2.ConnectRequest,
                      context: grpc.aio.ServicerContext) -> AsyncIterator[client_api_pb2.SessionEvent]:
        try:
            session = await self._sessions.open(request)
        except EmberServiceError as e:
            await context.abort(status_of(e), str(e))
        limits = self._sessions.limits
        try:
            yield client_api_pb2.SessionEvent(connected=client_api_pb2.Connected(
                session_id=session.session_id, job_id=session.client.job_id, node_id=self._sessions.node_id,
                namespace=session.namespace, max_value_bytes=limits.max_value_bytes,
                max_args_bytes=limits.max_args_bytes, chunk_bytes=limits.chunk_bytes))
            while True:
                yield await session.events.get()
        finally:  # the client closed the stream or went away: the session ends
            self._sessions.close(session)

    @map_errors
    async def Submit(self, request: client_api_pb2.SubmitRequest,
                     context: grpc.aio.ServicerContext) -> client_api_pb2.SubmitReply:
        session = self._sessions.find(request.session_id)
        refs = self._sessions.submit(session, request.calls)
        return client_api_pb2.SubmitReply(refs=[client_api_pb2.Refs(object_ids=r) for r in refs])

    @map_errors
    async def CreateActor(self, request: client_api_pb2.CreateActorRequest,
                          context: grpc.aio.ServicerContext) -> client_api_pb2.CreateActorReply:
        session = self._sessions.find(request.session_id)
        return await self._sessions.create_actor(session, request)

    @map_errors
    async def LookupActor(self, request: client_api_pb2.LookupActorRequest,
                          context: grpc.aio.ServicerContext) -> client_api_pb2.LookupActorReply:
        session = self._sessions.find(request.session_id)
        namespace = request.namespace if request.HasField("namespace") else None
        return client_api_pb2.LookupActorReply(actor=await self._sessions.lookup_actor(session, request.name, namespace))

    @map_errors
    async def KillActor(self, request: client_api_pb2.KillActorRequest,
                        context: grpc.aio.ServicerContext) -> client_api_pb2.KillActorReply:
        session = self._sessions.find(request.session_id)
        self._sessions.kill(session, request.actor_id, request.no_restart)
        return client_api_pb2.KillActorReply()

    @map_errors
    async def Put(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> client_api_pb2.PutReply:
        limit = self._sessions.limits.max_value_bytes
        session = None
        pieces: list[bytes] = []
        size = 0
        async for piece in request_iterator:
            if session is None:
                session = self._sessions.find(piece.session_id)
            size += len(piece.data)
            if size > limit:
                raise ResourceExhausted(f"the value is larger than the {limit} bytes this server takes in one Put "
                                        "(max_value_bytes)")
            pieces.append(piece.data)
        if session is None:
            raise InvalidArgument("a Put needs at least one message, naming the session")
        object_id = await self._sessions.put(session, b"".join(pieces))
        return client_api_pb2.PutReply(object_id=object_id)

    async def Get(self, request: client_api_pb2.GetRequest,
                  context: grpc.aio.ServicerContext) -> AsyncIterator[client_api_pb2.GetReply]:
        async def replies() -> AsyncIterator[client_api_pb2.GetReply]:
            session = self._sessions.find(request.session_id)
            return await self._sessions.get(session, list(request.object_ids), timeout_of(request))

        async for reply in _mapped(replies, context):
            yield reply

    async def Run(self, request: client_api_pb2.RunRequest,
                  context: grpc.aio.ServicerContext) -> AsyncIterator[client_api_pb2.GetReply]:
        async def replies() -> AsyncIterator[client_api_pb2.GetReply]:
            session = self._sessions.find(request.session_id)
            return await self._sessions.run(session, request.calls, timeout_of(request), request.release)

        async for reply in _mapped(replies, context):
            yield reply

    @map_errors
    async def Wait(self, request: client_api_pb2.WaitRequest,
                   context: grpc.aio.ServicerContext) -> client_api_pb2.WaitReply:
        session = self._sessions.find(request.session_id)
        timeout = timeout_of(request)
        ids = list(request.object_ids)
        if len(set(ids)) != len(ids):
            raise InvalidArgument("wait takes each ref once")
        ready = await self._sessions.wait(session, ids, request.num_returns or 1, timeout, fetch_local=True)
        return client_api_pb2.WaitReply(ready=[i for i, object_id in enumerate(ids) if object_id in ready])

    @map_errors
    async def Release(self, request: client_api_pb2.ReleaseRequest,
                      context: grpc.aio.ServicerContext) -> client_api_pb2.ReleaseReply:
        session = self._sessions.find(request.session_id)
        self._sessions.release(session, request.object_ids)
        return client_api_pb2.ReleaseReply()

    @map_errors
    async def Nodes(self, request: client_api_pb2.NodesRequest,
                    context: grpc.aio.ServicerContext) -> client_api_pb2.NodesReply:
        self._sessions.find(request.session_id)
        return await self._sessions.nodes()


def timeout_of(request: Any) -> float | None:
    timeout = request.timeout_s if request.HasField("timeout_s") else None
    if timeout is not None and not timeout >= 0:
        raise InvalidArgument(f"timeout_s must be >= 0, got {timeout}")
    return timeout


async def _mapped(open_replies: Callable[[], Awaitable[AsyncIterator[client_api_pb2.GetReply]]],
                  context: grpc.aio.ServicerContext) -> AsyncIterator[client_api_pb2.GetReply]:
    """A stream of values, its errors as statuses (a get that timed out: DEADLINE_EXCEEDED)."""
    try:
        async for reply in await open_replies():
            yield reply
    except GetTimeout as e:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(e))
    except EmberServiceError as e:
        await context.abort(status_of(e), str(e))
