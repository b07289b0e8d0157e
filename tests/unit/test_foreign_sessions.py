"""Sessions of clients in other languages (services/raylet/foreign_sessions.py)
on a real node manager, without sockets: workers are outboxes, the GCS a
recorder of the calls a session makes."""

import asyncio
import json

import msgpack
import pytest
from ember.v1 import client_api_pb2 as api
from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember_common import ids, neutral_values
from ember_common.errors import InvalidArgument, NotFound
from ember_common.object_layout import Kind, SerializedObject
from ember_raylet.foreign_sessions import ForeignSessions, GetTimeout, Limits
from ember_raylet.store_reads import StoreReads
from tests.unit.test_node_manager import executed, make


class RecordingGcs:
    def __init__(self):
        self.calls = []
        self.jobs = 0

    async def AddJob(self, request, timeout=None):
        self.calls.append(("AddJob", request))
        self.jobs += 1
        return gcs_pb2.AddJobReply(job=gcs_pb2.JobInfo(job_id=ids.job_id_from_int(self.jobs)))

    async def KvPut(self, request, timeout=None):
        self.calls.append(("KvPut", request))
        return gcs_pb2.KvPutReply()

    async def FinishJob(self, request, timeout=None):
        self.calls.append(("FinishJob", request))
        return gcs_pb2.FinishJobReply()


def _sessions(nm, gcs):
    tasks = set()
    return ForeignSessions(nm, lambda: gcs, StoreReads(lambda: None, lambda: None, "/nonexistent"),
                           Limits(max_value_bytes=1 << 20, max_args_bytes=1 << 16, chunk_bytes=4, inline_threshold=1 << 20),
                           lambda coro: tasks.add(asyncio.ensure_future(coro)))


def _finish(nm, worker, spec, so, is_error=False):
    value = common_pb2.ObjectValue(object_id=ids.object_id_for(spec.task_id, 1), data=so.to_bytes(), is_error=is_error)
    nm.handle_batch(worker, raylet_pb2.ClientBatch(results=[raylet_pb2.TaskResult(task_id=spec.task_id, returns=[value])]))


async def _collect(replies):
    return [r async for r in replies]


def test_a_session_is_a_job_with_its_code_search_path_and_ends_it():
    async def run():
        nm, _, _, _ = make(cpus=1)
        gcs = RecordingGcs()
        sessions = _sessions(nm, gcs)
        session = await sessions.open(api.ConnectRequest(namespace="ns", code_search_path=["/code"], language="node"))
        (_, kv) = gcs.calls[1]
        assert json.loads(kv.value)["code_search_path"] == ["/code"] and json.loads(kv.value)["namespace"] == "ns"
        assert session.client.client_id in nm.sessions and sessions.find(session.session_id) is session
        sessions.close(session)
        await asyncio.sleep(0)
        assert session.client.client_id not in nm.sessions and gcs.calls[-1][0] == "FinishJob"
        with pytest.raises(NotFound, match="Connect first"):
            sessions.find(session.session_id)

    asyncio.run(run())


def test_a_call_runs_neutral_and_its_value_streams_in_chunks():
    async def run():
        nm, _, (worker,), _ = make(cpus=1)
        sessions = _sessions(nm, RecordingGcs())
        session = await sessions.open(api.ConnectRequest())
        (refs,) = sessions.submit(session, [api.Call(function="m:f", args=msgpack.packb([1]))])
        (execute,) = executed(worker)
        assert execute.spec.neutral and execute.spec.import_name == "m:f"
        document = msgpack.packb({"answer": "forty-two"})
        _finish(nm, worker, execute.spec, neutral_values.to_object(document, []))
        replies = await _collect(await sessions.get(session, refs, timeout=1))
        assert all(len(r.data) <= 4 for r in replies) and replies[-1].last
        assert b"".join(r.data for r in replies) == document

    asyncio.run(run())


def test_an_error_value_is_a_typed_error():
    async def run():
        nm, _, (worker,), _ = make(cpus=1)
        sessions = _sessions(nm, RecordingGcs())
        session = await sessions.open(api.ConnectRequest())
        (refs,) = sessions.submit(session, [api.Call(function="m:f")])
        (execute,) = executed(worker)
        body = json.dumps({"type": "ValueError", "message": "no", "traceback": "Traceback...", "function": "f"})
        _finish(nm, worker, execute.spec, SerializedObject(Kind.CODE_ERROR, body.encode(), [], []), is_error=True)
        (reply,) = await _collect(await sessions.get(session, refs, timeout=1))
        assert reply.error.kind == api.Error.CODE and reply.error.type == "ValueError"
        assert reply.error.traceback == "Traceback..."

    asyncio.run(run())


def test_wait_times_out_with_what_is_ready_and_get_says_how_many_were_late():
    async def run():
        nm, _, (worker,), _ = make(cpus=1)
        sessions = _sessions(nm, RecordingGcs())
        session = await sessions.open(api.ConnectRequest())
        put = await sessions.put(session, msgpack.packb([1, 2]))
        (pending,) = sessions.submit(session, [api.Call(function="m:slow")])
        ready = await sessions.wait(session, [put, *pending], 2, 0.05, fetch_local=True)
        assert ready == {put}
        with pytest.raises(GetTimeout, match="1 of 2 objects were not ready within 0.05s"):
            await sessions.get(session, [put, *pending], 0.05)

    asyncio.run(run())


def test_released_refs_are_freed_and_refused():
    async def run():
        nm, _, _, _ = make(cpus=1)
        sessions = _sessions(nm, RecordingGcs())
        session = await sessions.open(api.ConnectRequest())
        ref = await sessions.put(session, msgpack.packb("x"))
        assert ref in nm.objects
        sessions.release(session, [ref, ref])
        assert ref not in nm.objects and ref not in session.values
        with pytest.raises(NotFound, match="not held by this session"):
            await sessions.get(session, [ref], 1)
        with pytest.raises(InvalidArgument, match="not a neutral document"):
            await sessions.put(session, b"\xc1")

    asyncio.run(run())


def test_closing_frees_what_the_session_held():
    async def run():
        nm, _, _, _ = make(cpus=1)
        sessions = _sessions(nm, RecordingGcs())
        session = await sessions.open(api.ConnectRequest())
        ref = await sessions.put(session, msgpack.packb(b"bytes"))
        inner = await sessions.put(session, msgpack.packb([msgpack.ExtType(1, ref)]))
        sessions.release(session, [ref])
        assert ref in nm.objects  # pinned by the value holding it
        sessions.close(session)
        assert ref not in nm.objects and inner not in nm.objects

    asyncio.run(run())
