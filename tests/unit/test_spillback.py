"""Tasks leaving for other nodes, without sockets: the placement policy over a
cluster view, and the node manager's side of spilling (what it sends a peer,
what it does with the peer's answers and with the peer's loss)."""

import pytest
from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember import exceptions
from ember._private import serialization
from ember_common import ids
from ember_common.errors import ProtocolError
from ember_raylet import scheduling_policy
from ember_raylet.client_session import RAYLET, ClientSession
from ember_raylet.cluster_view import ClusterView
from tests.unit.raylet_parts import node
from tests.unit.test_node_manager import executed, finish, make, spec, submit


def view(*nodes):
    v = ClusterView(b"L" * 16)
    v.update(list(nodes))
    return v


def test_slots_count_how_many_of_a_shape_fit():
    assert scheduling_policy.slots({"CPU": 1}, {"CPU": 4}) == 4
    assert scheduling_policy.slots({"CPU": 1, "GPU": 1}, {"CPU": 4, "GPU": 1}) == 1
    assert scheduling_policy.slots({"GPU": 1}, {"CPU": 4}) == 0


def test_spill_prefers_free_nodes_then_the_least_loaded_and_respects_room():
    busy, free = node(available={"CPU": 0}), node()
    v = view(busy, free)
    assert scheduling_policy.pick_spill_node({"CPU": 1}, v, {}, 2) == free.node_id
    # The free node is full of our spilled work (2 slots x depth 2): the busy one still has room.
    assert scheduling_policy.pick_spill_node({"CPU": 1}, v, {free.node_id: 4}, 2) == busy.node_id
    assert scheduling_policy.pick_spill_node({"CPU": 1}, v, {free.node_id: 4, busy.node_id: 4}, 2) is None
    assert scheduling_policy.pick_spill_node({"GPU": 1}, v, {}, 2) is None


def test_locality_picks_the_node_with_most_argument_bytes_if_it_fits():
    far = node(accel=1)
    v = view(far)
    local = v.local_id
    assert scheduling_policy.locality_node({far.node_id: 100, local: 10}, {"CPU": 1}, v, local) == far.node_id
    assert scheduling_policy.locality_node({far.node_id: 10, local: 100}, {"CPU": 1}, v, local) is None
    assert scheduling_policy.locality_node({far.node_id: 100}, {"CPU": 8}, v, local) is None


def test_the_view_brings_back_a_lost_node_only_once_the_gcs_kept_it_alive_long_enough():
    n = node()
    v = view(n)
    v.readmit_after_s = 20
    v.remove(n.node_id, now=100.0)
    assert v.update([n], now=110.0) == [] and v.get(n.node_id) is None  # maybe dead: the GCS may not know yet
    v.update([n], now=120.0)  # still reporting to the GCS 20 s later: a network break, not a death
    assert v.get(n.node_id) is not None and n.node_id not in v.lost


def test_a_task_this_node_cannot_run_goes_to_a_peer_and_its_result_comes_back():
    nm, driver, (w1,), _ = make(cpus=1)
    peer = node(cpus=2, accel=1)
    nm.update_view([peer])
    arg = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"arg")
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[arg]))
    s = spec(deps=[arg.object_id])
    s.resources.amounts["accel"] = 1
    submit(nm, driver, s)
    assert not executed(w1)
    sent = nm.take_peer_batch(peer.node_id)
    assert [x.task_id for x in sent.submit] == [s.task_id] and sent.submit[0].driver_node_id == nm.node_id
    assert [v.object_id for v in sent.provide] == [arg.object_id]  # the argument goes along
    # The peer answers with the (stored) return: the driver hears of it, and
    # we keep the peer's copy until the object is freed here.
    ret = common_pb2.ObjectValue(object_id=ids.object_id_for(s.task_id, 1), stored_size=1 << 20, node_id=peer.node_id)
    nm.handle_peer_batch(peer.node_id, raylet_pb2.RayletBatch(ready=[ret]))
    assert [v.object_id for v in driver.take().ready] == [ret.object_id]
    assert nm.take_peer_batch(peer.node_id) is None
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[ret.object_id]))
    assert list(nm.take_peer_batch(peer.node_id).remove_refs) == [ret.object_id]
    assert nm.forward_count[peer.node_id] == 0


def test_tasks_spill_only_past_what_local_workers_take():
    nm, driver, (w1,), _ = make(cpus=1, depth=2)
    peer = node(cpus=1)
    nm.update_view([peer])
    specs = [spec() for _ in range(6)]
    submit(nm, driver, *specs)
    assert len(executed(w1)) == 2  # pipelined locally
    assert len(nm.take_peer_batch(peer.node_id).submit) == 2  # the peer's room: 1 slot x depth 2
    assert nm.tasks.num_queued() == 2


