"""Several nodes on one machine (ember.cluster_utils.Cluster): tasks spill to
other nodes, objects move between stores, output and refs cross nodes, and
work survives a node's death. Every node is a real set of processes."""

from __future__ import annotations

import collections
import gc
import hashlib
import os
import re
import time

import numpy as np
import pytest

import ember
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from ember_common.gcs_client import GcsClient
from ember.v1 import gcs_pb2, raylet_pb2
from tests.conftest import added_nodes, multinode_cluster
from tests.helpers import driver_output, raylet_call, stored_objects, wait_until


@pytest.fixture(scope="module")
def cluster():
    with multinode_cluster({"num_cpus": 1}, {"num_cpus": 2, "resources": {"far": 1}}) as (c, (far,)):
        yield c, far


def _here() -> str:
    return ember.get_runtime_context().get_node_id()


@ember.remote
def where(seconds: float = 0.0) -> str:
    time.sleep(seconds)
    return _here()


@ember.remote(resources={"far": 1})
def on_far(fn, *args):
    return fn(*args), _here()




def _head_raylet_log(c) -> str:
    return "".join(p.read_text() for p in (c.head_node.session_dir / "logs").glob("raylet-*.log"))


def _raylet(c, node, method: str, request):
    return raylet_call(c.token, node.node_id.hex(), method, request)


def _actor(c, actor_id: bytes) -> gcs_pb2.ActorInfo:
    gcs = GcsClient(c.address, c.token)
    try:
        return gcs.GetActor(gcs_pb2.GetActorRequest(actor_id=actor_id), timeout=5).actor
    finally:
        gcs.close()


def test_tasks_spill_to_the_other_node_when_this_one_is_busy(cluster):
    c, far = cluster
    counts = collections.Counter(ember.get([where.remote(0.05) for _ in range(60)]))
    assert set(counts) == {c.head_node.node_id.hex(), far.node_id.hex()}, counts
    # The far node has twice the CPUs: it takes a fair share, not a token one.
    assert counts[far.node_id.hex()] >= 20, counts


def test_a_custom_resource_sends_the_task_where_it_exists(cluster):
    _c, far = cluster
    assert {ember.get(on_far.remote(len, "abc"))[1] for _ in range(5)} == {far.node_id.hex()}


def test_large_values_move_between_nodes_intact(cluster):
    c, far = cluster
    # Made on the far node, read by the driver on the head: pulled in chunks.
    value, node = ember.get(on_far.remote(np.arange, 5_000_000))
    assert node == far.node_id.hex()
    assert value.dtype == np.int64 and np.array_equal(value, np.arange(5_000_000))  # every byte, 2 ranges
    assert not value.flags.writeable  # mapped from the head's store, zero-copy
    # Put on the head, used by a task on the far node (4 ranges at once).
    data = np.random.default_rng(7).integers(0, 255, size=70_000_000, dtype=np.uint8)
    ref = ember.put(data)
    digest, node = ember.get(on_far.remote(lambda a: hashlib.sha256(a).hexdigest(), ref))
    assert node == far.node_id.hex() and digest == hashlib.sha256(data).hexdigest()


def test_a_task_runs_where_its_large_argument_is(cluster):
    _c, far = cluster

    @ember.remote(resources={"far": 1})
    def make():
        return np.ones(20_000_000, dtype=np.uint8)

    @ember.remote
    def consume(arr):
        return int(arr.sum()), _here()

    big = make.remote()
    assert ember.get(consume.remote(big)) == (20_000_000, far.node_id.hex())


def test_refs_inside_values_and_arguments_cross_nodes(cluster):
    _c, far = cluster

    @ember.remote(resources={"far": 1})
    def put_there():
        return [ember.put(np.full(1_000_000, 3, dtype=np.int16)), ember.put("small")]

    big_ref, small_ref = ember.get(put_there.remote())
    assert ember.get(small_ref) == "small"
    assert int(ember.get(big_ref).sum()) == 3_000_000

    here = ember.put({"k": "from the driver"})
    got, node = ember.get(on_far.remote(lambda refs: ember.get(refs[0]), [here]))
    assert got == {"k": "from the driver"} and node == far.node_id.hex()


def test_output_of_a_task_on_another_node_reaches_the_driver(cluster):
    def shout():
        print("hello from the far node", flush=True)
        return 1

    with driver_output() as output:
        ember.get(on_far.remote(shout))
        output.wait_for(lambda out, err: "hello from the far node" in out, "the far node's output")


