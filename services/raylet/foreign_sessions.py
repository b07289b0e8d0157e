"""Sessions of clients in other languages (the ClientApi service,
proto/ember/v1/client_api.proto), seen from the raylet.

Each session is a driver's ClientSession on the node manager, so its tasks,
refs, actors and their ends follow the same rules as a Python driver's: the
node manager pushes the values of its tasks' returns (and of what it
subscribes to) into the session's outbox; here they are kept per object
until the client releases the ref, and the RPCs waiting on them are woken.
Values leave as neutral documents in chunks (`ember_common.neutral_values`);
objects that hold a Python-only value are refused by name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator

import grpc
from ember.v1 import client_api_pb2, common_pb2, gcs_pb2, raylet_pb2

from ember_common import ids, neutral_values
from ember_common.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted,
                                 Unavailable)
from ember_common.job_settings import JobSettings, kv_key, KV_NAMESPACE
from ember_common.object_layout import Failure, Kind, SerializedObject, parse
from ember_raylet import call_specs
from ember_raylet.client_session import DRIVER, ClientSession
from ember_raylet.node_manager import NodeManager
from ember_raylet.store_reads import StoreReads

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Limits:
    max_value_bytes: int
    max_args_bytes: int
    chunk_bytes: int
    inline_threshold: int


class ForeignSession:
    """One client's session: the node manager's view of it (`client`), the
    ready values of the objects it holds, and its events for the Connect stream."""

    def __init__(self, client: ClientSession, namespace: str, language: str) -> None:
        self.client = client
        self.session_id = client.client_id
        self.namespace = namespace
        self.language = language
        self.values: dict[bytes, common_pb2.ObjectValue] = {}
        self.fetching: set[bytes] = set()
        self.events: asyncio.Queue[client_api_pb2.SessionEvent] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[list[bytes]], None]] = []
        client.notify = self._take_outbox

    def listen(self, listener: Callable[[list[bytes]], None]) -> Callable[[], None]:
        """Call `listener` with the ids of the values that arrive from now on;
        returns what stops it. (A getter that streams values as they come
        looks at each arrival once, not at everything it waits for each time.)"""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def ended(self) -> None:
        """The session closed: wake what waits on it (it finds the session gone)."""
        self._changed.set()
        for listener in list(self._listeners):
            listener([])

    def _take_outbox(self) -> None:
        """The node manager added to our outbox (synchronously, inside its
        logic): keep the values, queue the events, wake the waiting RPCs."""
        batch = self.client.take()
        if batch is None:
            return
        arrived = []
        for value in batch.ready:
            if value.object_id in self.client.held:  # (released meanwhile: not kept)
                self.values[value.object_id] = value
                self.fetching.discard(value.object_id)
                arrived.append(value.object_id)
        if arrived:
            for listener in list(self._listeners):
                listener(arrived)
        for warning in batch.warnings:
            self.events.put_nowait(client_api_pb2.SessionEvent(warning=warning))
        for lines in batch.logs:
            self.events.put_nowait(client_api_pb2.SessionEvent(output=client_api_pb2.TaskOutput(
                pid=lines.pid, task_name=lines.task_name, is_stderr=lines.is_stderr, lines=lines.lines)))
        self._changed.set()

    async def changed(self, timeout: float | None) -> None:
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class ForeignSessions:
    """Every session of this raylet's ClientApi, and what their RPCs do."""

    def __init__(self, nm: NodeManager, gcs: Callable[[], Any], store_reads: StoreReads,
                 limits: Limits, spawn: Callable[[Awaitable[Any]], Any]) -> None:
        self._nm = nm
        self.node_id = nm.node_id
        self._gcs = gcs
        self._store_reads = store_reads
        self.limits = limits
        self._spawn = spawn
        self.sessions: dict[bytes, ForeignSession] = {}

    # ---- sessions --------------------------------------------------------

    async def open(self, request: client_api_pb2.ConnectRequest) -> ForeignSession:
        if request.namespace and ("\0" in request.namespace or len(request.namespace) > 1000):
            raise InvalidArgument("a namespace is at most 1000 characters, without NUL")
        if len(request.language) > 100:
            raise InvalidArgument(f"language is at most 100 characters, got {len(request.language)}")
        if len(request.code_search_path) > 100:
            raise InvalidArgument(f"code_search_path has at most 100 entries, got {len(request.code_search_path)}")
        for path in request.code_search_path:
            if not path or "\0" in path or len(path) > 4096:
                raise InvalidArgument(f"code_search_path entries must be paths (1..4096 characters, no NUL), got "
                                      f"{path[:100]!r}")
        namespace = request.namespace or f"anonymous-{ids.new_unique_id().hex()[:12]}"
        settings = JobSettings(namespace=namespace, code_search_path=tuple(request.code_search_path))
        gcs = self._gcs()
        job = (await _from_gcs(gcs.AddJob(gcs_pb2.AddJobRequest(
            driver_pid=request.pid, namespace=namespace, entrypoint=f"{request.language or 'client'} client",
            request_id=ids.new_unique_id(), metadata={"language": request.language}), timeout=30))).job
        await _from_gcs(gcs.KvPut(gcs_pb2.KvPutRequest(namespace=KV_NAMESPACE, key=kv_key(job.job_id),
                                                       value=settings.to_json(), overwrite=True), timeout=30))
        client = ClientSession(ids.new_unique_id(), DRIVER, job.job_id, pid=request.pid)
        session = ForeignSession(client, namespace, request.language)
        self._nm.connect(client)
        self.sessions[session.session_id] = session
        return session

    def close(self, session: ForeignSession) -> None:
        if self.sessions.pop(session.session_id, None) is None:
            return
        session.ended()
        self._nm.disconnect(session.client)
        self._spawn(self._finish_job(session.client.job_id))

    async def _finish_job(self, job_id: bytes) -> None:
        try:
            await self._gcs().FinishJob(gcs_pb2.FinishJobRequest(job_id=job_id), timeout=10)
        except grpc.aio.AioRpcError as e:
            log.warning("finishing job %s failed: %s", job_id.hex(), e.code())

    def find(self, session_id: bytes) -> ForeignSession:
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFound(f"no open session {session_id.hex() or '(empty id)'} on this node: Connect first and "
                           "keep its stream open (a session ends with its stream)")
        return session

    def _apply(self, session: ForeignSession, batch: raylet_pb2.ClientBatch) -> None:
        self._nm.handle_batch(session.client, batch)

    def _check_held(self, session: ForeignSession, object_ids: Iterable[bytes], what: str) -> None:
        for object_id in object_ids:
            if len(object_id) != ids.OBJECT_ID_SIZE:
                raise InvalidArgument(f"{what}: object ids are {ids.OBJECT_ID_SIZE} bytes, got {len(object_id)}")
            if object_id not in session.client.held:
                raise NotFound(f"{what}: ref {object_id.hex()} is not held by this session (it was released, "
                               "or never given to it)")

    # ---- tasks and actors ------------------------------------------------------

    def submit(self, session: ForeignSession, calls: Iterable[client_api_pb2.Call]) -> list[list[bytes]]:
        built = []
        for index, call in enumerate(calls):
            b = call_specs.task_call(call, session.client.job_id, self.limits.max_args_bytes, index)
            self._check_held(session, b.refs, f"call {index}")
            built.append(b.spec)
        self._apply(session, raylet_pb2.ClientBatch(submit=built))
        return [[ids.object_id_for(s.task_id, i + 1) for i in range(s.num_returns)] for s in built]

    async def create_actor(self, session: ForeignSession,
                           request: client_api_pb2.CreateActorRequest) -> client_api_pb2.CreateActorReply:
        b = call_specs.actor_creation(request, session.client.job_id, session.namespace, self.limits.max_args_bytes)
        self._check_held(session, b.refs, f"actor {request.class_name!r}")
        creation = b.spec.actor_creation
        ready_id = ids.object_id_for(b.spec.task_id, 1)
        if creation.name:
            info = gcs_pb2.ActorInfo(
                actor_id=creation.actor_id, job_id=session.client.job_id, class_name=request.class_name,
                name=creation.name, namespace=creation.namespace, max_restarts=creation.max_restarts,
                detached=creation.detached, import_name=request.class_name, ready_object_id=ready_id)
            reply = await _from_gcs(self._gcs().RegisterActor(gcs_pb2.RegisterActorRequest(actor=info), timeout=30))
            if not reply.registered:
                if request.options.get_if_exists:
                    return client_api_pb2.CreateActorReply(actor=self._actor_ref(session, reply.existing),
                                                           existed=True)
                raise AlreadyExists(f"an actor named {creation.name!r} already exists in namespace "
                                    f"{creation.namespace!r}; set get_if_exists or look it up (LookupActor)")
        self._apply(session, raylet_pb2.ClientBatch(submit=[b.spec]))
        return client_api_pb2.CreateActorReply(actor=client_api_pb2.ActorRef(
            actor_id=creation.actor_id, ready_object_id=ready_id, class_name=request.class_name,
            name=creation.name, namespace=creation.namespace))

    def _actor_ref(self, session: ForeignSession, info: gcs_pb2.ActorInfo) -> client_api_pb2.ActorRef:
        """A ref to a named actor found in the GCS; the session holds its ready object if this node knows it."""
        ready_id = info.ready_object_id
        if ready_id:
            self._apply(session, raylet_pb2.ClientBatch(add_refs=[ready_id]))
            if ready_id not in session.client.held:
                ready_id = b""  # owned on another node: not held from here
        return client_api_pb2.ActorRef(actor_id=info.actor_id, ready_object_id=ready_id,
                                       class_name=info.import_name or info.class_name, name=info.name,
                                       namespace=info.namespace)

    async def lookup_actor(self, session: ForeignSession, name: str, namespace: str | None) -> client_api_pb2.ActorRef:
        if not name:
            raise InvalidArgument("an actor name must be a non-empty string")
        ns = session.namespace if namespace is None else namespace
        reply = await _from_gcs(self._gcs().GetActor(gcs_pb2.GetActorRequest(name=name, namespace=ns), timeout=30))
        if not reply.found:
            raise NotFound(f"no live actor named {name!r} in namespace {ns!r}")
        return self._actor_ref(session, reply.actor)

    def kill(self, session: ForeignSession, actor_id: bytes, no_restart: bool) -> None:
        if len(actor_id) != ids.UNIQUE_ID_SIZE:
            raise InvalidArgument(f"actor_id must be {ids.UNIQUE_ID_SIZE} bytes, got {len(actor_id)}")
        self._apply(session, raylet_pb2.ClientBatch(
            kill_actors=[raylet_pb2.KillActor(actor_id=actor_id, no_restart=no_restart)]))

    # ---- objects ----------------------------------------------------------------

    async def put(self, session: ForeignSession, document: bytes) -> bytes:
        try:
            value = neutral_values.decode(document)
        except neutral_values.NeutralDecodeError as e:
            raise InvalidArgument(f"the value is not a neutral document: {e}") from None
        nested = neutral_values.refs_in(value)
        self._check_held(session, nested, "the value")
        so = neutral_values.to_object(document, nested)
        object_id = ids.new_put_id()
        out = common_pb2.ObjectValue(object_id=object_id, nested_ids=so.nested_ids)
        if so.total_size < self.limits.inline_threshold:
            out.data = so.to_bytes()
        else:
            await self._write_stored(object_id, so)
            out.stored_size = so.total_size
        self._apply(session, raylet_pb2.ClientBatch(puts=[out]))
        return object_id

    async def _write_stored(self, object_id: bytes, so: SerializedObject) -> None:
        await self._store_reads.write(object_id, so)

    def release(self, session: ForeignSession, object_ids: Iterable[bytes]) -> None:
        drop = [i for i in object_ids if i in session.client.held]
        for object_id in drop:
            session.values.pop(object_id, None)
        if drop:
            self._apply(session, raylet_pb2.ClientBatch(remove_refs=drop))

    async def wait(self, session: ForeignSession, object_ids: list[bytes], num: int, timeout: float | None,
                   fetch_local: bool) -> set[bytes]:
        """Until `num` of the objects are ready (readable on this node if
        `fetch_local`) or the timeout passes: those that are."""
        self._check_held(session, object_ids, "wait")
        if num > len(object_ids):
            raise InvalidArgument(f"num_returns ({num}) is more than the {len(object_ids)} refs given")
        deadline = None if timeout is None else time.monotonic() + timeout
        subscribe = [i for i in dict.fromkeys(object_ids) if i not in session.values]
        if subscribe:
            self._apply(session, raylet_pb2.ClientBatch(subscribe=subscribe))
        while True:
            ready = {i for i in object_ids if i in session.values and (not fetch_local or self._local(session, i))}
            if len(ready) >= num:
                return ready
            if session.session_id not in self.sessions:
                raise NotFound("the session ended while waiting")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return ready
            await session.changed(remaining)

    def _local(self, session: ForeignSession, object_id: bytes) -> bool:
        """Whether the value can be read here; if it lies in another node's
        store, ask for a copy (once)."""
        value = session.values[object_id]
        if value.WhichOneof("location") != "stored_size" or value.node_id in (b"", self._nm.node_id) or value.is_error:
            return True
        if object_id not in session.fetching:
            session.fetching.add(object_id)
            self._apply(session, raylet_pb2.ClientBatch(fetch=[object_id]))
        return False

    async def get(self, session: ForeignSession, object_ids: list[bytes],
                  timeout: float | None) -> AsyncIterator[client_api_pb2.GetReply]:
        ready = await self.wait(session, object_ids, len(set(object_ids)), timeout, fetch_local=True)
        missing = [i for i in object_ids if i not in ready]
        if missing:
            raise GetTimeout(f"{len(set(missing))} of {len(set(object_ids))} objects were not ready within "
                             f"{timeout}s (first: {missing[0].hex()})")
        values = [session.values[i] for i in object_ids]
        return self._stream(session, values)

    async def get_as_ready(self, session: ForeignSession, object_ids: list[bytes],
                           timeout: float | None) -> AsyncIterator[list[client_api_pb2.GetReply]]:
        """The values of the objects as they become ready (readable here), in
        batches of replies of about chunk_bytes (a larger value's pieces one a
        batch); GetTimeout if not all were ready within the timeout."""
        self._check_held(session, object_ids, "get")
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting: dict[bytes, list[int]] = {}
        for index, object_id in enumerate(object_ids):
            waiting.setdefault(object_id, []).append(index)
        arrived = list(waiting)  # (first look at every one: some may be here already)
        woken = asyncio.Event()

        def on_arrival(object_ids: list[bytes]) -> None:
            arrived.extend(object_ids)
            woken.set()

        stop = session.listen(on_arrival)
        try:
            subscribe = [i for i in waiting if i not in session.values]
            if subscribe:
                self._apply(session, raylet_pb2.ClientBatch(subscribe=subscribe))
            while waiting:
                looked, arrived[:] = arrived[:], []
                ready = []
                for object_id in dict.fromkeys(looked):
                    if object_id in waiting and object_id in session.values and self._local(session, object_id):
                        value = session.values[object_id]
                        ready.extend((index, value) for index in waiting.pop(object_id))
                if ready:
                    async for batch in self._batches(session, ready):
                        yield batch
                    continue
                if arrived:
                    continue
                if session.session_id not in self.sessions:
                    raise NotFound("the session ended while waiting")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise GetTimeout(f"{len(waiting)} of {len(set(object_ids))} objects were not ready within "
                                     f"{timeout}s (first: {next(iter(waiting)).hex()})")
                woken.clear()
                try:
                    await asyncio.wait_for(woken.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
        finally:
            stop()

    async def _batches(self, session: ForeignSession, values: list[tuple[int, common_pb2.ObjectValue]]
                       ) -> AsyncIterator[list[client_api_pb2.GetReply]]:
        """The replies of these values, packed into batches of about
        chunk_bytes, each made when the one before is taken (so a large
        value's first pieces go out while its later ones are made)."""
        batch: list[client_api_pb2.GetReply] = []
        size = 0
        for index, value in values:
            for reply in await self._replies(session, index, value):
                if batch and size + len(reply.data) > self.limits.chunk_bytes:
                    yield batch
                    batch, size = [], 0
                batch.append(reply)
                size += len(reply.data) + 16
        if batch:
            yield batch

    async def run(self, session: ForeignSession, calls: Iterable[client_api_pb2.Call], timeout: float | None,
                  release: bool) -> AsyncIterator[client_api_pb2.GetReply]:
        """Submit the calls, then (once all are ready) their returns' values;
        with `release` the session lets the returns go after, however it ends."""
        refs = self.submit(session, calls)
        returns = [i for r in refs for i in r]
        if not release:
            return await self.get(session, returns, timeout)
        try:
            return self.released_after(session, await self.get(session, returns, timeout), returns)
        except BaseException:
            self.release(session, returns)
            raise

    async def released_after(self, session: ForeignSession, replies: AsyncIterator[client_api_pb2.GetReply],
                             object_ids: list[bytes]) -> AsyncIterator[client_api_pb2.GetReply]:
        """The replies, then the session stops holding the objects (also when
        the stream fails or the client goes away): a Run with `release`."""
        try:
            async for reply in replies:
                yield reply
        finally:
            if session.session_id in self.sessions:
                self.release(session, object_ids)

    async def _stream(self, session: ForeignSession,
                      values: list[common_pb2.ObjectValue]) -> AsyncIterator[client_api_pb2.GetReply]:
        for index, value in enumerate(values):
            for reply in await self._replies(session, index, value):
                yield reply

    async def _replies(self, session: ForeignSession, index: int,
                       value: common_pb2.ObjectValue) -> Iterator[client_api_pb2.GetReply]:
        """One value's replies: its pieces of at most chunk_bytes (each made
        when taken), or its error."""
        data = await self._read(value)
        if value.is_error:
            return iter([client_api_pb2.GetReply(index=index, last=True, error=error_of(data))])
        chunk = self.limits.chunk_bytes
        try:
            pieces = neutral_values.wire_chunks(data, chunk)
            first = next(pieces)
        except neutral_values.NotNeutralError as e:
            raise FailedPrecondition(f"object {value.object_id.hex()}: {e}; a client in another language reads "
                                     "the values it or other such clients put, and the results of the calls it "
                                     "makes") from None
        if value.nested_ids:  # refs inside a value handed out: the session holds them from now on
            self._apply(session, raylet_pb2.ClientBatch(add_refs=list(value.nested_ids)))
        return _with_last(index, itertools.chain([first], pieces))

    async def _read(self, value: common_pb2.ObjectValue) -> bytes:
        if value.WhichOneof("location") != "stored_size":
            return value.data
        return await self._store_reads.read(value.object_id)

    # ---- the cluster ----------------------------------------------------------------

    async def nodes(self) -> client_api_pb2.NodesReply:
        reply = await _from_gcs(self._gcs().GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=30))
        out = client_api_pb2.NodesReply()
        for n in reply.nodes:
            node = out.nodes.add(node_id=n.node_id, alive=n.alive, address=n.node_address, raylet_port=n.raylet_port,
                                 is_head=n.is_head)
            if n.alive:
                node.total.update(n.total.amounts)
                node.available.update(n.available.amounts)
            node.labels.update(n.labels)
        return out