def test_a_lost_peer_means_its_tasks_retry_here_or_fail():
    nm, driver, (w1,), _ = make(cpus=1)
    peer = node(cpus=1, accel=1)
    nm.update_view([peer])
    retried, doomed = spec(retries=1), spec(retries=0)
    for s in (retried, doomed):
        s.resources.amounts.pop("CPU")
        s.resources.amounts["accel"] = 1
    submit(nm, driver, retried, doomed)
    assert len(nm.take_peer_batch(peer.node_id).submit) == 2
    nm.peer_lost(peer.node_id, "stream broke")
    ready = {v.object_id: v for v in driver.take().ready}
    value, is_error = serialization.deserialize(ready[ids.object_id_for(doomed.task_id, 1)].data)
    assert is_error and isinstance(value, exceptions.NodeDiedError) and "stream broke" in str(value)
    # The other may retry, but no node has `accel` any more: it waits as infeasible.
    assert ids.object_id_for(retried.task_id, 1) not in ready
    assert nm.tasks.tasks[retried.task_id].retries_left == 0 and nm.infeasible_shapes() == [{"accel": 1.0}]


def test_only_raylets_may_provide_values():
    nm, driver, _, _ = make(cpus=1)
    value = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"x")
    with pytest.raises(ProtocolError, match="only raylets"):
        nm.handle_batch(driver, raylet_pb2.ClientBatch(provide=[value]))


def test_a_peer_task_runs_here_with_provided_values_and_is_never_spilled_again():
    nm, _driver, (w1,), _ = make(cpus=1)
    nm.update_view([node(cpus=4)])
    peer = ClientSession(ids.new_unique_id(), RAYLET, node_id=ids.new_unique_id())
    nm.connect(peer)
    arg = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"arg")
    specs = [spec(deps=[arg.object_id]) for _ in range(8)]
    nm.handle_batch(peer, raylet_pb2.ClientBatch(provide=[arg], submit=specs))
    got = executed(w1)
    assert got and got[0].args[0].data == b"arg"
    assert not nm.peer_out  # queued here, whatever the view says
    for s in specs:
        finish(nm, w1, s.task_id)
    assert arg.object_id not in nm.objects  # the provided value went with its last task


def test_a_stored_value_a_peer_lends_is_returned_only_when_nothing_here_refers_to_it():
    """A task from a peer brings a stored argument: this node borrows it
    (tells the peer before any result), a worker keeps a ref to it past the
    task, and only when that ref goes is it returned."""
    nm, _driver, (w1,), _ = make(cpus=1)
    owner = ClientSession(ids.new_unique_id(), RAYLET, node_id=ids.new_unique_id())
    nm.connect(owner)
    arg = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), stored_size=1 << 20,
                                 node_id=owner.node_id)
    s = spec(deps=[arg.object_id])
    nm.handle_batch(owner, raylet_pb2.ClientBatch(provide=[arg], submit=[s]))
    assert list(owner.take().borrowed) == [arg.object_id]
    executed(w1)
    nm.handle_batch(w1, raylet_pb2.ClientBatch(add_refs=[arg.object_id]))  # e.g. an actor keeps it
    finish(nm, w1, s.task_id)
    assert not owner.take().returned_borrows and arg.object_id in nm.objects
    nm.handle_batch(w1, raylet_pb2.ClientBatch(remove_refs=[arg.object_id]))
    assert list(owner.take().returned_borrows) == [arg.object_id] and arg.object_id not in nm.objects


def test_an_owner_keeps_what_a_peer_borrowed_until_it_is_returned_or_the_peer_dies():
    nm, driver, _, deleted = make(cpus=1)
    peer = node(cpus=2, accel=1)
    nm.update_view([peer])
    big = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), stored_size=1 << 20)
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[big]))
    s = spec(deps=[big.object_id], cpus=0)
    s.resources.amounts["accel"] = 1
    submit(nm, driver, s)
    assert [v.object_id for v in nm.take_peer_batch(peer.node_id).provide] == [big.object_id]
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[big.object_id]))
    nm.handle_peer_batch(peer.node_id, raylet_pb2.RayletBatch(borrowed=[big.object_id], ready=[
        common_pb2.ObjectValue(object_id=ids.object_id_for(s.task_id, 1), data=b"done")]))
    assert big.object_id in nm.objects and not deleted  # the task is over, the peer still refers to it
    nm.handle_peer_batch(peer.node_id, raylet_pb2.RayletBatch(returned_borrows=[big.object_id]))
    assert big.object_id not in nm.objects and deleted == [big.object_id]
    # A borrower that dies returns nothing: its borrows go with it.
    again = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), stored_size=1 << 20)
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[again], remove_refs=[]))
    nm.handle_peer_batch(peer.node_id, raylet_pb2.RayletBatch(borrowed=[again.object_id]))
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[again.object_id]))
    assert again.object_id in nm.objects
    nm.peer_lost(peer.node_id, "node died")
    assert again.object_id not in nm.objects