def test_objects_are_freed_on_every_node(cluster):
    c, far = cluster
    before_far = set(stored_objects(c.token, far))  # earlier tests' objects may still be going: only new ones count
    # The ref is held while the far store is listed: once the last ref goes, the owner frees
    # every copy at once (the value the driver still reads stays mapped from the head's store).
    ref = on_far.remote(np.zeros, 3_000_000)
    value, _ = ember.get(ref)  # stored on far, pulled to the head
    assert set(stored_objects(c.token, far)) - before_far
    del value, ref
    gc.collect()
    wait_until(lambda: not (set(stored_objects(c.token, far)) - before_far or stored_objects(c.token, c.head_node)),
               10, "the object freed on both nodes")


def test_an_infeasible_task_runs_once_a_fitting_node_joins(cluster):
    c, _far = cluster

    @ember.remote(resources={"late": 1})
    def late():
        return _here()

    with driver_output() as output:
        ref = late.remote()
        output.wait_for(lambda out, err: "no node has that much" in err, "the warning that no node fits the task")
    assert not ember.wait([ref], timeout=0)[0]
    with added_nodes(c, {"num_cpus": 1, "resources": {"late": 1}}) as (node,):
        assert ember.get(ref, timeout=30) == node.node_id.hex()


def test_tasks_on_a_killed_node_are_retried_elsewhere(cluster):
    c, _far = cluster
    with added_nodes(c, {"num_cpus": 2, "resources": {"pool": 2}}, {"num_cpus": 2, "resources": {"pool": 2}}) as (a, b):

        @ember.remote(resources={"pool": 1}, max_retries=3)
        def work(i):
            time.sleep(0.3)
            return i, _here()

        refs = [work.remote(i) for i in range(16)]
        for node in (a, b):  # some run on each pool node
            wait_until(lambda: _raylet(c, node, "GetNodeStats", raylet_pb2.GetNodeStatsRequest()).num_running_tasks,
                       10, f"tasks running on node {node.node_id.hex()[:8]}", interval=0.02)
        c.remove_node(b, allow_graceful=False)  # SIGKILL: its tasks die mid-run
        results = ember.get(refs, timeout=60)
        assert [i for i, _ in results] == list(range(16))
        # It had tasks when it died: the head (their owner) retried them.
        head_log = _head_raylet_log(c)
        assert re.search(rf"retrying \S*work after losing node {b.node_id.hex()[:8]}", head_log), head_log


def test_spread_uses_every_node_that_fits(cluster):
    c, far = cluster

    @ember.remote(scheduling_strategy="SPREAD")
    def quick():
        return _here()

    counts = collections.Counter(ember.get([quick.remote() for _ in range(10)]))
    assert counts == {c.head_node.node_id.hex(): 5, far.node_id.hex(): 5}


def test_node_affinity_hard_and_soft(cluster):
    c, far = cluster
    from ember.exceptions import TaskUnschedulableError

    for node in (far, c.head_node):
        pinned = where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id.hex()))
        assert {ember.get(pinned.remote()) for _ in range(4)} == {node.node_id.hex()}
    gone = "ab" * 16
    with pytest.raises(TaskUnschedulableError, match="not alive"):
        ember.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(gone)).remote())
    soft = NodeAffinitySchedulingStrategy(gone, soft=True)
    assert ember.get(where.options(scheduling_strategy=soft).remote()) in {c.head_node.node_id.hex(), far.node_id.hex()}
    with pytest.raises(ValueError, match="hex id"):
        NodeAffinitySchedulingStrategy("nope")
    with pytest.raises(ValueError, match="scheduling_strategy"):
        where.options(scheduling_strategy="PACKED").remote()


@ember.remote(resources={"far": 1})
class FarCounter:
    def __init__(self) -> None:
        self.n = 0

    def inc(self) -> tuple[int, str]:
        self.n += 1
        return self.n, _here()


@ember.remote
def call_inc(handle) -> int:
    return ember.get(handle.inc.remote())[0]


def test_an_actor_lives_where_its_resources_are_and_is_called_from_anywhere(cluster):
    c, far = cluster
    counter = FarCounter.remote()
    results = ember.get([counter.inc.remote() for _ in range(50)])
    assert [n for n, _ in results] == list(range(1, 51))  # in order, across nodes
    assert {node for _, node in results} == {far.node_id.hex()}
    # Its handle inside tasks on both nodes: their raylets find the actor.
    spread = call_inc.options(scheduling_strategy="SPREAD")
    assert sorted(ember.get([spread.remote(counter) for _ in range(4)])) == [51, 52, 53, 54]
    ember.kill(counter)
    with pytest.raises(ember.exceptions.ActorDiedError, match="ember.kill"):
        ember.get(counter.inc.remote(), timeout=20)


