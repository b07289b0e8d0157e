"""The receiving end of the store's data plane without a store: a range
lands at its offset in the object's file, by splice and by the copying
fallback; a source that stops early or goes quiet is an error that says so."""

import os
import socket

import pytest

from ember_common.errors import Unavailable
from ember_objectstore import transfer


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "object"
    path.write_bytes(b"\0" * 100)
    fd = os.open(path, os.O_WRONLY)
    yield path, fd
    os.close(fd)


@pytest.mark.parametrize("receive", [transfer._splice_range, transfer._copy_range])
def test_a_range_lands_at_its_offset(target, receive):
    path, fd = target
    source, sink = socket.socketpair()
    payload = os.urandom(60)
    source.sendall(payload)
    source.close()
    with sink:
        receive(sink, fd, 20, 60, "object x")
    assert path.read_bytes() == b"\0" * 20 + payload + b"\0" * 20


@pytest.mark.parametrize("receive", [transfer._splice_range, transfer._copy_range])
def test_a_source_that_stops_early_is_an_error(target, receive):
    _, fd = target
    source, sink = socket.socketpair()
    source.sendall(b"x" * 30)
    source.close()
    with sink, pytest.raises(Unavailable, match="closed after 30 of 60 bytes"):
        receive(sink, fd, 0, 60, "object x")


def test_a_source_that_goes_quiet_times_out(target, monkeypatch):
    _, fd = target
    monkeypatch.setattr(transfer, "_TIMEOUT_S", 0.2)
    source, sink = socket.socketpair()
    with source, sink, pytest.raises(Unavailable, match="nothing came for 0.2 s after 0 of 60 bytes"):
        transfer._splice_range(sink, fd, 0, 60, "object x")