def test_a_peer_task_this_node_cannot_run_is_handed_back_whole():
    """Sent here on an out-of-date view (its bundle left this node): the
    task goes back to the peer with this node's resources, never runs here
    and leaves nothing behind."""
    nm, _driver, (w1,), _ = make(cpus=1)
    peer = ClientSession(ids.new_unique_id(), RAYLET, node_id=ids.new_unique_id())
    nm.connect(peer)
    arg = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"arg")
    s = spec(deps=[arg.object_id], cpus=0)
    s.resources.amounts["CPU_group_0_" + "ab" * 16] = 1
    nm.handle_batch(peer, raylet_pb2.ClientBatch(provide=[arg], submit=[s]))
    reply = peer.take()
    assert list(reply.handed_back) == [s.task_id] and dict(reply.total.amounts) == {"CPU": 1}
    assert not executed(w1) and s.task_id not in nm.tasks.tasks
    assert arg.object_id not in nm.objects and ids.object_id_for(s.task_id, 1) not in nm.objects


def test_a_handed_back_task_waits_for_its_bundle_then_goes_where_it_is():
    nm, driver, (w1,), _ = make(cpus=1)
    group_cpu = "CPU_group_0_" + "ab" * 16
    stale = node(cpus=2, **{group_cpu: 1})
    nm.update_view([stale])
    s = spec(cpus=0, retries=0)
    s.resources.amounts[group_cpu] = 1
    submit(nm, driver, s)
    assert [x.task_id for x in nm.take_peer_batch(stale.node_id).submit] == [s.task_id]
    nm.handle_peer_batch(stale.node_id, raylet_pb2.RayletBatch(
        handed_back=[s.task_id], total=common_pb2.ResourceSet(amounts={"CPU": 2})))
    # Not failed, not sent back to the node that lacks the bundle: it waits.
    assert not (driver.take() or raylet_pb2.RayletBatch()).ready
    assert nm.take_peer_batch(stale.node_id) is None
    assert s.task_id in nm.tasks.tasks and nm.forward_count[stale.node_id] == 0
    # The group is reserved again on another node: the task goes there.
    moved = node(cpus=2, **{group_cpu: 1})
    nm.update_view([moved, _without(stale, group_cpu)])
    assert [x.task_id for x in nm.take_peer_batch(moved.node_id).submit] == [s.task_id]


def _without(info, resource):
    copy = gcs_pb2.NodeInfo()
    copy.CopyFrom(info)
    del copy.total.amounts[resource]
    del copy.available.amounts[resource]
    return copy


def _call(actor_id, name="m", deps=()):
    s = spec(deps=deps, cpus=0, name=name)
    s.actor_id, s.method_name = actor_id, name
    return s


def test_calls_to_an_actor_hosted_elsewhere_are_looked_up_then_sent_in_order():
    looked_up = []
    nm, driver, _, _ = make(cpus=1, on_actor_lookup=lambda actor_id, delay: looked_up.append(actor_id))
    host = node(cpus=1)
    nm.update_view([host])
    actor_id = ids.new_unique_id()
    pending_arg = ids.object_id_for(ids.new_unique_id(), 1)
    nm.objects.create_pending(pending_arg, driver)
    first, second, third = _call(actor_id, "a"), _call(actor_id, "b", deps=[pending_arg]), _call(actor_id, "c")
    submit(nm, driver, first, second, third)
    assert looked_up == [actor_id] and nm.take_peer_batch(host.node_id) is None
    nm.actor_located(actor_id, gcs_pb2.ActorInfo(actor_id=actor_id, state=gcs_pb2.ActorInfo.ALIVE, node_id=host.node_id))
    # The second waits for its argument, and the third waits behind it.
    assert [s.method_name for s in nm.take_peer_batch(host.node_id).submit] == ["a"]
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[common_pb2.ObjectValue(object_id=pending_arg, data=b"x")]))
    assert [s.method_name for s in nm.take_peer_batch(host.node_id).submit] == ["b", "c"]


