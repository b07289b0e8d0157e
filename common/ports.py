"""Listening ports: a port another process holds is an error at start,
named, never shared. (gRPC servers set SO_REUSEPORT by default, so two
clusters could both listen on one port and calls would reach either at
random; every Ember listener turns it off.)"""

from __future__ import annotations

import errno
import socket

# Server options that make a bound port this process's alone.
EXCLUSIVE_PORT_OPTIONS = [("grpc.so_reuseport", 0)]


class ListenError(Exception):
    """A service cannot listen where it was told to."""


def listen_error(what: str, host: str, port: int, error: OSError | None = None) -> ListenError:
    """The error for `what` (e.g. "ember-gcs's gRPC port") failing to listen
    on host:port. Without the OSError (gRPC does not give it), the reason is
    found by trying to bind the address once more."""
    if error is None:
        error = _bind_error(host, port)
    code = error.errno if error is not None else None
    if code == errno.EADDRINUSE:
        reason = "the port is in use by another process (another cluster? `ember stop` stops those `ember start` made)"
    elif code == errno.EADDRNOTAVAIL:
        reason = f"{host} is not an address of this machine"
    elif code == errno.EACCES:
        reason = "permission denied (ports below 1024 need privileges)"
    elif error is not None:
        reason = error.strerror or str(error)
    else:
        reason = "the address cannot be bound"
    return ListenError(f"{what} cannot listen on {host}:{port}: {reason}")


def _bind_error(host: str, port: int) -> OSError | None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        return e
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as e:
            return e
    return None
