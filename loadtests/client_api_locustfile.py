"""Load test of the client API (proto/ember/v1/client_api.proto) the way a
client in any language uses it: the generated gRPC stubs, values as
MessagePack documents, against a running cluster's raylet.

    ember start --head --num-cpus 2
    locust -f loadtests/client_api_locustfile.py --headless -u 10 -r 10 -t 30s --only-summary
    ember stop

ClientApiUser: a session (Connect, kept open) per user, then Python code
called by name (stdlib functions and classes every worker imports, so no
code search path is needed): a task submitted then got (Submit, Get,
Release), a sync call (Run with release), a value put and read back (Put,
Get, Release) and calls to the user's actor (CreateActor once, then Submit
of its method, Get, Release). Each call is timed and reported as
"ClientApi.<Method>"; a value that is not what it must be is a failure of
kind "check".

Targets and safety as loadtests/locustfile.py (whose bounds and loopback
check this file shares): the raylet's TCP address from the GCS node list,
or EMBER_CLIENT_API_ADDRESS.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator

import gevent
import grpc
import msgpack
from locust import User, between, events, task

# (importing it sets up gevent-cooperative gRPC, the run's bounds and the loopback check)
import locustfile
from ember.v1 import client_api_pb2 as api
from ember.v1 import client_api_pb2_grpc, gcs_pb2
from ember_common import rpc
from ember_common.gcs_client import GcsClient

PUT_SIZE = 1024


def _client_api_address() -> str:
    address = os.environ.get("EMBER_CLIENT_API_ADDRESS")
    if address is None:
        targets = locustfile.targets()
        gcs = GcsClient(targets.gcs, targets.token)
        try:
            nodes = gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=locustfile.CALL_TIMEOUT_S).nodes
        finally:
            gcs.close()
        node = next((n for n in nodes if n.alive and n.is_head), None) or next((n for n in nodes if n.alive), None)
        if node is None:
            raise SystemExit(f"the cluster at {targets.gcs} has no live node")
        address = f"{node.node_address}:{node.raylet_port}"
    return locustfile.loopback_only(address)


def _report(name: str, start: float, size: int, error: BaseException | None) -> None:
    events.request.fire(request_type="grpc", name=f"ClientApi.{name}", response_time=(time.perf_counter() - start) * 1000,
                        response_length=size, response=None, exception=error, context={})


def _check(name: str, ok: bool, what: str) -> None:
    if not ok:
        events.request.fire(request_type="check", name=name, response_time=0, response_length=0,
                            exception=AssertionError(what), context={})


class ClientApiUser(User):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        self.channel = rpc.channel(_client_api_address(), locustfile.targets().token)
        self.stub = client_api_pb2_grpc.ClientApiStub(self.channel)
        self.session = b""
        start = time.perf_counter()
        try:
            self.events = self.stub.Connect(api.ConnectRequest(language="locust", pid=os.getpid()))
            self.session = next(self.events).connected.session_id
            _report("Connect", start, 0, None)
        except grpc.RpcError as e:
            _report("Connect", start, 0, e)
            return
        self.reader = gevent.spawn(self._drain_events)  # (warnings and task output; the session lives with it)
        self.actor = self._unary("CreateActor", api.CreateActorRequest(
            session_id=self.session, class_name="collections:Counter", args=msgpack.packb([])))
        self.counted = 0

    def _drain_events(self) -> None:
        try:
            for _ in self.events:
                pass
        except grpc.RpcError:
            pass  # (cancelled at stop)

    def _unary(self, method: str, request: Any) -> Any:
        start = time.perf_counter()
        try:
            reply = getattr(self.stub, method)(request, timeout=locustfile.CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            _report(method, start, 0, e)
            return None
        _report(method, start, reply.ByteSize(), None)
        return reply

    def _values(self, method: str, open_stream: Callable[[], Iterator[api.GetReply]], count: int) -> list | None:
        """A Get's or Run's values (an error value counts as the call failing)."""
        start = time.perf_counter()
        pieces: list[list[bytes]] = [[] for _ in range(count)]
        size = 0
        try:
            for reply in open_stream():
                if reply.HasField("error"):
                    raise RuntimeError(f"{reply.error.type}: {reply.error.message}")
                pieces[reply.index].append(reply.data)
                size += len(reply.data)
        except (grpc.RpcError, RuntimeError) as e:
            _report(method, start, size, e)
            return None
        _report(method, start, size, None)
        return [msgpack.unpackb(b"".join(p)) for p in pieces]

    def _get(self, refs: list[bytes]) -> list | None:
        request = api.GetRequest(session_id=self.session, object_ids=refs, timeout_s=locustfile.CALL_TIMEOUT_S)
        return self._values("Get", lambda: self.stub.Get(request, timeout=locustfile.CALL_TIMEOUT_S), len(refs))

    def _release(self, refs: list[bytes]) -> None:
        self._unary("Release", api.ReleaseRequest(session_id=self.session, object_ids=refs))

    @task(3)
    def task_submit_get(self) -> None:
        n = int.from_bytes(os.urandom(2), "big")
        reply = self._unary("Submit", api.SubmitRequest(session_id=self.session, calls=[
            api.Call(function="operator:add", args=msgpack.packb([n, 1]))]))
        if reply is None:
            return
        refs = list(reply.refs[0].object_ids)
        got = self._get(refs)
        if got is not None:
            _check("ClientApi.Get value", got == [n + 1], f"operator:add({n}, 1) gave {got}")
        self._release(refs)

    @task(3)
    def sync_call(self) -> None:
        n = int.from_bytes(os.urandom(2), "big")
        request = api.RunRequest(session_id=self.session, calls=[api.Call(function="operator:mul", args=msgpack.packb([n, 3]))],
                                 timeout_s=locustfile.CALL_TIMEOUT_S, release=True)
        got = self._values("Run", lambda: self.stub.Run(request, timeout=locustfile.CALL_TIMEOUT_S), 1)
        if got is not None:
            _check("ClientApi.Run value", got == [n * 3], f"operator:mul({n}, 3) gave {got}")

    @task(2)
    def put_get(self) -> None:
        value = os.urandom(PUT_SIZE)
        start = time.perf_counter()
        try:
            reply = self.stub.Put(iter([api.PutRequest(session_id=self.session, data=msgpack.packb(value))]),
                                  timeout=locustfile.CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            _report("Put", start, 0, e)
            return
        _report("Put", start, 0, None)
        got = self._get([reply.object_id])
        if got is not None:
            _check("ClientApi.Get put value", got == [value], "Get did not return what Put stored")
        self._release([reply.object_id])

    @task(2)
    def actor_call(self) -> None:
        if self.actor is None:
            return
        reply = self._unary("Submit", api.SubmitRequest(session_id=self.session, calls=[api.Call(
            method=api.ActorMethod(actor_id=self.actor.actor.actor_id, method="update"),
            args=msgpack.packb([["x"]]))]))
        if reply is None:
            return
        self.counted += 1
        refs = list(reply.refs[0].object_ids)
        if self._get(refs) == [None]:
            total = self._values("Run", lambda: self.stub.Run(api.RunRequest(
                session_id=self.session, release=True, timeout_s=locustfile.CALL_TIMEOUT_S,
                calls=[api.Call(method=api.ActorMethod(actor_id=self.actor.actor.actor_id, method="total"))]),
                timeout=locustfile.CALL_TIMEOUT_S), 1)
            if total is not None:  # (one caller's calls run in order: every update before this is counted)
                _check("ClientApi.Run actor state", total == [self.counted], f"total {total}, {self.counted} updates")
        self._release(refs)

    def on_stop(self) -> None:
        if self.session:
            self.events.cancel()  # the session ends: its refs go, its actor ends
        self.channel.close()
