"""Where a task whose arguments are ready goes, on the placement part with
the real forwarding and remote-actor parts under it."""

import collections

from ember.v1 import raylet_pb2

from ember_common import ids
from ember_common.object_layout import FailureType
from ember_raylet.actor_table import ActorTable
from ember_raylet.client_session import RAYLET, ClientSession
from ember_raylet.peer_forwarding import PeerForwarding
from ember_raylet.remote_actors import RemoteActors
from ember_raylet.task_manager import FORWARDED, QUEUED
from ember_raylet.task_placement import TaskPlacement
from tests.unit.raylet_parts import LOCAL, Calls, State, node


def parts(*peers, cpus=2.0):
    state = State(*peers)
    total = {"CPU": cpus}
    peer_forwarding = PeerForwarding(LOCAL, total, 2, state.view, state.tasks, state.objects, collections.Counter(),
                                     Calls(), state.finished, Calls(), Calls())
    remote = RemoteActors(state.view, state.tasks, state.objects, ActorTable(), ClientSession(b"", RAYLET), Calls(),
                          peer_forwarding.forward, peer_forwarding.peer_batch, state.finished)
    local_calls, pulls = Calls(), Calls()
    placement = TaskPlacement(LOCAL, total, {}, state.view, state.tasks, state.objects, state.finished, Calls(),
                              peer_forwarding, remote, local_calls, lambda object_id, task_id: pulls.append(object_id))
    return state, placement, peer_forwarding, pulls


def test_a_task_that_fits_is_queued_here_and_one_with_a_failed_argument_ends():
    state, placement, _, _ = parts()
    fits = state.task()
    placement.place(fits)
    assert fits.state == QUEUED and list(state.tasks.roots[fits.key]) == [fits.spec.task_id]
    bad = state.put()
    bad.is_error = True
    failed = state.task(deps=[bad.object_id])
    placement.place(failed)
    assert state.finished.ended[failed.spec.task_id] is bad


def test_an_argument_stored_elsewhere_is_pulled_or_the_task_goes_to_it():
    peer = node()
    state, placement, forwarding, pulls = parts(peer)
    small = state.put(stored_on=peer.node_id)
    task = state.task(deps=[small.object_id])
    placement.place(task)
    assert task.state == FORWARDED and task.node == peer.node_id  # most argument bytes are there
    pinned = state.task(deps=[small.object_id])
    pinned.pinned = True  # (its strategy chose this node)
    placement.place(pinned)
    assert pulls == [small.object_id] and pinned.missing == 1


def test_a_task_no_node_fits_waits_and_its_submitter_is_warned_once():
    state, placement, _, _ = parts()
    first, second = state.task(cpus=64), state.task(cpus=64)
    placement.place(first)
    placement.place(second)
    assert state.tasks.infeasible[first.key] == [first.spec.task_id, second.spec.task_id]
    assert len(state.driver.take().warnings) == 1


def test_a_peers_task_that_does_not_fit_goes_back_to_it():
    state, placement, _, _ = parts(node())
    sender = ClientSession(ids.new_unique_id(), RAYLET, node_id=ids.new_unique_id())
    task = state.task(cpus=64, submitter=sender)
    placement.place(task)
    assert list(sender.take().handed_back) == [task.spec.task_id]


def test_hard_node_affinity_to_a_missing_node_fails_and_spread_takes_turns():
    a, b = node(), node()
    state, placement, _, _ = parts(a, b)
    gone = state.task()
    gone.spec.scheduling.CopyFrom(raylet_pb2.SchedulingStrategy(kind=raylet_pb2.SchedulingStrategy.NODE_AFFINITY,
                                                                node_id=ids.new_unique_id()))
    placement.place(gone)
    error = state.finished.failure(gone.spec.task_id)
    assert error.type == FailureType.TASK_UNSCHEDULABLE and "not alive" in error.message
    targets = []
    for _ in range(3):
        spread = state.task()
        spread.spec.scheduling.kind = raylet_pb2.SchedulingStrategy.SPREAD
        placement.place(spread)
        targets.append(spread.node if spread.state == FORWARDED else LOCAL)
    assert sorted(targets) == sorted([a.node_id, b.node_id, LOCAL])
