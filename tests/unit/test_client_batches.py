"""The client's outgoing batches and reference counts (client_batches.py),
without sockets: what one drain puts in a batch, and what the raylet is told
about our references."""

from __future__ import annotations

from ember.v1 import common_pb2, raylet_pb2

from ember._private.client_batches import (MAX_ITEMS_PER_BATCH, Blocked, DirectResults, DirectState, ItemKind,
                                           ObjectStates, Outbox)
from ember_common import ids

TASK = b"t" * 16
RETURN = ids.object_id_for(TASK, 1)
OTHER = b"o" * 20


class Parts:
    def __init__(self) -> None:
        self.objects = ObjectStates()
        self.direct = DirectResults()
        self.forgotten: list[bytes] = []
        self.outbox = Outbox(self.objects, self.direct, self.forgotten.append)

    def drain(self, *items):
        """Queue `items`; the batches they drain into and whether the last closes."""
        for item in items:
            self.outbox.queue.put(item)
        batches = []
        while not self.outbox.queue.empty():
            batch, closing = self.outbox.drain(self.outbox.queue.get_nowait())
            batches.append(batch)
            if closing:
                return batches, True
        return batches, False


def spec(task_id: bytes = TASK, num_returns: int = 1, **kw) -> raylet_pb2.TaskSpec:
    return raylet_pb2.TaskSpec(task_id=task_id, num_returns=num_returns, **kw)


def test_queued_items_coalesce_into_one_batch():
    p = Parts()
    value = common_pb2.ObjectValue(object_id=OTHER, data=b"x")
    (batch,), closing = p.drain((ItemKind.SUBMIT, spec()), (ItemKind.PUT, value),
                                (ItemKind.SUBSCRIBE, [b"s" * 20]), (ItemKind.LOGS, raylet_pb2.LogLines(pid=1)),
                                (ItemKind.BLOCKED, Blocked(True, [TASK])), (ItemKind.KV_GET, raylet_pb2.KvKey(key=b"k")))
    assert not closing
    assert [s.task_id for s in batch.submit] == [TASK]
    assert [v.object_id for v in batch.puts] == [OTHER]
    assert list(batch.subscribe) == [b"s" * 20] and len(batch.logs) == 1 and len(batch.kv_get) == 1
    assert batch.blocked.blocked and list(batch.blocked.returned_task_ids) == [TASK]
    assert not batch.add_refs and not batch.remove_refs  # a submitter and a putter are counted already
    assert {RETURN, OTHER} <= p.objects.live
    assert RETURN in p.objects.subscribed  # the raylet pushes a task's returns to its submitter


def test_a_ref_made_and_dropped_within_one_batch_is_never_reported():
    p = Parts()
    (batch,), _ = p.drain((ItemKind.REF_ADD, OTHER), (ItemKind.REF_DEL, OTHER))
    assert not batch.add_refs and not batch.remove_refs
    assert OTHER not in p.objects.live and p.forgotten == [OTHER]
    assert p.outbox.counts == {}


def test_refs_are_counted_and_only_the_first_and_last_reported():
    p = Parts()
    (batch,), _ = p.drain((ItemKind.REF_ADD, OTHER), (ItemKind.REF_ADD, OTHER), (ItemKind.REF_DEL, OTHER))
    assert list(batch.add_refs) == [OTHER] and not batch.remove_refs
    assert p.outbox.counts == {OTHER: 1} and OTHER in p.objects.live and not p.forgotten
    (batch,), _ = p.drain((ItemKind.REF_DEL, OTHER))
    assert list(batch.remove_refs) == [OTHER] and not batch.add_refs
    assert OTHER not in p.objects.live and p.forgotten == [OTHER]


def test_dropping_the_last_ref_forgets_the_value():
    p = Parts()
    p.objects.values[OTHER] = common_pb2.ObjectValue(object_id=OTHER)
    p.objects.remote[OTHER] = common_pb2.ObjectValue(object_id=OTHER)
    p.objects.fetching.add(OTHER)
    p.drain((ItemKind.REF_ADD, OTHER), (ItemKind.REF_DEL, OTHER))
    assert OTHER not in p.objects.values and OTHER not in p.objects.remote and OTHER not in p.objects.fetching


