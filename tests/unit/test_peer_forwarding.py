"""Tasks to and from other nodes, on the forwarding part alone: what a
peer is sent, what its answers do, and a lost peer's tasks."""

import collections

from ember.v1 import common_pb2

from ember_common import ids
from ember_common.object_layout import FailureType
from ember_raylet.client_session import RAYLET, ClientSession
from ember_raylet.peer_forwarding import PeerForwarding
from ember_raylet.task_manager import FORWARDED, QUEUED, WAITING
from tests.unit.raylet_parts import Calls, State, node


def parts(*peers):
    state = State(*peers)
    sends, ready, awaited = Calls(), Calls(), Calls()
    forwarding = PeerForwarding(b"L" * 16, {"CPU": 1.0}, 2, state.view, state.tasks, state.objects,
                                collections.Counter(), sends, state.finished, ready, awaited)
    return state, forwarding, sends, awaited


def test_a_forwarded_task_takes_its_values_and_the_refs_inside_them():
    peer = node()
    state, forwarding, sends, _ = parts(peer)
    inner = state.put(b"inner")
    outer = common_pb2.ObjectValue(object_id=ids.new_put_id(), data=b"outer", nested_ids=[inner.object_id])
    state.objects.put(outer, state.driver)
    task = state.task(deps=[outer.object_id])
    forwarding.forward(task, peer.node_id)
    assert task.state == FORWARDED and forwarding.forward_count[peer.node_id] == 1 and sends == [peer.node_id]
    batch = forwarding.take_peer_batch(peer.node_id)
    assert {v.object_id for v in batch.provide} == {outer.object_id, inner.object_id}
    assert [s.task_id for s in batch.submit] == [task.spec.task_id]
    assert forwarding.take_peer_batch(peer.node_id) is None


def test_nothing_joins_a_batch_after_a_kill():
    peer = node()
    _, forwarding, _, _ = parts(peer)
    forwarding.peer_batch(peer.node_id).kill_actors.add(actor_id=b"a" * 16)
    forwarding.peer_batch(peer.node_id).remove_refs.append(b"o" * 20)
    first, second = forwarding.take_peer_batch(peer.node_id), forwarding.take_peer_batch(peer.node_id)
    assert first.kill_actors and not first.remove_refs and list(second.remove_refs) == [b"o" * 20]


def test_spilling_leaves_the_first_tasks_and_fills_the_peers_room():
    peer = node(cpus=1)
    state, forwarding, _, _ = parts(peer)
    queued = [state.task() for _ in range(5)]
    queue = collections.deque(t.spec.task_id for t in queued)
    forwarding.spill(queue, skip=1)
    assert list(queue) == [queued[0].spec.task_id, *[t.spec.task_id for t in queued[3:]]]  # room: 1 slot x depth 2
    assert forwarding.forward_count[peer.node_id] == 2


def test_the_peers_returns_finish_the_task_once_all_are_in():
    peer = node()
    state, forwarding, _, _ = parts(peer)
    task = state.task()
    forwarding.forward(task, peer.node_id)
    forwarding.take_peer_batch(peer.node_id)
    ret = common_pb2.ObjectValue(object_id=ids.object_id_for(task.spec.task_id, 1), data=b"r")
    forwarding.peer_value(peer.node_id, ret)
    assert [v.data for v in state.finished.ended[task.spec.task_id]] == [b"r"]
    assert list(forwarding.take_peer_batch(peer.node_id).remove_refs) == [ret.object_id]  # inline: the peer may drop it


def test_a_peers_task_handed_back_leaves_nothing_and_ours_handed_back_is_placed_again():
    peer = node()
    state, forwarding, _, awaited = parts(peer)
    sender = ClientSession(ids.new_unique_id(), RAYLET, node_id=peer.node_id)
    theirs = state.task(submitter=sender)
    forwarding.hand_back(theirs)
    assert list(sender.take().handed_back) == [theirs.spec.task_id] and theirs.spec.task_id not in state.tasks.tasks
    ours = state.task()
    forwarding.forward(ours, peer.node_id)
    forwarding.handed_back(peer.node_id, [ours.spec.task_id], common_pb2.ResourceSet(amounts={"CPU": 1}))
    assert awaited == [ours] and ours.state == WAITING and forwarding.forward_count[peer.node_id] == 0
    assert state.view.get(peer.node_id).total == {"CPU": 1}


def test_a_lost_peers_tasks_retry_fail_or_end_cancelled():
    peer = node()
    state, forwarding, _, awaited = parts(peer)
    retried, doomed, cancelled = state.task(retries=1), state.task(), state.task(retries=1)
    cancelled.cancelled = True
    for task in (retried, doomed, cancelled):
        forwarding.forward(task, peer.node_id)
        forwarding.task_lost(task, peer.node_id, "it died")
    assert awaited == [retried] and retried.retries_left == 0 and retried.state not in (FORWARDED, QUEUED)
    assert state.finished.failure(doomed.spec.task_id).type == FailureType.NODE_DIED
    assert state.finished.failure(cancelled.spec.task_id).type == FailureType.TASK_CANCELLED
    forwarding.borrower(peer.node_id)
    forwarding.drop_peer(peer.node_id)
    assert not forwarding.peer_out and not forwarding.borrowers
