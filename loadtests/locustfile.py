"""Load tests against a running Ember cluster's services, over gRPC.

    ember start --head --num-cpus 2
    locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 30s --only-summary
    ember stop

Three kinds of users, each call timed and reported to locust's statistics as
"<Service>.<Method>" (request type "grpc"):

- GcsUser: Gcs.KvPut + Gcs.KvGet of its own key (3:1 against Gcs.GetAllNodes)
- ObjectStoreUser: a 64 KiB object's life: Create, write the file, Seal,
  Locate, Delete
- RayletUser: Raylet.GetNodeStats

Targets: EMBER_GCS_ADDRESS, EMBER_RAYLET_ADDRESS, EMBER_STORE_ADDRESS and
EMBER_AUTH_TOKEN if set, else this machine's latest `ember start` session
(its cluster.json and token; raylet and store from the GCS's node table).

Safety: only loopback addresses (127.0.0.0/8, ::1, localhost) and unix
sockets are accepted as targets; anything else is refused before a single
request. Runs are single-process, and stop by themselves after
EMBER_LOADTEST_MAX_SECONDS (default 600) or EMBER_LOADTEST_MAX_REQUESTS
(default 1,000,000) even without -t; always pass -t anyway.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from typing import Any, Callable

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, between, events, task
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING

from ember._private import session
from ember_common import auth, ids, rpc
from ember_common.config import Config
from ember_common.gcs_client import GcsClient
from ember.v1 import gcs_pb2, objectstore_pb2, objectstore_pb2_grpc, raylet_pb2, raylet_pb2_grpc

# grpc's blocking calls must yield to gevent, or one user blocks them all.
# Must run before any channel is created.
grpc_gevent.init_gevent()

log = logging.getLogger("ember.loadtests")

CALL_TIMEOUT_S = 10.0
OBJECT_SIZE = 64 * 1024
KV_NAMESPACE = "loadtest"
MAX_SECONDS = float(os.environ.get("EMBER_LOADTEST_MAX_SECONDS", "600"))
MAX_REQUESTS = int(os.environ.get("EMBER_LOADTEST_MAX_REQUESTS", "1000000"))
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def loopback_only(address: str) -> str:
    """`address` if it is a unix socket or a loopback host:port (or a comma
    list of them: GCS replicas); else refuse."""
    if "," in address:
        return ",".join(loopback_only(part) for part in address.split(","))
    if address.startswith(("unix:", "unix-abstract:")):
        return address
    host = address.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    host = host.strip("[]")
    try:
        ok = host.lower() in _LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
    except ValueError:  # some other host name: never resolved, never targeted
        ok = False
    if not ok:
        raise SystemExit(f"refusing to load-test {address!r}: only loopback addresses and unix sockets")
    return address


class Targets:
    """Where the services are, and the token."""

    def __init__(self) -> None:
        latest = session.latest(Config.load().session_root)
        token = os.environ.get(auth.TOKEN_ENV) or None
        if token is None and latest is not None and (latest / "token").exists():
            token = auth.read_token(latest / "token")
        gcs = os.environ.get("EMBER_GCS_ADDRESS")
        if gcs is None and latest is not None and (latest / "cluster.json").exists():
            gcs = session.read_json(latest / "cluster.json")["gcs_address"]
        if not gcs or not token:
            raise SystemExit("no cluster: start one with `ember start --head`, "
                             f"or set EMBER_GCS_ADDRESS and {auth.TOKEN_ENV}")
        self.token: str = token
        self.gcs = loopback_only(gcs)
        raylet, store = os.environ.get("EMBER_RAYLET_ADDRESS"), os.environ.get("EMBER_STORE_ADDRESS")
        if raylet is None or store is None:
            node = self._local_node()
            raylet = raylet or f"unix:{node.raylet_socket}"
            store = store or node.object_store_socket
        self.raylet = loopback_only(raylet)
        self.store = loopback_only(store)

    def _local_node(self) -> gcs_pb2.NodeInfo:
        """A live node whose services run on this machine (its sockets exist here)."""
        gcs = GcsClient(self.gcs, self.token)
        try:
            nodes = gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=CALL_TIMEOUT_S).nodes
        except grpc.RpcError as e:
            raise SystemExit(f"cannot reach the GCS at {self.gcs}: {e.code().name} {e.details()}") from None
        finally:
            gcs.close()
        for node in nodes:
            if node.alive and os.path.exists(node.raylet_socket) \
                    and os.path.exists(node.object_store_socket.removeprefix("unix:")):
                return node
        raise SystemExit(f"the cluster at {self.gcs} has no live node on this machine; "
                         "set EMBER_RAYLET_ADDRESS and EMBER_STORE_ADDRESS")


_targets: Targets | None = None


def targets() -> Targets:
    global _targets
    if _targets is None:
        _targets = Targets()
    return _targets


class TimedStub:
    """Wraps a gRPC stub: every call is reported to locust's request event
    (name "<service>.<method>", response time in ms, the exception if any).
    A failed call returns None; the caller decides what follows."""

    def __init__(self, stub: Any, service: str, close: Callable[[], None]) -> None:
        self._stub = stub
        self._service = service
        self.close = close

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = getattr(self._stub, method)
        name = f"{self._service}.{method}"

        def timed(request: Any) -> Any:
            response, error = None, None
            start = time.perf_counter()
            try:
                response = call(request, timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as e:
                error = e
            events.request.fire(
                request_type="grpc", name=name,
                response_time=(time.perf_counter() - start) * 1000,
                response_length=response.ByteSize() if response is not None else 0,
                response=response, exception=error, context={},
            )
            return response

        return timed


def _stub(address: str, stub_class: type, service: str) -> TimedStub:
    channel = rpc.channel(address, targets().token)
    return TimedStub(stub_class(channel), service, channel.close)


def _gcs_stub() -> TimedStub:
    """The GCS leader, followed across replicas and failovers as every Ember
    client follows it (a standby names the leader; a call during an election
    waits for one, up to the failover window)."""
    gcs = GcsClient(targets().gcs, targets().token)
    return TimedStub(gcs, "Gcs", gcs.close)


class GcsUser(User):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        self.gcs = _gcs_stub()
        self.key = b"loadtest/" + ids.new_unique_id().hex().encode()

    @task(3)
    def kv_put_get(self) -> None:
        value = os.urandom(64)
        if self.gcs.KvPut(gcs_pb2.KvPutRequest(namespace=KV_NAMESPACE, key=self.key, value=value, overwrite=True)):
            got = self.gcs.KvGet(gcs_pb2.KvGetRequest(namespace=KV_NAMESPACE, key=self.key))
            if got is not None and (not got.found or got.value != value):
                events.request.fire(request_type="check", name="Gcs.KvGet value", response_time=0,
                                    response_length=0, exception=AssertionError("KvGet did not return what KvPut wrote"),
                                    context={})

    @task(1)
    def nodes(self) -> None:
        self.gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest())

    def on_stop(self) -> None:
        self.gcs.KvDelete(gcs_pb2.KvDeleteRequest(namespace=KV_NAMESPACE, key=self.key))
        self.gcs.close()


class ObjectStoreUser(User):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        self.store = _stub(targets().store, objectstore_pb2_grpc.ObjectStoreStub, "ObjectStore")
        self.payload = os.urandom(OBJECT_SIZE)

    @task
    def object_lifecycle(self) -> None:
        oid = ids.new_put_id()
        # Create is inside the try: a user stopped while Create is in flight
        # (GreenletExit) still deletes what the store may have made.
        try:
            created = self.store.Create(objectstore_pb2.CreateRequest(object_id=oid, size=OBJECT_SIZE))
            if created is None:
                return
            # The creator fills its range of the store's arena file.
            fd = os.open(created.path, os.O_RDWR)
            try:
                os.pwrite(fd, self.payload, created.offset)
            finally:
                os.close(fd)
            if self.store.Seal(objectstore_pb2.SealRequest(object_id=oid)) is not None:
                self.store.Locate(objectstore_pb2.LocateRequest(object_ids=[oid]))
        finally:
            self.store.Delete(objectstore_pb2.DeleteRequest(object_ids=[oid]))  # sealed or not

    def on_stop(self) -> None:
        self.store.close()


class RayletUser(User):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        self.raylet = _stub(targets().raylet, raylet_pb2_grpc.RayletStub, "Raylet")

    @task
    def node_stats(self) -> None:
        self.raylet.GetNodeStats(raylet_pb2.GetNodeStatsRequest())

    def on_stop(self) -> None:
        self.raylet.close()


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is not None:
        if getattr(options, "master", False) or getattr(options, "worker", False):
            raise SystemExit("these load tests run as one locust process (no --master/--worker)")
        if not options.headless and options.web_host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("run with --headless, or bind the web UI to loopback: --web-host 127.0.0.1")
    targets()  # fail at start, with the reason, not in every user


@events.test_start.add_listener
def _bound_the_run(environment: Any, **_: Any) -> None:
    """Stop by ourselves after MAX_SECONDS or MAX_REQUESTS, whatever -t says."""
    started = time.monotonic()

    def watch() -> None:
        while environment.runner is not None and environment.runner.state not in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
            elapsed, count = time.monotonic() - started, environment.stats.total.num_requests
            if elapsed >= MAX_SECONDS or count >= MAX_REQUESTS:
                log.warning("load test bound reached (%.0f s, %d requests): stopping", elapsed, count)
                environment.runner.quit()
                return
            gevent.sleep(0.5)

    gevent.spawn(watch)