def test_a_call_after_a_kill_leaves_for_the_host_in_a_later_batch():
    """The host applies a batch's kills after its submissions: a call made
    after a kill must not share its batch, or it would die with the old
    worker instead of running on the restarted actor."""
    nm, driver, _, _ = make(cpus=1)
    host = node(cpus=1)
    nm.update_view([host])
    actor_id = ids.new_unique_id()
    submit(nm, driver, _call(actor_id, "before"))
    nm.actor_located(actor_id, gcs_pb2.ActorInfo(actor_id=actor_id, state=gcs_pb2.ActorInfo.ALIVE, node_id=host.node_id))
    nm.handle_batch(driver, raylet_pb2.ClientBatch(kill_actors=[raylet_pb2.KillActor(actor_id=actor_id)]))
    submit(nm, driver, _call(actor_id, "after"))
    first = nm.take_peer_batch(host.node_id)
    assert [s.method_name for s in first.submit] == ["before"] and len(first.kill_actors) == 1
    second = nm.take_peer_batch(host.node_id)
    assert [s.method_name for s in second.submit] == ["after"] and not second.kill_actors
    assert nm.take_peer_batch(host.node_id) is None


def test_calls_to_a_dead_or_unknown_actor_fail_with_the_reason():
    nm, driver, _, _ = make(cpus=1)
    actor_id = ids.new_unique_id()
    call = _call(actor_id)
    submit(nm, driver, call)
    nm.actor_located(actor_id, gcs_pb2.ActorInfo(actor_id=actor_id, class_name="C", state=gcs_pb2.ActorInfo.DEAD,
                                                 death_message="it was killed by ember.kill()"))
    value, is_error = serialization.deserialize(driver.take().ready[0].data)
    assert is_error and isinstance(value, exceptions.ActorDiedError) and "ember.kill" in str(value)
    submit(nm, driver, _call(actor_id))  # known dead now: fails at once
    value, _ = serialization.deserialize(driver.take().ready[0].data)
    assert isinstance(value, exceptions.ActorDiedError)


def test_an_actor_that_ended_on_its_host_is_never_restarted_by_its_creator():
    """The host ran exit_actor() (say) for an actor this node created there
    with restarts left: told so, this node fails later calls with the
    host's reason, releases the constructor's arguments, and does not start
    the actor again when the host's node dies."""
    nm, driver, _, _ = make(cpus=1)
    host, spare = node(cpus=1, accel=1), node(cpus=1, accel=1)
    nm.update_view([host, spare])
    arg = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"arg")
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[arg]))
    actor_id = ids.new_unique_id()
    creation = spec(deps=[arg.object_id], cpus=0, name="C.__init__")
    creation.actor_id = actor_id
    creation.resources.amounts["accel"] = 1
    creation.actor_creation.CopyFrom(raylet_pb2.ActorCreation(actor_id=actor_id, class_name="C", max_concurrency=1,
                                                              max_restarts=3))
    submit(nm, driver, creation)
    target = next(n for n in (host, spare) if nm.take_peer_batch(n.node_id) is not None)
    nm.handle_peer_batch(target.node_id, raylet_pb2.RayletBatch(ready=[common_pb2.ObjectValue(
        object_id=ids.object_id_for(creation.task_id, 1), data=b"ok")]))
    driver.take()
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[arg.object_id]))
    assert arg.object_id in nm.objects  # pinned for restarts
    nm.handle_peer_batch(target.node_id, raylet_pb2.RayletBatch(actors_ended=[raylet_pb2.ActorEnded(
        actor_id=actor_id, message="C actor is dead: it called exit_actor()")]))
    assert arg.object_id not in nm.objects
    submit(nm, driver, _call(actor_id))
    value, _ = serialization.deserialize(driver.take().ready[0].data)
    assert isinstance(value, exceptions.ActorDiedError) and "exit_actor" in str(value)
    nm.peer_lost(target.node_id, "node died")
    other = spare if target is host else host
    assert nm.take_peer_batch(other.node_id) is None  # not started again