async def _from_gcs(call: Awaitable[Any]) -> Any:
    """A GCS call on a client's behalf: its refusal is the client's bad input
    (INVALID_ARGUMENT, with the GCS's reason); anything else is UNAVAILABLE."""
    try:
        return await call
    except grpc.aio.AioRpcError as e:
        if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidArgument(e.details() or "refused by the GCS") from None
        raise Unavailable(f"the GCS did not answer ({e.code().name}: {e.details()}); retry later") from None


def _with_last(index: int, pieces: Iterator[memoryview | bytes]) -> Iterator[client_api_pb2.GetReply]:
    """The replies of one value's pieces, the final one marked `last`."""
    piece = next(pieces)
    for following in pieces:
        yield client_api_pb2.GetReply(index=index, data=bytes(piece))
        piece = following
    yield client_api_pb2.GetReply(index=index, data=bytes(piece), last=True)


class GetTimeout(Exception):
    """Not every object was ready in time: DEADLINE_EXCEEDED."""


def error_of(data: bytes | memoryview) -> client_api_pb2.Error:
    """The Error message of an error value, whatever its kind."""
    kind, inband, _ = parse(memoryview(data))
    if kind == Kind.SYSTEM_ERROR:
        failure = Failure.decode(inband)
        return client_api_pb2.Error(kind=client_api_pb2.Error.SYSTEM, type=failure.type.value,
                                    message=failure.message)
    if kind == Kind.CODE_ERROR:
        fields = json.loads(bytes(inband))
        return client_api_pb2.Error(kind=client_api_pb2.Error.CODE, type=str(fields.get("type", "")),
                                    message=str(fields.get("message", "")), traceback=str(fields.get("traceback", "")),
                                    function=str(fields.get("function", "")))
    # A pickled exception (a Python caller's call): only Python can read it.
    return client_api_pb2.Error(kind=client_api_pb2.Error.CODE, type="PythonError",
                                message="the call failed with a Python exception written for Python readers "
                                        "(the object was made by a Python caller)")
