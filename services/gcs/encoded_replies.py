"""Lets chosen unary Gcs handlers answer with their reply already
serialized (bytes), which go out as they are; a message still goes through
the method's own serializer. The cluster view in every ReportResources
reply is kept encoded by the node table (node_table.py says why)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

import grpc
import grpc.aio


def _passing_bytes(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes]:
    def serialize(reply: Any) -> bytes:
        if isinstance(reply, bytes) or serializer is None:
            return reply
        return serializer(reply)

    return serialize


class EncodedReplies(grpc.aio.ServerInterceptor):
    def __init__(self, methods: Iterable[str]) -> None:
        self._methods = frozenset(methods)  # full names: /ember.v1.Gcs/ReportResources
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        method: str = details.method  # type: ignore[attr-defined]
        if handler is None or handler.unary_unary is None or method not in self._methods:
            return handler
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            wrapped = grpc.unary_unary_rpc_method_handler(
                handler.unary_unary, request_deserializer=handler.request_deserializer,
                response_serializer=_passing_bytes(handler.response_serializer))
            cached = self._wrapped[method] = (handler, wrapped)
        return cached[1]
