"""The ClientCalls gRPC service (proto/ember/v1/client_calls.proto): a
client API session's calls as tagged messages on one stream. Thin: each
request is a Run, a Submit or a Get of ForeignSessions, its replies and its
end tagged."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import grpc
import grpc.aio
from ember.v1 import client_api_pb2, client_calls_pb2, client_calls_pb2_grpc

from ember_common.errors import EmberServiceError
from ember_common.rpc import status_of
from ember_raylet.client_api_servicer import timeout_of
from ember_raylet.foreign_sessions import ForeignSessions, GetTimeout

_END = object()


class ClientCallsServicer(client_calls_pb2_grpc.ClientCallsServicer):
    def __init__(self, sessions: ForeignSessions) -> None:
        self._sessions = sessions

    async def Runs(self, request_iterator: Any,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[client_calls_pb2.TaggedReply]:
        out: asyncio.Queue[Any] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def read() -> None:
            try:
                async for tagged in request_iterator:
                    kind = tagged.WhichOneof("request")
                    if kind == "submit":  # (at once, so what the stream carries next finds it submitted)
                        out.put_nowait(self._submit(tagged))
                        continue
                    task = asyncio.ensure_future(self._get(tagged, out) if kind == "get" else self._run(tagged, out))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if running:
                    await asyncio.wait(set(running))
            finally:
                out.put_nowait(_END)

        reader = asyncio.ensure_future(read())
        try:
            while (reply := await out.get()) is not _END:
                yield reply
            reader.result()  # (a request that did not parse: its status ends the stream)
        finally:
            reader.cancel()

    def _submit(self, tagged: client_calls_pb2.TaggedRun) -> client_calls_pb2.TaggedReply:
        try:
            refs = self._sessions.submit(self._sessions.find(tagged.submit.session_id), tagged.submit.calls)
        except EmberServiceError as e:
            return client_calls_pb2.TaggedReply(tag=tagged.tag, done=True, code=status_of(e).value[0], message=str(e))
        return client_calls_pb2.TaggedReply(tag=tagged.tag, done=True, submitted=client_api_pb2.SubmitReply(
            refs=[client_api_pb2.Refs(object_ids=r) for r in refs]))

    async def _get(self, tagged: client_calls_pb2.TaggedRun, out: asyncio.Queue[Any]) -> None:
        request = tagged.get
        code, message = grpc.StatusCode.OK, ""
        try:
            session = self._sessions.find(request.session_id)
            async for replies in self._sessions.get_as_ready(session, list(request.object_ids), timeout_of(request)):
                out.put_nowait(client_calls_pb2.TaggedReply(tag=tagged.tag, replies=replies))
                await asyncio.sleep(0)  # (the stream sends it while we make the next)
        except GetTimeout as e:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, str(e)
        except EmberServiceError as e:
            code, message = status_of(e), str(e)
        out.put_nowait(client_calls_pb2.TaggedReply(tag=tagged.tag, done=True, code=code.value[0], message=message))

    async def _run(self, tagged: client_calls_pb2.TaggedRun, out: asyncio.Queue[Any]) -> None:
        request = tagged.run
        code, message = grpc.StatusCode.OK, ""
        try:
            session = self._sessions.find(request.session_id)
            async for reply in await self._sessions.run(session, request.calls, timeout_of(request), request.release):
                out.put_nowait(client_calls_pb2.TaggedReply(tag=tagged.tag, reply=reply))
        except GetTimeout as e:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, str(e)
        except EmberServiceError as e:
            code, message = status_of(e), str(e)
        out.put_nowait(client_calls_pb2.TaggedReply(tag=tagged.tag, done=True, code=code.value[0], message=message))