def test_a_remote_actor_ends_with_its_handles_and_with_its_node(cluster):
    c, far = cluster
    counter = FarCounter.remote()
    actor_id = counter._actor_id
    ember.get(counter.inc.remote())
    del counter  # no handle left: the node that created it ends it there
    info = wait_until(lambda: (a := _actor(c, actor_id)).state == a.DEAD and a, 10, "the actor's death")
    assert info.death_cause == info.OUT_OF_SCOPE and info.node_id == far.node_id

    # An actor on a node that is killed: calls fail with ActorDiedError.
    with added_nodes(c, {"num_cpus": 1, "resources": {"doomed": 1}}) as (node,):
        doomed = FarCounter.options(resources={"doomed": 1}).remote()
        assert ember.get(doomed.inc.remote())[1] == node.node_id.hex()
        c.remove_node(node, allow_graceful=False)
        with pytest.raises(ember.exceptions.ActorDiedError, match="died"):
            ember.get(doomed.inc.remote(), timeout=30)


def test_an_object_lost_with_its_node_is_rebuilt_from_lineage(cluster):
    c, _far = cluster
    with added_nodes(c, *[{"num_cpus": 1, "resources": {"x": 1}}] * 2) as nodes:

        @ember.remote(resources={"x": 1}, num_returns=2)
        def make(seed: int) -> tuple[np.ndarray, str]:
            return np.random.default_rng(seed).integers(0, 255, size=8_000_000, dtype=np.uint8), _here()

        @ember.remote(resources={"x": 1})
        def put_there() -> list:
            # Put by a task there: owned by that node, so it cannot be rebuilt.
            return [ember.put(np.ones(2_000_000, dtype=np.uint8))]

        big, where_made = make.remote(5)
        made_on = ember.get(where_made)  # small: the big one stays where it was made
        pinned = put_there.options(scheduling_strategy=NodeAffinitySchedulingStrategy(made_on))
        (owned_there,) = ember.get(pinned.remote())
        victim = next(n for n in nodes if n.node_id.hex() == made_on)
        c.remove_node(victim, allow_graceful=False)
        value = ember.get(big, timeout=60)
        expected = np.random.default_rng(5).integers(0, 255, size=8_000_000, dtype=np.uint8)
        assert np.array_equal(value, expected)
        assert f"rebuilding {big.hex()[:12]}" in _head_raylet_log(c)
        with pytest.raises(ember.exceptions.OwnerDiedError):
            ember.get(owned_there, timeout=30)


def test_an_actor_whose_node_dies_restarts_on_another_node(cluster):
    c, _far = cluster
    with added_nodes(c, *[{"num_cpus": 1, "resources": {"x": 1}}] * 2) as nodes:

        @ember.remote(resources={"x": 1}, max_restarts=1, max_task_retries=1)
        class Tally:
            def __init__(self) -> None:
                self.n = 0

            def add(self, k: int) -> tuple[int, str]:
                self.n += k
                return self.n, _here()

        tally = Tally.options(name="tally").remote()
        n, first = ember.get(tally.add.remote(5))
        assert n == 5
        c.remove_node(next(x for x in nodes if x.node_id.hex() == first), allow_graceful=False)
        n, second = ember.get(tally.add.remote(1), timeout=60)  # the constructor ran again there
        assert n == 1 and second != first and second in {x.node_id.hex() for x in nodes}
        info = wait_until(lambda: (a := _actor(c, tally._actor_id)).state == a.ALIVE and a.node_id.hex() == second
                          and a, 10, "the new host's report")
        assert info.num_restarts == 1
        assert ember.get(ember.get_actor("tally").add.remote(1))[0] == 2
        c.remove_node(next(x for x in nodes if x.node_id.hex() == second), allow_graceful=False)
        with pytest.raises(ember.exceptions.ActorDiedError):  # no restarts left
            ember.get(tally.add.remote(1), timeout=60)


