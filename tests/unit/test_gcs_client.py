"""Which replica the GCS client calls next after an UNAVAILABLE."""

import grpc
import pytest

from ember_common.gcs_client import _Replicas, split_addresses


class Unavailable(grpc.RpcError):
    def __init__(self, leader=None):
        self._md = (("ember-leader", leader),) if leader else ()

    def trailing_metadata(self):
        return self._md


def test_a_named_leader_is_called_next_without_waiting():
    r = _Replicas("a:1,b:2")
    assert r.after_unavailable(Unavailable("c:3")) is True
    assert r.current == "c:3" and r.addresses == ["a:1", "b:2", "c:3"]


def test_unreachable_replicas_are_tried_in_turn_with_backoff():
    r = _Replicas("a:1,b:2,c:3")
    seen = []
    for _ in range(4):
        assert r.after_unavailable(Unavailable()) is False  # the caller backs off
        seen.append(r.current)
    assert seen == ["b:2", "c:3", "a:1", "b:2"]
    # A replica naming itself (it just lost leadership) counts as no leader.
    assert r.after_unavailable(Unavailable("b:2")) is False and r.current == "c:3"


def test_address_lists():
    assert split_addresses(" a:1, b:2 ,") == ["a:1", "b:2"]
    with pytest.raises(ValueError):
        split_addresses(" , ")


def test_cluster_info_teaches_the_other_replicas_and_the_leader():
    from ember.v1 import gcs_pb2

    r = _Replicas("a:1")
    r.learn(gcs_pb2.GetClusterInfoReply(leader_address="c:3", replicas=["a:1", "b:2", "c:3"]))
    assert r.addresses == ["a:1", "b:2", "c:3"] and r.current == "c:3"
    # Asking the leader itself (say over a unix socket) keeps the address we use.
    r = _Replicas("unix:/s/gcs.sock")
    r.learn(gcs_pb2.GetClusterInfoReply(leader_address="127.0.0.1:5", replicas=["127.0.0.1:5"], is_leader=True))
    assert r.current == "unix:/s/gcs.sock" and r.addresses == ["unix:/s/gcs.sock", "127.0.0.1:5"]