def test_refs_to_a_submitted_tasks_returns_are_the_submitters():
    p = Parts()
    (batch,), _ = p.drain((ItemKind.SUBMIT, spec()), (ItemKind.REF_ADD, RETURN))
    assert not batch.add_refs
    (batch,), _ = p.drain((ItemKind.REF_DEL, RETURN))
    assert list(batch.remove_refs) == [RETURN]


def test_a_kill_ends_its_batch():
    p = Parts()
    kill = raylet_pb2.KillActor(actor_id=b"a" * 16)
    (first, second), _ = p.drain((ItemKind.SUBMIT, spec(b"1" * 16)), (ItemKind.KILL, kill),
                                 (ItemKind.SUBMIT, spec(b"2" * 16)))
    assert [s.task_id for s in first.submit] == [b"1" * 16] and list(first.kill_actors) == [kill]
    assert [s.task_id for s in second.submit] == [b"2" * 16] and not second.kill_actors


def test_a_batch_holds_at_most_the_item_cap():
    p = Parts()
    batches, _ = p.drain(*[(ItemKind.LOGS, raylet_pb2.LogLines(pid=i)) for i in range(MAX_ITEMS_PER_BATCH + 3)])
    assert [len(b.logs) for b in batches] == [MAX_ITEMS_PER_BATCH, 3]


def test_close_ends_the_stream_with_what_came_before():
    p = Parts()
    batches, closing = p.drain((ItemKind.SUBMIT, spec()), (ItemKind.CLOSE, None), (ItemKind.LOGS, raylet_pb2.LogLines()))
    assert closing and len(batches) == 1 and len(batches[0].submit) == 1
    assert not p.outbox.queue.empty()  # (nothing after the close is sent)


def test_a_reserved_call_is_ours_before_the_raylet_sees_it():
    p = Parts()
    (batch,), _ = p.drain((ItemKind.RESERVE, spec()), (ItemKind.REF_ADD, RETURN))
    assert not batch.submit and not batch.add_refs
    assert RETURN in p.objects.live and RETURN in p.objects.subscribed
    (batch,), _ = p.drain((ItemKind.RESUBMIT, spec()))
    assert len(batch.submit) == 1 and not batch.remove_refs  # still referred to


def test_a_late_submission_drops_the_returns_nobody_refers_to():
    p = Parts()
    (batch,), _ = p.drain((ItemKind.RESUBMIT, spec(num_returns=2)))
    assert len(batch.submit) == 1
    assert list(batch.remove_refs) == [RETURN, ids.object_id_for(TASK, 2)]
    assert RETURN not in p.outbox.held_remote


def test_direct_results_passed_on_are_put_or_promised_first():
    p = Parts()
    here, running = b"h" * 20, b"r" * 20
    p.direct.states.update({here: DirectState.HERE, running: DirectState.RUNNING})
    p.objects.values[here] = common_pb2.ObjectValue(object_id=here, data=b"v")
    (batch,), _ = p.drain((ItemKind.SUBMIT, spec(dependencies=[here, running])))
    assert [v.object_id for v in batch.puts] == [here] and list(batch.promises) == [running]
    assert here not in p.direct.states and p.direct.states[running] is DirectState.PROMISED
    assert {here, running} <= p.outbox.held_remote
    (batch,), _ = p.drain((ItemKind.SUBMIT, spec(b"2" * 16, dependencies=[running])))
    assert not batch.promises and not batch.puts  # promised once


def test_direct_results_inside_values_and_results_are_published():
    p = Parts()
    nested = b"n" * 20
    p.direct.states[nested] = DirectState.RUNNING
    result = raylet_pb2.TaskResult(task_id=TASK, returns=[common_pb2.ObjectValue(object_id=RETURN, nested_ids=[nested])])
    (batch,), _ = p.drain((ItemKind.RESULT, result))
    assert list(batch.promises) == [nested] and len(batch.results) == 1


def test_a_direct_result_handed_to_the_raylet_keeps_or_drops_our_ref():
    p = Parts()
    kept, dropped = b"k" * 20, b"d" * 20
    p.direct.states[kept] = DirectState.RUNNING
    (batch,), _ = p.drain((ItemKind.REF_ADD, kept))
    assert not batch.add_refs  # the raylet does not know it yet
    (batch,), _ = p.drain((ItemKind.PUT_DIRECT, common_pb2.ObjectValue(object_id=kept)),
                          (ItemKind.PUT_DIRECT, common_pb2.ObjectValue(object_id=dropped)))
    assert len(batch.puts) == 2 and list(batch.remove_refs) == [dropped]
    assert kept in p.outbox.held_remote and dropped not in p.outbox.held_remote


