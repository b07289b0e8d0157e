"""Sealed frames (services/objectstore/sealed_frames.py), without sockets:
a range round-trips; any altered, reordered, replayed, dropped or
misdirected frame, and a message without its last frame, is refused; the
frame counter runs on across the messages of a connection."""

from __future__ import annotations

import os

import pytest

from ember_objectstore import sealed_frames as sf
from ember_objectstore.sealed_frames import Kind

OBJECT = b"\x07" * 20
DOWN = sf.SOURCE_TO_PULLER


def _seal(sealer: sf.Sealer, data: bytes, kind: Kind = Kind.DATA, about: bytes = b"") -> list[bytes]:
    sealer.begin(kind, len(data), about)
    out = memoryview(bytearray(sf.HEADER.size + sf.FRAME_BYTES + sf.TAG_BYTES))
    view = memoryview(data)
    frames = []
    while not sealer.done:
        frames.append(bytes(sealer.seal(view[sealer.pos:sealer.pos + sf.FRAME_BYTES], out)))
    return frames


def _frames(data: bytes, key: bytes, object_id: bytes = OBJECT, offset: int = 0) -> list[bytes]:
    return _seal(sf.Sealer(key, DOWN), data, Kind.DATA, sf.range_binding(object_id, offset, len(data)))


def _open(opener: sf.Opener, frames: list[bytes], count: int, kind: Kind = Kind.DATA, about: bytes = b"") -> bytes:
    opener.begin(kind, count, about)
    plain = memoryview(bytearray(sf.FRAME_BYTES))
    got = b""
    for frame in frames:
        size = opener.expect(frame[:sf.HEADER.size])
        n = opener.open(memoryview(frame)[sf.HEADER.size:sf.HEADER.size + size], plain)
        got += bytes(plain[:n])
    if not opener.done:
        raise sf.SealedFrameError("no last frame")
    return got


def _open_all(frames: list[bytes], key: bytes, count: int, object_id: bytes = OBJECT, offset: int = 0,
              direction: int = DOWN) -> bytes:
    return _open(sf.Opener(key, direction), frames, count, Kind.DATA, sf.range_binding(object_id, offset, count))


@pytest.fixture
def key() -> bytes:
    return sf.derive_key(sf.new_random(), sf.new_random(), DOWN)