def test_an_actor_whose_node_dies_waits_for_a_node_that_fits_then_restarts_there(cluster):
    c, _far = cluster
    with added_nodes(c, {"num_cpus": 1, "resources": {"only": 1}}) as (host,):

        @ember.remote(resources={"only": 1}, max_restarts=-1, max_task_retries=-1)
        class Tally:
            def __init__(self) -> None:
                self.n = 0

            def add(self, k: int) -> tuple[int, str]:
                self.n += k
                return self.n, _here()

        tally = Tally.options(name="wanderer", lifetime="detached").remote()
        assert ember.get(tally.add.remote(5))[1] == host.node_id.hex()
        c.remove_node(host, allow_graceful=False)  # no other node has "only": as Ray, it waits to restart
        call = tally.add.remote(1)
        ready, _ = ember.wait([call], timeout=2)
        assert not ready
        # The GCS, finding the node dead, keeps the actor (and its name) for its restart.
        gcs = GcsClient(c.address, c.token)
        wait_until(lambda: not next(n for n in gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=10).nodes
                                    if n.node_id == host.node_id).alive, 30, "the GCS to find the node dead")
        assert _actor(c, tally._actor_id).state == gcs_pb2.ActorInfo.RESTARTING
        with added_nodes(c, {"num_cpus": 1, "resources": {"only": 1}}) as (new_host,):
            n, where_now = ember.get(call, timeout=60)
            assert n == 1 and where_now == new_host.node_id.hex()  # restarted there, the call retried
            assert ember.get(ember.get_actor("wanderer").add.remote(1))[0] == 2
            ember.kill(tally)
        gcs.close()


def test_a_node_that_just_joined_fetches_arguments_from_nodes_it_has_not_heard_of_yet(cluster, monkeypatch):
    c, _far = cluster
    # The new node hears of the others from the GCS only with its first
    # resource report (5 s here); the others send it work before that.
    monkeypatch.setenv("EMBER_REPORT_INTERVAL_S", "5")
    newcomer = c.add_node(num_cpus=1, resources={"newcomer": 1})
    monkeypatch.delenv("EMBER_REPORT_INTERVAL_S")
    try:
        block = np.arange(1 << 20, dtype=np.int64)  # 8 MB: in the head's store, pulled by the newcomer
        total = ember.get(ember.remote(lambda b: int(b.sum())).options(resources={"newcomer": 1})
                          .remote(ember.put(block)), timeout=60)
        assert total == int(block.sum())
    finally:
        c.remove_node(newcomer)


def test_an_actor_that_exited_stays_dead_when_its_node_dies(cluster):
    """exit_actor() on another node is final, restarts left or not: its
    creator's node hears of it and does not start it again when that node
    dies."""
    c, _far = cluster
    with added_nodes(c, *[{"num_cpus": 1, "resources": {"q": 1}}] * 2) as nodes:

        @ember.remote(resources={"q": 1}, max_restarts=3)
        class Quitter:
            def where(self) -> str:
                return _here()

            def quit(self) -> None:
                ember.actor.exit_actor()

        quitter = Quitter.remote()
        host = ember.get(quitter.where.remote())
        with pytest.raises(ember.exceptions.ActorDiedError):
            ember.get(quitter.quit.remote(), timeout=20)
        c.remove_node(next(x for x in nodes if x.node_id.hex() == host), allow_graceful=False)
        # Its creator's raylet decides on a restart when it loses the node, right after logging so.
        wait_until(lambda: f"lost node {host[:8]}" in _head_raylet_log(c), 20, "the head raylet to lose the node")
        info = _actor(c, quitter._actor_id)
        assert info.state == info.DEAD and info.death_cause == info.EXITED and info.num_restarts == 0, info
        with pytest.raises(ember.exceptions.ActorDiedError, match="exit"):  # queued behind any restart
            ember.get(quitter.where.remote(), timeout=20)


@ember.remote(resources={"far": 1})
class Keeper:
    """Keeps a ref it was given inside an argument, past the call."""

    def keep(self, refs: list) -> None:
        self.refs = refs

    def total(self) -> float:
        return float(ember.get(self.refs[0]).sum())

    def drop(self) -> None:
        self.refs = None


def test_a_ref_kept_on_another_node_outlives_the_owners_own_refs(cluster):
    """Borrowing: an actor on the far node keeps a ref to an object stored
    on the head; the driver drops all of its refs; the object stays until
    the actor drops its ref too, then is freed."""
    c, far = cluster
    keeper = Keeper.remote()
    ref = ember.put(np.ones(4_000_000))  # 32 MB: stored in the head's store
    name = ref.hex()
    ember.get(keeper.keep.remote([ref]))
    del ref
    gc.collect()

    def holders() -> list[str] | None:
        listed = _raylet(c, c.head_node, "ListObjects", raylet_pb2.ListObjectsRequest()).objects
        return next((list(o.holders) for o in listed if o.object_id.hex() == name), None)

    # The driver's drop reached the head's raylet: only the far node holds it now.
    wait_until(lambda: holders() == [f"node {far.node_id.hex()[:8]}"], 10, "the driver's drop", interval=0.02)
    assert name in stored_objects(c.token, c.head_node)
    assert ember.get(keeper.total.remote(), timeout=30) == 4_000_000.0
    ember.get(keeper.drop.remote())
    wait_until(lambda: name not in stored_objects(c.token, c.head_node), 10, "the borrowed object to be freed")
    ember.kill(keeper)


