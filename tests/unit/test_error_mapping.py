"""Handlers answer the project's own errors with their status code and
anything else, a bug of ours, with INTERNAL (logged), never as the caller's fault."""

import asyncio
import logging

import grpc
import grpc.aio
import pytest

from ember_common import errors
from ember_common.rpc import map_errors


class _Context:
    """What a handler's context does on abort: remember the status, then end the call."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


class _Servicer:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    @map_errors
    async def Call(self, request: str, context: _Context) -> str:
        if self.error is not None:
            raise self.error
        return request.upper()


def _call(error: BaseException | None) -> tuple[str | None, _Context]:
    context = _Context()
    try:
        return asyncio.run(_Servicer(error).Call("hi", context)), context
    except grpc.aio.AbortError:
        return None, context


@pytest.mark.parametrize("error, code", [
    (errors.InvalidArgument("bad id"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ProtocolError("bad frame"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound("no such actor"), grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists("taken"), grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition("not now"), grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ResourceExhausted("full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable("etcd away"), grpc.StatusCode.UNAVAILABLE),
])
def test_own_errors_keep_their_code_and_message(error, code):
    result, context = _call(error)
    assert result is None and context.aborted == (code, str(error))


@pytest.mark.parametrize("bug", [ValueError("int('x')"), KeyError("k"), FileExistsError("f"), TypeError("t")])
def test_any_other_exception_is_internal_and_logged(bug, caplog):
    with caplog.at_level(logging.ERROR, logger="ember_common.rpc"):
        result, context = _call(bug)
    assert result is None
    code, details = context.aborted
    assert code == grpc.StatusCode.INTERNAL and details.startswith(type(bug).__name__)
    assert any(r.exc_info and r.exc_info[1] is bug for r in caplog.records), "the traceback is logged"


def test_a_call_that_succeeds_is_answered():
    result, context = _call(None)
    assert result == "HI" and context.aborted is None