def test_dropping_a_direct_result_the_raylet_never_knew_tells_it_nothing():
    p = Parts()
    p.direct.states[OTHER] = DirectState.HERE
    p.drain((ItemKind.REF_ADD, OTHER))
    (batch,), _ = p.drain((ItemKind.REF_DEL, OTHER))
    assert not batch.remove_refs and OTHER not in p.direct.states


def test_ready_values_on_another_node_wait_for_a_fetch():
    objects = ObjectStates()
    here, far, unknown = b"1" * 20, b"2" * 20, b"3" * 20
    objects.live.update((here, far))
    objects.fetching.add(far)
    objects.ready([common_pb2.ObjectValue(object_id=here, node_id=b"me"),
                   common_pb2.ObjectValue(object_id=far, node_id=b"peer"),
                   common_pb2.ObjectValue(object_id=unknown)], b"me")
    assert set(objects.values) == {here} and set(objects.remote) == {far}
    assert far not in objects.fetching  # fetched anew
    objects.ready([common_pb2.ObjectValue(object_id=far, node_id=b"me")], b"me")  # pulled here
    assert far in objects.values and far not in objects.remote


def test_submissions_past_the_allowance_wait_in_order_with_what_follows():
    p = Parts()
    p.outbox.submit_allowance = 1  # held by the raylet: one more task
    first, second = spec(b"a" * 16), spec(b"b" * 16)
    value = common_pb2.ObjectValue(object_id=OTHER, data=b"x")
    (batch,), _ = p.drain((ItemKind.SUBMIT, first), (ItemKind.SUBMIT, second),
                          (ItemKind.REF_DEL, ids.object_id_for(b"a" * 16, 1)), (ItemKind.PUT, value),
                          (ItemKind.KV_GET, raylet_pb2.KvKey(key=b"k")))
    # The first goes; the second waits, serialized, and so does all that
    # follows it but what cannot refer to it (a KV read goes).
    assert [s.task_id for s in batch.submit] == [first.task_id]
    assert not batch.puts and not batch.remove_refs and len(batch.kv_get) == 1
    assert [kind for kind, _ in p.outbox.kept] == [ItemKind.SUBMIT, ItemKind.REF_DEL, ItemKind.PUT]
    assert isinstance(p.outbox.kept[0][1], bytes)
    # Its returns are expected already: a get waits without subscribing.
    assert ids.object_id_for(second.task_id, 1) in p.objects.subscribed
    assert not p.outbox.can_send_kept()
    batch, _ = p.outbox.drain(None)
    assert batch.ByteSize() == 0 and len(p.outbox.kept) == 3
    p.outbox.submit_allowance = 2  # the raylet made room
    assert p.outbox.can_send_kept()
    batch, _ = p.outbox.drain((ItemKind.WAKE, None))
    assert [s.task_id for s in batch.submit] == [second.task_id] and batch.submit[0] == second
    assert [v.object_id for v in batch.puts] == [OTHER]
    assert list(batch.remove_refs) == [ids.object_id_for(b"a" * 16, 1)]
    assert not p.outbox.kept and p.outbox.submitted == 2


def test_a_held_client_sends_a_promised_direct_result_at_once():
    p = Parts()
    p.outbox.submit_allowance = 0
    p.drain((ItemKind.SUBMIT, spec()))
    result = common_pb2.ObjectValue(object_id=OTHER, data=b"r")
    (batch,), _ = p.drain((ItemKind.PUT_DIRECT, result))
    # The raylet may be waiting on it with a full queue: it never waits behind kept tasks.
    assert [v.object_id for v in batch.puts] == [OTHER] and len(p.outbox.kept) == 1


def test_an_unheld_client_keeps_nothing():
    p = Parts()
    (batch,), _ = p.drain(*[(ItemKind.SUBMIT, spec(bytes([i]) * 16)) for i in range(3)])
    assert len(batch.submit) == 3 and not p.outbox.kept and p.outbox.submitted == 3