def test_the_store_data_plane_refuses_wrong_tokens_and_unknown_objects(cluster):
    import socket
    import struct

    c, far = cluster
    gcs = GcsClient(c.address, c.token)
    try:
        info = next(n for n in gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=5).nodes
                    if n.node_id == far.node_id)
    finally:
        gcs.close()

    def ask(token: bytes, object_id: bytes) -> int:
        with socket.create_connection((info.node_address, info.object_transfer_port), timeout=5) as s:
            # (token, object id, range, no trace context: services/objectstore/transfer.py)
            s.sendall(len(token).to_bytes(2, "little") + token + object_id + struct.pack("<QQ", 0, 0) + bytes(25))
            return s.recv(9)[0]

    assert ask(b"wrong", b"\0" * 20) == 2  # refused before anything else is read
    assert ask(c.token.encode(), b"\1" * 20) == 1  # no such object


def test_label_selectors_pick_nodes_by_label(cluster):
    c, _far = cluster
    with added_nodes(c, {"num_cpus": 1, "labels": {"zone": "b"}}) as (node,):
        in_b = where.options(label_selector={"zone": "b"})
        assert {ember.get(in_b.remote()) for _ in range(4)} == {node.node_id.hex()}

        @ember.remote(label_selector={"zone": "b"})
        class InB:
            def node(self) -> str:
                return _here()

        assert ember.get(InB.remote().node.remote()) == node.node_id.hex()
        with pytest.raises(ValueError, match="label_selector"):
            where.options(label_selector={"zone": 1}).remote()
        nowhere = where.options(label_selector={"zone": "z"}).remote()
        # Infeasible: no node has the label, so no event to wait on; it does not run within a second.
        assert ember.wait([nowhere], timeout=1.0)[0] == []
        ember.cancel(nowhere)


def test_arrow_tables_cross_nodes_as_arrow_ipc(cluster):
    import pyarrow as pa

    def make(n: int):
        return pa.table({"x": pa.array(range(n), type=pa.int64()), "y": pa.array([i * 0.5 for i in range(n)])})

    table, node = ember.get(on_far.remote(make, 1_000_000))  # stored on the far node, pulled, mapped here
    assert node == cluster[1].node_id.hex()
    assert isinstance(table, pa.Table) and table.equals(make(1_000_000))
    total, node = ember.get(on_far.remote(lambda t: int(t.column("x").to_numpy().sum()), ember.put(table)))
    assert total == sum(range(1_000_000))


def test_generators_on_another_node_stream_to_the_driver(cluster):
    _c, far = cluster

    @ember.remote(resources={"far": 1})
    def count_there(n):
        for i in range(n):
            yield i, _here(), np.full(300_000, i, dtype=np.int32)  # large: held in the far store

    @ember.remote(resources={"far": 1}, num_returns="dynamic")
    def all_there(n):
        yield from range(n)

    seen = []
    for ref in count_there.remote(4):
        i, node, arr = ember.get(ref)
        seen.append(i)
        assert node == far.node_id.hex() and int(arr.sum()) == 300_000 * i
    assert seen == [0, 1, 2, 3]
    assert ember.get(list(ember.get(all_there.remote(5)))) == [0, 1, 2, 3, 4]

    @ember.remote(resources={"far": 1})
    class FarSource:
        def items(self, n):
            for i in range(n):
                yield i * 10

    source = FarSource.remote()
    assert [ember.get(r) for r in source.items.remote(3)] == [0, 10, 20]
    ember.kill(source)


@ember.remote
def in_working_dir() -> tuple[str, str, str]:
    import wd_multinode

    return wd_multinode.VALUE, os.getcwd(), _here()


def test_a_working_dir_is_unpacked_on_each_node_that_runs_its_tasks(cluster, tmp_path):
    c, far = cluster
    (tmp_path / "wd_multinode.py").write_text("VALUE = 'everywhere'\n")
    env = {"working_dir": str(tmp_path)}
    here_value, here_cwd, here = ember.get(in_working_dir.options(runtime_env=env).remote(), timeout=60)
    far_value, far_cwd, there = ember.get(in_working_dir.options(runtime_env=env, resources={"far": 1}).remote(),
                                          timeout=60)
    assert here_value == far_value == "everywhere"
    assert there == far.node_id.hex() and here != there
    # One upload (the same package name), unpacked by each node into its own cache.
    assert os.path.basename(here_cwd) == os.path.basename(far_cwd) and here_cwd != far_cwd
    assert here[:12] in here_cwd and there[:12] in far_cwd
