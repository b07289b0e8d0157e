"""The object directory reports what freeing objects set off, as one
`Freed` per question, instead of lists its caller empties."""

from ember.v1 import common_pb2

from ember_common import ids
from ember_raylet.client_session import RAYLET, ClientSession
from tests.unit.raylet_parts import LOCAL, State


def test_nothing_freed_is_none_and_each_event_is_reported_once():
    state = State()
    objects, driver = state.objects, state.driver
    assert objects.take_freed() is None
    stored, inline = state.put(stored_on=LOCAL), state.put()
    objects.watch([inline.object_id])
    objects.remove_holder(stored.object_id, driver)
    objects.remove_holder(inline.object_id, driver)
    freed = objects.take_freed()
    assert freed.store_deletes == [stored.object_id] and freed.watched == [inline.object_id]
    assert objects.take_freed() is None  # taken: not reported again


def test_freeing_a_peers_object_or_a_borrow_tells_whom_to_release():
    state = State()
    objects, driver = state.objects, state.driver
    peer = ids.new_unique_id()
    remote = ids.object_id_for(ids.new_unique_id(), 1)
    objects.create_remote(remote, peer)
    objects.add_holder(remote, driver)
    lender = ClientSession(ids.new_unique_id(), RAYLET, node_id=peer)
    lent = common_pb2.ObjectValue(object_id=ids.object_id_for(ids.new_unique_id(), 1), stored_size=10, node_id=peer)
    assert objects.provide([lent], lender) == [lent.object_id]
    objects.release_unused([lent.object_id])
    objects.remove_holder(remote, driver)
    freed = objects.take_freed()
    assert freed.borrow_returns == [(lender, lent.object_id)] and freed.remote_releases == [(peer, remote)]


def test_a_copy_nothing_tracks_is_reported_for_the_store():
    objects = State().objects
    orphan = ids.new_put_id()
    objects.delete_copy(orphan)
    assert objects.take_freed().store_deletes == [orphan]
