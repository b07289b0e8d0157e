"""Serving one client session, whatever carries it: the gRPC Connect stream
or the local socket. A transport supplies `read` (None at end of stream) and
`write`; this runs the session against the NodeManager and says how it
ended."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import grpc
from ember.v1 import raylet_pb2

from ember_common import ids
from ember_common.errors import ProtocolError
from ember_raylet.client_session import DRIVER, RAYLET, WORKER, ClientSession
from ember_raylet.node_manager import NodeManager

log = logging.getLogger(__name__)

Read = Callable[[], Awaitable[raylet_pb2.ClientBatch | None]]
Write = Callable[[raylet_pb2.RayletBatch], Awaitable[None]]
Failure = tuple[grpc.StatusCode, str]


def open_session(nm: NodeManager, registered: raylet_pb2.ClientRegistered, first: raylet_pb2.ClientBatch) -> ClientSession:
    if not first.HasField("register"):
        raise ProtocolError("the first message of a session must carry `register`")
    reg = first.register
    if reg.kind == WORKER:
        if len(reg.worker_id) != ids.UNIQUE_ID_SIZE:
            raise ProtocolError(f"worker_id must be {ids.UNIQUE_ID_SIZE} bytes")
    elif reg.kind == DRIVER:
        if reg.job_id and len(reg.job_id) != ids.JOB_ID_SIZE:
            raise ProtocolError(f"job_id must be {ids.JOB_ID_SIZE} bytes")
    elif reg.kind == RAYLET:
        if len(reg.node_id) != ids.UNIQUE_ID_SIZE:
            raise ProtocolError(f"node_id must be {ids.UNIQUE_ID_SIZE} bytes")
    else:
        raise ProtocolError("register.kind must be DRIVER, WORKER or RAYLET")
    session = ClientSession(ids.new_unique_id(), reg.kind, reg.job_id, reg.worker_id, reg.pid, reg.node_id)
    session.outbox.registered.CopyFrom(registered)
    session.outbox.registered.client_id = session.client_id
    session.touch()
    nm.connect(session)
    nm.handle_batch(session, first)
    return session


async def serve_session(nm: NodeManager, registered: raylet_pb2.ClientRegistered, read: Read, write: Write) -> Failure | None:
    try:
        first = await read()  # ProtocolError if it does not parse
        if first is None:
            return None
        session = open_session(nm, registered, first)
    except ProtocolError as e:
        return grpc.StatusCode.INVALID_ARGUMENT, str(e)
    failure: list[Failure] = []
    reader = asyncio.create_task(_read_batches(nm, session, read, failure))
    try:
        while (batch := await session.next_batch()) is not None:
            await write(batch)
    except (ConnectionError, grpc.RpcError, asyncio.IncompleteReadError):
        pass  # the client went away
    finally:
        reader.cancel()
        nm.disconnect(session)
    return failure[0] if failure else None


async def _read_batches(nm: NodeManager, session: ClientSession, read: Read, failure: list[Failure]) -> None:
    try:
        while (batch := await read()) is not None:
            nm.handle_batch(session, batch)
    except ProtocolError as e:
        failure.append((grpc.StatusCode.INVALID_ARGUMENT, str(e)))
    except asyncio.CancelledError:
        raise
    except (ConnectionError, grpc.RpcError, asyncio.IncompleteReadError):
        pass  # the client went away
    except Exception as e:
        log.exception("client %s: batch failed", session.client_id.hex()[:8])
        failure.append((grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"))
    finally:
        session.close()
