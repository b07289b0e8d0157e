"""The client API on a cluster of two nodes: a client of the head's raylet
reaches values stored on the other node, passes its own values to tasks and
actors that run there (the same paths a Python driver's calls take)."""

from __future__ import annotations

import pytest

import ember
from tests.conftest import multinode_cluster
from tests.test_client_api import CODE, Client, Ref


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
