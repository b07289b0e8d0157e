"""The cluster view the GCS answers each resource report with, kept
encoded by the node table: it follows registrations, reports, deaths and a
reload, holds what a raylet's ClusterView uses of each node, and is not
rebuilt while nothing in it changed. No sockets."""

import asyncio

from ember.v1 import common_pb2, gcs_pb2

from ember_gcs.node_table import NodeTable
from ember_gcs.storage import MemoryStorage

A, B, C = b"a" * 16, b"b" * 16, b"c" * 16


def _node(node_id: bytes, cpus: float) -> gcs_pb2.NodeInfo:
    info = gcs_pb2.NodeInfo(node_id=node_id, node_address="127.0.0.1", raylet_port=7000, object_store_port=7001,
                            object_transfer_port=7002, labels={"zone": "z1"}, session_dir="/tmp/s",
                            raylet_socket="/tmp/s/raylet", object_store_dir="/dev/shm/x", metrics_port=9)
    info.total.amounts["CPU"] = cpus
    return info


def _view(table: NodeTable) -> dict[bytes, gcs_pb2.NodeInfo]:
    return {n.node_id: n for n in gcs_pb2.ReportResourcesReply.FromString(table.view_reply()).nodes}


def _cpus(amount: float) -> common_pb2.ResourceSet:
    return common_pb2.ResourceSet(amounts={"CPU": amount})


def test_the_view_follows_registrations_reports_and_deaths():
    storage = MemoryStorage()
    table = NodeTable(storage, health_timeout_s=10.0)

    async def run():
        assert table.view_reply() == b""  # no node: an empty reply
        await table.register(_node(A, 4))
        await table.register(_node(B, 2))
        view = _view(table)
        assert set(view) == {A, B}
        a = view[A]
        assert (a.node_address, a.raylet_port, a.object_store_port, a.object_transfer_port) == ("127.0.0.1", 7000,
                                                                                                7001, 7002)
        assert a.alive and dict(a.total.amounts) == {"CPU": 4} and dict(a.available.amounts) == {"CPU": 4}
        assert dict(a.labels) == {"zone": "z1"}
        # What only the node's own clients need stays out of every report's reply.
        assert not a.session_dir and not a.raylet_socket and not a.object_store_dir and not a.metrics_port

        await table.report(A, _cpus(1), [], _cpus(4))
        assert dict(_view(table)[A].available.amounts) == {"CPU": 1}
        await table.report(B, _cpus(2), [], _cpus(3))  # a bundle added a CPU
        assert dict(_view(table)[B].total.amounts) == {"CPU": 3}

        await table.mark_dead(B, "gone")
        assert set(_view(table)) == {A}
        await table.register(_node(C, 1))
        assert set(_view(table)) == {A, C}

        # A new leader reloads the table from storage: the view is rebuilt from it.
        other = NodeTable(storage, health_timeout_s=10.0)
        other.restore(await storage.load(NodeTable.table))
        assert set(_view(other)) == {A, C} and dict(_view(other)[C].total.amounts) == {"CPU": 1}

    asyncio.run(run())


def test_an_unchanged_report_reuses_the_encoded_view():
    table = NodeTable(MemoryStorage(), health_timeout_s=10.0)

    async def run():
        await table.register(_node(A, 4))
        await table.register(_node(B, 4))
        first = table.view_reply()
        await table.report(A, _cpus(4), [], _cpus(4))  # the same as registered
        assert table.view_reply() is first
        await table.report(A, _cpus(3), [], _cpus(4))
        changed = table.view_reply()
        assert changed is not first and dict(_view(table)[A].available.amounts) == {"CPU": 3}
        await table.report(A, _cpus(3), [common_pb2.ResourceSet(amounts={"GPU": 1})], _cpus(4))
        assert table.view_reply() is changed  # infeasible shapes are not in the view
        assert [list(s.amounts) for n in table.all() if n.node_id == A for s in n.infeasible] == [["GPU"]]

    asyncio.run(run())