def test_a_return_stored_on_a_lost_node_is_rebuilt_and_its_arguments_kept_until_freed():
    nm, driver, (w1,), _ = make(cpus=1)
    peer, other = node(cpus=1, accel=1), node(cpus=1, accel=1)
    nm.update_view([peer, other])
    arg = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"arg")
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[arg]))
    s = spec(deps=[arg.object_id], retries=0)
    s.resources.amounts["accel"] = 1
    submit(nm, driver, s)
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[arg.object_id]))  # only the task keeps it
    first = next(n for n in (peer, other) if nm.take_peer_batch(n.node_id) is not None)
    ret = common_pb2.ObjectValue(object_id=ids.object_id_for(s.task_id, 1), stored_size=1 << 20, node_id=first.node_id)
    nm.handle_peer_batch(first.node_id, raylet_pb2.RayletBatch(ready=[ret]))
    assert arg.object_id in nm.objects  # lineage keeps the argument
    nm.peer_lost(first.node_id, "killed")
    survivor = other if first is peer else peer
    again = nm.take_peer_batch(survivor.node_id)
    assert [x.task_id for x in again.submit] == [s.task_id]  # the same task, elsewhere
    assert not nm.objects.is_ready(ret.object_id)
    rebuilt = common_pb2.ObjectValue(object_id=ret.object_id, stored_size=1 << 20, node_id=survivor.node_id)
    nm.handle_peer_batch(survivor.node_id, raylet_pb2.RayletBatch(ready=[rebuilt]))
    assert nm.objects.get(ret.object_id).node_id == survivor.node_id
    nm.handle_batch(driver, raylet_pb2.ClientBatch(remove_refs=[ret.object_id]))
    assert arg.object_id not in nm.objects and not nm.lineage.entries  # freed with the last return


def test_a_put_value_stored_only_on_a_lost_node_is_lost():
    nm, driver, _, _ = make(cpus=1)
    peer = node(cpus=1)
    nm.update_view([peer])
    put = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), stored_size=1 << 20,
                                 node_id=peer.node_id)
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[put]))
    nm.peer_lost(peer.node_id, "killed")
    nm.handle_batch(driver, raylet_pb2.ClientBatch(fetch=[put.object_id]))
    value, is_error = serialization.deserialize(driver.take().ready[-1].data)
    assert is_error and isinstance(value, exceptions.ObjectLostError) and "cannot be rebuilt" in str(value)


def test_provided_values_pin_the_refs_inside_them_whatever_their_order():
    nm, _driver, _, _ = make(cpus=1)
    peer = ClientSession(ids.new_unique_id(), RAYLET, node_id=ids.new_unique_id())
    nm.connect(peer)
    child = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"child")
    parent = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), data=b"parent",
                                    nested_ids=[child.object_id])
    s = spec(deps=[parent.object_id])
    nm.handle_batch(peer, raylet_pb2.ClientBatch(provide=[parent, child], submit=[s]))  # parent first
    assert child.object_id in nm.objects and parent.object_id in nm.objects


def test_a_remote_actor_call_with_a_failed_argument_does_not_hold_up_the_next():
    nm, driver, _, _ = make(cpus=1)
    host = node(cpus=1)
    nm.update_view([host])
    actor_id = ids.new_unique_id()
    bad = ids.object_id_for(ids.new_unique_id(), 1)
    nm.objects.create_pending(bad, driver)
    submit(nm, driver, _call(actor_id, "first", deps=[bad]), _call(actor_id, "second"))
    nm.actor_located(actor_id, gcs_pb2.ActorInfo(actor_id=actor_id, state=gcs_pb2.ActorInfo.ALIVE, node_id=host.node_id))
    assert nm.take_peer_batch(host.node_id) is None  # the second waits behind the first
    failed = common_pb2.ObjectValue(object_id=bad, data=serialization.serialize_error(ValueError("x")).to_bytes(),
                                    is_error=True)
    nm.handle_batch(driver, raylet_pb2.ClientBatch(puts=[failed]))
    assert [x.method_name for x in nm.take_peer_batch(host.node_id).submit] == ["second"]


def test_default_placement_packs_to_half_then_spreads():
    other = node(cpus=2)
    v = view(other)
    local_total = {"CPU": 2.0}
    one = {"CPU": 1.0}
    assert scheduling_policy.pick_spread_node(one, v, {}, local_total, {"CPU": 2.0}) is None  # idle here: stay
    assert scheduling_policy.pick_spread_node(one, v, {}, local_total, {"CPU": 1.0}) == other.node_id  # half busy
    # The other node is half busy with what we sent it: this one fills up.
    assert scheduling_policy.pick_spread_node(one, v, {other.node_id: 1}, local_total, {"CPU": 1.0}) is None
    assert scheduling_policy.pick_spread_node({}, v, {}, local_total, {"CPU": 0.0}) is None  # no CPU asked


def test_four_tasks_on_two_idle_two_cpu_nodes_split_two_and_two():
    nm, driver, (w1, w2), _ = make(cpus=2)
    peer = node(cpus=2)
    nm.update_view([peer])
    submit(nm, driver, *[spec() for _ in range(4)])
    here = len(executed(w1)) + len(executed(w2))
    there = len(nm.take_peer_batch(peer.node_id).submit)
    assert (here, there) == (2, 2)
