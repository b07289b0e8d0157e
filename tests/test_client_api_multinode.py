"""The client API on a cluster of two nodes: a client of the head's raylet
reaches values stored on the other node, passes its own values to tasks and
actors that run there (the same paths a Python driver's calls take)."""

from __future__ import annotations

import msgpack
import pytest

import ember
from ember.v1 import client_api_pb2 as api
from ember.v1 import client_calls_pb2
from tests.conftest import multinode_cluster
from tests.test_client_api import CODE, Client, Ref, _ext, _runs


@pytest.fixture(scope="module")
def client():
    with multinode_cluster({"num_cpus": 1}, {"num_cpus": 1, "resources": {"far": 1}}) as (c, (far,)):
        head = next(n for n in ember.nodes() if n["IsHead"])
        client = Client(f"{head['NodeManagerAddress']}:{head['NodeManagerPort']}", c.token, code_search_path=[CODE])
        yield client, far
        client.close()


def test_a_value_stored_on_the_other_node_is_fetched_for_get(client):
    c, far = client
    (ref,) = c.task("polyglot_fns:table_of", 300_000, resources={"far": 1}, num_cpus=0)
    table = c.get1(ref)
    assert table.num_rows == 300_000 and table.column("sq").to_pylist()[-1] == 299_999 ** 2


def test_values_put_here_reach_tasks_and_actors_there(client):
    c, far = client
    blob = b"x" * 500_000  # stored in the head's store
    ref = c.put(blob)
    assert c.call("polyglot_fns:describe", Ref(ref), resources={"far": 1}, num_cpus=0) == "builtins.bytes"
    counter = c.create_actor("polyglot_fns:Counter", 1, resources={"far": 0.1})  # (actors hold it)
    assert c.get1(c.method(counter, "inc", 2)) == 3
    store = c.create_actor("polyglot_fns:Store", resources={"far": 0.1})
    assert c.get1(c.method(store, "put", "k", Ref(ref))) == "builtins.bytes"
    assert c.get1(c.method(store, "get", "k")) == blob  # stored there, read here


def test_the_calls_stream_gets_a_value_stored_on_the_other_node(client):
    """A Get on ClientCalls.Runs has the far value copied here, then sends it
    (the near one first, not held up)."""
    c, far = client
    (ref,) = c.task("polyglot_fns:table_of", 200_000, resources={"far": 0.1}, num_cpus=0)  # (beside test 2's actors)
    (near,) = c.task("polyglot_fns:add", 1, 2, num_cpus=0)
    by_tag = _runs(c, [client_calls_pb2.TaggedRun(tag=1, get=api.GetRequest(session_id=c.sid, object_ids=[ref, near],
                                                                            timeout_s=60))])
    assert by_tag[1][-1].code == 0, by_tag[1][-1].message
    pieces: dict[int, list[bytes]] = {}
    for message in by_tag[1][:-1]:
        for reply in message.replies:
            pieces.setdefault(reply.index, []).append(reply.data)
    table = msgpack.unpackb(b"".join(pieces[0]), ext_hook=_ext)
    assert table.num_rows == 200_000 and table.column("sq").to_pylist()[-1] == 199_999 ** 2
    assert msgpack.unpackb(b"".join(pieces[1])) == 3