@pytest.mark.parametrize("size", [0, 1, sf.FRAME_BYTES, 2 * sf.FRAME_BYTES + 5])
def test_a_range_round_trips_and_ends_with_one_last_frame(key, size):
    data = os.urandom(size)
    frames = _frames(data, key)
    assert len(frames) == max(1, -(-size // sf.FRAME_BYTES))
    assert [f[sf.HEADER.size - 1] for f in frames] == [0] * (len(frames) - 1) + [sf.LAST]
    assert _open_all(frames, key, size) == data


def test_keys_differ_per_connection_and_direction():
    a, b = sf.new_random(), sf.new_random()
    assert sf.derive_key(a, b, DOWN) == sf.derive_key(a, b, DOWN)
    assert len({sf.derive_key(a, b, DOWN), sf.derive_key(b, a, DOWN), sf.derive_key(a, b, sf.PULLER_TO_SOURCE),
                sf.derive_key(a, sf.new_random(), DOWN)}) == 4
    with pytest.raises(sf.SealedFrameError):
        sf.derive_key(a[:16], b, DOWN)


def _flip(frame: bytes, i: int) -> bytes:
    return frame[:i] + bytes([frame[i] ^ 0x80]) + frame[i + 1:]


def test_altered_reordered_replayed_or_dropped_frames_are_refused(key):
    data = os.urandom(3 * sf.FRAME_BYTES)
    frames = _frames(data, key)
    cases = {
        "ciphertext": [frames[0], _flip(frames[1], 100), frames[2]],
        "tag": [frames[0], _flip(frames[1], len(frames[1]) - 1), frames[2]],
        "reordered": [frames[1], frames[0], frames[2]],
        "replayed": [frames[0], frames[0], frames[1], frames[2]],
        "dropped": [frames[0], frames[2]],
        "truncated": frames[:2],
        "last flag forged": [frames[0], frames[1][:4] + bytes([sf.LAST]) + frames[1][5:]],
        "length forged": [frames[0], sf.HEADER.pack(1000, 0) + frames[1][sf.HEADER.size:]],
    }
    for name, sequence in cases.items():
        with pytest.raises(sf.SealedFrameError):
            _open_all(sequence, key, len(data))
            pytest.fail(f"{name}: accepted")


def test_frames_are_bound_to_their_key_object_and_range(key):
    data = os.urandom(1000)
    frames = _frames(data, key, offset=4096)
    for other in [dict(key=sf.derive_key(sf.new_random(), sf.new_random(), DOWN)), dict(object_id=b"\x08" * 20),
                  dict(offset=0), dict(direction=sf.PULLER_TO_SOURCE)]:
        args = {"key": key, "object_id": OBJECT, "offset": 4096, "direction": DOWN, **other}
        with pytest.raises(sf.SealedFrameError, match="failed authentication"):
            _open_all(frames, args["key"], len(data), args["object_id"], args["offset"], args["direction"])
    with pytest.raises(sf.SealedFrameError, match="malformed frame header"):  # another length: a header that cannot fit
        _open_all(frames, key, len(data) - 1, OBJECT, 4096)


def test_the_opener_refuses_frames_out_of_turn(key):
    frames = _frames(b"abc", key)
    about = sf.range_binding(OBJECT, 0, 3)
    with pytest.raises(sf.SealedFrameError, match="out of turn"):  # no message begun
        sf.Opener(key, DOWN).expect(frames[0][:sf.HEADER.size])
    opener = sf.Opener(key, DOWN)
    opener.begin(Kind.DATA, 3, about)
    with pytest.raises(sf.SealedFrameError, match="without its header"):
        opener.open(memoryview(frames[0][sf.HEADER.size:]), memoryview(bytearray(3)))
    size = opener.expect(frames[0][:sf.HEADER.size])
    with pytest.raises(sf.SealedFrameError, match="announced"):
        opener.open(memoryview(frames[0][sf.HEADER.size:sf.HEADER.size + size - 1]), memoryview(bytearray(3)))
    with pytest.raises(sf.SealedFrameError, match="out of turn"):
        twice = sf.Opener(key, DOWN)
        twice.begin(Kind.DATA, 3, about)
        twice.expect(frames[0][:sf.HEADER.size])
        twice.expect(frames[0][:sf.HEADER.size])
    unknown_flag = sf.Opener(key, DOWN)
    unknown_flag.begin(Kind.DATA, 3, about)
    with pytest.raises(sf.SealedFrameError, match="malformed"):
        unknown_flag.expect(sf.HEADER.pack(3, 0x04 | sf.LAST))


def test_messages_on_one_connection_count_on_and_are_bound_to_their_kind(key):
    """A connection reused for several ranges: REPLY then DATA, again and
    again, one counter. A frame from an earlier message replayed later, a
    REPLY taken for DATA, or a message begun before the last one ended, is
    refused."""
    sealer, opener = sf.Sealer(key, DOWN), sf.Opener(key, DOWN)
    about = sf.range_binding(OBJECT, 0, 100)
    first_reply = _seal(sealer, b"reply-1", Kind.REPLY, about)
    first_data = _seal(sealer, b"d" * 100, Kind.DATA, about)
    assert _open(opener, first_reply, 7, Kind.REPLY, about) == b"reply-1"
    assert _open(opener, first_data, 100, Kind.DATA, about) == b"d" * 100
    second_reply = _seal(sealer, b"reply-2", Kind.REPLY, about)
    assert sealer.seq == opener.seq + 1 == 3
    replayed = sf.Opener(key, DOWN)
    _open(replayed, first_reply, 7, Kind.REPLY, about)
    _open(replayed, first_data, 100, Kind.DATA, about)
    with pytest.raises(sf.SealedFrameError, match="failed authentication"):  # the first reply again, as the third frame
        _open(replayed, first_reply, 7, Kind.REPLY, about)
    with pytest.raises(sf.SealedFrameError, match="failed authentication"):  # a REPLY where DATA was expected
        _open(opener, second_reply, 7, Kind.DATA, about)
    sealer.begin(Kind.DATA, 10, about)
    with pytest.raises(sf.SealedFrameError, match="began before"):
        sealer.begin(Kind.REPLY, 7, about)
