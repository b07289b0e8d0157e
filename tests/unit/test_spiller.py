"""Spilling when the disk fills: the store's room-making stops and says
why, and the object it could not copy stays whole in memory. A real store
directory and a real (tiny) tmpfs for the spill directory."""

from __future__ import annotations

import asyncio
import pathlib
import subprocess

import pytest

from ember_common import ids
from ember_common.errors import ResourceExhausted
from ember_objectstore.reader_leases import ReaderLeases
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller
from ember_objectstore.store import ObjectStore

MB = 1 << 20


@pytest.fixture
def tiny_disk(tmp_path):
    path = tmp_path / "spill"
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
    yield path
    subprocess.run(["umount", str(path)], check=True)


def _put(shm: ShmStore, fill: int) -> bytes:
    object_id = ids.object_id_for(ids.new_unique_id(), 1)
    shm.view(shm.create(object_id, 4 * MB))[:] = bytes([fill]) * (4 * MB)
    shm.seal(object_id)
    return object_id


@pytest.mark.parametrize("check_first", [True, False])
def test_a_full_disk_stops_spilling_with_the_reason_and_keeps_the_object(tmp_path, tiny_disk, check_first):
    shm = ShmStore(tmp_path / "store", 8 * MB)
    spiller = Spiller(shm, tiny_disk / "spill-1", fs_capacity_threshold=0.95)
    if not check_first:  # the disk fills past the check (another writer): the copy itself fails
        spiller._disk_refusal = lambda size: ""
    store = ObjectStore(shm, spiller, ReaderLeases(shm, tmp_path / "leases"))
    first, second = _put(shm, 1), _put(shm, 2)
    asyncio.run(store.create(ids.object_id_for(ids.new_unique_id(), 1), 4 * MB))  # 4 MB of 6 to disk
    assert list(spiller.spilled) == [first]
    with pytest.raises(ResourceExhausted) as error:
        asyncio.run(store.create(ids.object_id_for(ids.new_unique_id(), 1), 4 * MB))  # 8 of 6: no
    why = "local_fs_capacity_threshold of 95%" if check_first else "No space left on device"
    assert why in str(error.value) and "nothing more can be spilled" in str(error.value)
    assert list(spiller.spilled) == [first] and shm.locate(second) is not None
    assert bytes(shm.view(shm.locate(second))) == bytes([2]) * (4 * MB)
    assert not list((tiny_disk / "spill-1").glob("*.partial"))  # the failed copy is gone
