import os

import pytest

from ember._private import ids
from ember._private.service import InvalidArgument, ResourceExhausted
from ember_objectstore.shm_store import ShmStore


@pytest.fixture
def store(tmp_path):
    s = ShmStore(tmp_path / "store", capacity=1000)
    yield s
    s.close()


def test_create_seal_locate_delete(store):
    oid = ids.new_put_id()
    path = store.create(oid, 100)
    assert path.name.endswith(".unsealed") and os.path.getsize(path) == 100
    assert store.locate(oid) is None  # not visible until sealed
    sealed = store.seal(oid)
    assert sealed.exists() and not path.exists()
    assert store.locate(oid).size == 100
    assert store.used == 100
    assert store.delete([oid, ids.new_put_id()]) == 1
    assert store.used == 0 and not sealed.exists()


def test_capacity_errors_say_the_sizes(store):
    with pytest.raises(ResourceExhausted, match="can never fit.*1000"):
        store.create(ids.new_put_id(), 5000)
    store.create(ids.new_put_id(), 900)
    with pytest.raises(ResourceExhausted, match="full"):
        store.create(ids.new_put_id(), 200)


def test_bad_ids_and_sizes(store):
    with pytest.raises(InvalidArgument, match="20 bytes"):
        store.create(b"short", 10)
    with pytest.raises(InvalidArgument, match="positive"):
        store.create(ids.new_put_id(), 0)
    oid = ids.new_put_id()
    store.create(oid, 10)
    with pytest.raises(FileExistsError):
        store.create(oid, 10)


def test_abort_frees(store):
    oid = ids.new_put_id()
    store.create(oid, 10)
    store.abort(oid)
    assert store.used == 0 and store.num_unsealed == 0


def test_close_removes_directory(tmp_path):
    s = ShmStore(tmp_path / "d", capacity=100)
    s.seal_id = s.create(ids.new_put_id(), 10)
    s.close()
    assert not (tmp_path / "d").exists()
