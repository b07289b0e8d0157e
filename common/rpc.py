"""gRPC wiring shared by every service and client: channel options, the
token check on the server side and the token on the client side.

Servers install `TokenInterceptor`, which rejects a call before its handler
runs (so nothing from an unauthenticated caller is parsed, let alone
unpickled). Clients open channels through `channel()` / `aio_channel()`,
which attach the token to every call. The standard health service is exempt
so that systemd, Kubernetes and grpc_health_probe can probe without secrets;
it reveals nothing but SERVING / NOT_SERVING.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hmac
import inspect
import logging
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from ember_common import errors, tls

log = logging.getLogger(__name__)

_HEALTH_PREFIX = "/grpc.health.v1.Health/"

# Generous message limits: the hot path never sends bulk data over gRPC, but
# batches of task specs can be large.
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 512 * 1024 * 1024),
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
    ("grpc.enable_retries", 1),
    # Services on a node start together; reconnect fast instead of gRPC's 1 s.
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def token_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


class TokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def _authorized(self, metadata: Any) -> bool:
        for key, value in metadata or ():
            if key == "authorization":
                got = value.encode() if isinstance(value, str) else value
                return hmac.compare_digest(got, self._expected)
        return False

    async def intercept_service(
        self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails
    ) -> Any:
        if details.method.startswith(_HEALTH_PREFIX) or self._authorized(
            details.invocation_metadata
        ):
            return await continuation(details)
        handler = await continuation(details)
        return _deny(handler)


def refusal(handler: grpc.RpcMethodHandler | None, code: grpc.StatusCode, message: str,
            trailing: tuple[tuple[str, str], ...] = ()) -> grpc.RpcMethodHandler | None:
    """A handler that answers `code`/`message` without reading the request
    (raw bytes in: it is never parsed), in place of `handler`."""
    if handler is None:  # unknown method: let gRPC answer UNIMPLEMENTED
        return None

    async def abort(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message, trailing)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class ParseRequests(grpc.aio.ServerInterceptor):
    """A request that does not parse is the caller's fault: INVALID_ARGUMENT.
    gRPC parses a request before the handler runs and answers UNKNOWN when
    that fails, so each handler gets raw bytes and parses them itself; on a
    request stream, `context.read()` raises ProtocolError (an InvalidArgument)
    for a message that does not parse. Installed after the token check."""

    def __init__(self, limits: RequestLimits | None = None) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._limits = limits or RequestLimits()

    async def intercept_service(
        self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:  # refusals read nothing
            return handler
        method: str = details.method  # type: ignore[attr-defined]
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[method] = (handler, _parsing(handler, method, self._limits.of(method)))
        return cached[1]


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """The largest request (serialized bytes) a service takes, per method
    (its last path element, e.g. "KvPut") or else `default`; None: gRPC's
    own bound. A service that keeps what it is given (the GCS's tables)
    must not keep a 5 MB class name: RESOURCE_EXHAUSTED, naming the limit."""

    default: int | None = None
    per_method: dict[str, int] = dataclasses.field(default_factory=dict)

    def of(self, method: str) -> int | None:
        return self.per_method.get(method.rsplit("/", 1)[-1], self.default)


def _parsing(handler: grpc.RpcMethodHandler, method: str, limit: int | None) -> grpc.RpcMethodHandler:
    parse = handler.request_deserializer
    serialize = handler.response_serializer
    name = method.rsplit("/", 1)[-1]
    if handler.request_streaming:
        def strict(raw: bytes) -> Any:
            if limit is not None and len(raw) > limit:
                raise errors.ResourceExhausted(f"a {name} message of {len(raw)} bytes; the limit is {limit}")
            try:
                return parse(raw)
            except DecodeError as e:
                raise errors.ProtocolError(f"malformed request message: {e}") from None

        make = (grpc.stream_stream_rpc_method_handler if handler.response_streaming
                else grpc.stream_unary_rpc_method_handler)
        return make(handler.stream_stream or handler.stream_unary, request_deserializer=strict,
                    response_serializer=serialize)

    async def parsed(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        if limit is not None and len(raw) > limit:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"a {name} request of {len(raw)} bytes; the limit is {limit}")
        try:
            return parse(raw)
        except DecodeError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {e}")

    if handler.unary_unary is not None:
        behavior = handler.unary_unary

        async def unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            return await behavior(await parsed(raw, context), context)

        return grpc.unary_unary_rpc_method_handler(unary, response_serializer=serialize)
    stream = handler.unary_stream
    if inspect.isasyncgenfunction(stream) or inspect.isasyncgenfunction(getattr(stream, "__func__", None)):
        async def generator(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            async for response in stream(await parsed(raw, context), context):
                yield response

        return grpc.unary_stream_rpc_method_handler(generator, response_serializer=serialize)

    async def writer(raw: bytes, context: grpc.aio.ServicerContext) -> Any:  # writes with context.write
        return await stream(await parsed(raw, context), context)

    return grpc.unary_stream_rpc_method_handler(writer, response_serializer=serialize)


def _deny(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    return refusal(handler, grpc.StatusCode.UNAUTHENTICATED, "missing or wrong cluster token")


class _ClientToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._md = token_metadata(token)

    def _with_token(self, details: Any) -> Any:
        md = tuple(details.metadata or ()) + self._md
        return details._replace(metadata=md) if hasattr(details, "_replace") else _Details(details, md)

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, base: Any, metadata: Any) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class _AioClientToken(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._md = token_metadata(token)

    def _with_token(self, details: Any) -> Any:
        md = grpc.aio.Metadata(*(tuple(details.metadata or ()) + self._md))
        return details._replace(metadata=md)

    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._with_token(details), request)

    async def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._with_token(details), request)

    async def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._with_token(details), request_iterator)

    async def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._with_token(details), request_iterator)


def channel(address: str, token: str | None) -> grpc.Channel:
    """A blocking channel that sends the cluster token on every call, over
    TLS when this process has TLS files and the address is not a unix socket."""
    files = tls.active() if tls.is_network_address(address) else None
    ch = (grpc.secure_channel(address, files.channel_credentials(), options=CHANNEL_OPTIONS) if files
          else grpc.insecure_channel(address, options=CHANNEL_OPTIONS))
    return grpc.intercept_channel(ch, _ClientToken(token)) if token else ch


def aio_channel(address: str, token: str | None,
                extra_options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """An asyncio channel that sends the cluster token on every unary call
    (TLS as for `channel`). Streaming calls pass `metadata=token_metadata(token)`
    themselves: on them grpc.aio's client interceptors lose the metadata
    (UNAUTHENTICATED) or fail the call (INTERNAL, stream-stream fed by an
    async generator). `extra_options` go after CHANNEL_OPTIONS."""
    interceptors = [_AioClientToken(token)] if token else None
    options = [*CHANNEL_OPTIONS, *extra_options]
    files = tls.active() if tls.is_network_address(address) else None
    if files:
        return grpc.aio.secure_channel(address, files.channel_credentials(), options=options,
                                       interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)


_STATUS: dict[type[errors.EmberServiceError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def status_of(error: errors.EmberServiceError) -> grpc.StatusCode:
    """The status code a handler answers `error` with."""
    return next(code for kind, code in _STATUS.items() if isinstance(error, kind))


def map_errors(handler: F) -> F:
    """Answer the project's own errors (`ember_common.errors`) with their
    status code and message; anything else is a bug of ours, not the
    caller's: INTERNAL, logged with its traceback."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await handler(self, request, context)
        except errors.EmberServiceError as e:
            await context.abort(status_of(e), str(e))
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as e:
            log.exception("%s failed", handler.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    return wrapper  # type: ignore[return-value]
