"""The raylet's KV reads for workers: one fetch per key, immutable entries
cached within a byte bound."""

from ember.v1 import raylet_pb2

from ember_raylet.client_session import WORKER, ClientSession
from ember_raylet.kv_cache import KvCache


def session() -> ClientSession:
    return ClientSession(b"c" * 16, WORKER)


def test_concurrent_readers_share_one_fetch():
    cache, a, b = KvCache(), session(), session()
    assert cache.wait("fn", b"k", a) is True   # a asks the GCS
    assert cache.wait("fn", b"k", b) is False  # b waits for a's answer
    entry = raylet_pb2.KvEntry(namespace="fn", key=b"k", found=True, value=b"v")
    assert cache.resolve(entry) == [a, b]
    assert cache.get("fn", b"k") == entry
    assert cache.wait("fn", b"k", a) is True   # after an answer, a new read asks again


def test_only_found_immutable_entries_are_cached_within_the_bound():
    cache = KvCache(max_bytes=10)
    for ns, key, found, value in [("job", b"j", True, b"x"), ("fn", b"missing", False, b""),
                                  ("fn", b"a", True, b"123456"), ("fn", b"b", True, b"123456")]:
        cache.resolve(raylet_pb2.KvEntry(namespace=ns, key=key, found=found, value=value))
    assert cache.get("job", b"j") is None  # mutable namespace: always asked
    assert cache.get("fn", b"missing") is None
    assert cache.get("fn", b"a") is None  # evicted: 12 bytes > 10
    assert cache.get("fn", b"b").value == b"123456"
