"""Load tests against a running Ember cluster's services, over gRPC.

    ember start --head
    locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 30s --only-summary

Targets come from EMBER_GCS_ADDRESS / EMBER_RAYLET_ADDRESS /
EMBER_STORE_ADDRESS and EMBER_AUTH_TOKEN, or else from this machine's latest
`ember start` session. Only loopback addresses and unix sockets are accepted:
these tests never send traffic anywhere else. Runs are bounded by -t.
"""

from __future__ import annotations

import ipaddress
import mmap
import os
import time
from typing import Any, Callable

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, between, events, task

from ember._private import auth, ids, session
from ember._private.config import Config
from ember.v1 import gcs_pb2, gcs_pb2_grpc, objectstore_pb2, objectstore_pb2_grpc, raylet_pb2, raylet_pb2_grpc

grpc_gevent.init_gevent()  # grpc's blocking calls must yield to gevent


def _loopback_only(address: str) -> str:
    if address.startswith("unix:"):
        return address
    host = address.rsplit(":", 1)[0].strip("[]")
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing to load-test {address}: only loopback addresses and unix sockets")
    return address


class Targets:
    """Where the services are, and the token."""

    def __init__(self) -> None:
        latest = session.latest(Config.load().session_root)
        self.token = os.environ.get(auth.TOKEN_ENV) or (auth.read_token(latest / "token") if latest else None)
        gcs = os.environ.get("EMBER_GCS_ADDRESS")
        if gcs is None and latest is not None and (latest / "cluster.json").exists():
            gcs = session.read_json(latest / "cluster.json")["gcs_address"]
        if not gcs or not self.token:
            raise SystemExit("no cluster: start one with `ember start --head` or set EMBER_GCS_ADDRESS and EMBER_AUTH_TOKEN")
        self.gcs = _loopback_only(gcs)
        raylet, store = os.environ.get("EMBER_RAYLET_ADDRESS"), os.environ.get("EMBER_STORE_ADDRESS")
        if raylet is None or store is None:
            nodes = gcs_pb2_grpc.GcsStub(auth.channel(self.gcs, self.token)).GetAllNodes(
                gcs_pb2.GetAllNodesRequest(), timeout=10).nodes
            node = next(n for n in nodes if n.alive)
            raylet = raylet or f"unix:{node.raylet_socket}"
            store = store or node.object_store_socket
        self.raylet = _loopback_only(raylet)
        self.store = _loopback_only(store)


_targets: Targets | None = None


def targets() -> Targets:
    global _targets
    if _targets is None:
        _targets = Targets()
    return _targets


class TimedStub:
    """Wraps a gRPC stub: every call is reported to locust's statistics."""

    def __init__(self, stub: Any, service: str) -> None:
        self._stub = stub
        self._service = service

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = getattr(self._stub, method)

        def timed(request: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            response, error = None, None
            try:
                response = call(request, timeout=10, **kwargs)
            except grpc.RpcError as e:
                error = e
            events.request.fire(
                request_type="grpc", name=f"{self._service}.{method}",
                response_time=(time.perf_counter() - start) * 1000,
                response_length=response.ByteSize() if response is not None else 0,
                exception=error, context={},
            )
            return response

        return timed


class GcsUser(User):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        t = targets()
        self.gcs = TimedStub(gcs_pb2_grpc.GcsStub(auth.channel(t.gcs, t.token)), "Gcs")
        self.key = ids.new_unique_id()

    @task(3)
    def kv_put_get(self) -> None:
        self.gcs.KvPut(gcs_pb2.KvPutRequest(namespace="loadtest", key=self.key, value=os.urandom(64), overwrite=True))
        self.gcs.KvGet(gcs_pb2.KvGetRequest(namespace="loadtest", key=self.key))

    @task(1)
    def nodes(self) -> None:
        self.gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest())

    def on_stop(self) -> None:
        self.gcs.KvDelete(gcs_pb2.KvDeleteRequest(namespace="loadtest", key=self.key))


class ObjectStoreUser(User):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        t = targets()
        self.store = TimedStub(objectstore_pb2_grpc.ObjectStoreStub(auth.channel(t.store, t.token)), "ObjectStore")

    @task
    def object_lifecycle(self) -> None:
        oid, size = ids.new_put_id(), 64 * 1024
        created = self.store.Create(objectstore_pb2.CreateRequest(object_id=oid, size=size))
        if created is None:
            return
        with open(created.path, "r+b") as f, mmap.mmap(f.fileno(), size) as mm:
            mm[:16] = b"ember-loadtest!!"
        self.store.Seal(objectstore_pb2.SealRequest(object_id=oid))
        self.store.Locate(objectstore_pb2.LocateRequest(object_ids=[oid]))
        self.store.Delete(objectstore_pb2.DeleteRequest(object_ids=[oid]))


class RayletUser(User):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        t = targets()
        self.raylet = TimedStub(raylet_pb2_grpc.RayletStub(auth.channel(t.raylet, t.token)), "Raylet")

    @task
    def node_stats(self) -> None:
        self.raylet.GetNodeStats(raylet_pb2.GetNodeStatsRequest())


@events.init.add_listener
def _check_targets(environment: Any, **_: Any) -> None:
    targets()  # fail at start, with the reason, not in every user
