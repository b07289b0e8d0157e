"""Binary identifiers: random ids from a shared buffer stay unique across
threads and forks, and a task id says whether it is an actor call."""

import os
import threading

from ember_common import ids


def test_ids_are_unique_across_threads_and_many_buffers():
    seen: list[list[bytes]] = [[] for _ in range(4)]

    def make(out: list[bytes]) -> None:
        out.extend(ids.new_unique_id() for _ in range(5000))  # ~20 buffers of 256 ids

    threads = [threading.Thread(target=make, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in seen for i in out]
    assert len(set(every)) == len(every) == 20000
    assert all(len(i) == ids.UNIQUE_ID_SIZE for i in every)


def test_a_forked_child_does_not_hand_out_its_parents_next_ids():
    ids.new_unique_id()  # (a buffer is half used when the process forks)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, b"".join(ids.new_unique_id() for _ in range(8)))
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 8 * ids.UNIQUE_ID_SIZE)
    os.close(read)
    os.close(write)
    parent = b"".join(ids.new_unique_id() for _ in range(8))
    chunks = lambda b: {b[i:i + ids.UNIQUE_ID_SIZE] for i in range(0, len(b), ids.UNIQUE_ID_SIZE)}
    assert len(child) == 8 * ids.UNIQUE_ID_SIZE and not chunks(child) & chunks(parent)


def test_a_task_id_says_whether_it_is_an_actor_call():
    assert not any(ids.is_actor_call(ids.new_task_id()) for _ in range(2000))
    assert all(ids.is_actor_call(ids.new_task_id(actor_call=True)) for _ in range(2000))
    assert ids.task_id_of(ids.object_id_for(b"t" * 16, 3)) == b"t" * 16
    assert ids.index_of(ids.object_id_for(b"t" * 16, 3)) == 3
