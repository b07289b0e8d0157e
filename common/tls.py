"""TLS for what crosses a network: every gRPC service's TCP port and the
object store's transfer data plane. Unix sockets (a node's own services,
its drivers and workers) stay plaintext: they never leave the machine.

Mutual TLS: a server requires a client certificate signed by the cluster's
CA, so a plaintext client or one of another CA is refused in the handshake,
before any handler runs; the cluster token is still checked after it.

A process's files come from `activate()` (a driver that found them in a
session directory) or else from the environment: `EMBER_TLS_CERT`,
`EMBER_TLS_KEY` and `EMBER_TLS_CA` (as Ray's `RAY_TLS_*`), which the node
launcher sets for the services it starts and they pass on to their workers.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (workers import this module and load neither unless they connect)
    import ssl

    import grpc

CERT_ENV, KEY_ENV, CA_ENV = "EMBER_TLS_CERT", "EMBER_TLS_KEY", "EMBER_TLS_CA"


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """A node's (or client's) certificate chain and key, and the CA that
    signs every certificate of the cluster (PEM files)."""

    cert: pathlib.Path
    key: pathlib.Path
    ca: pathlib.Path

    def env(self) -> dict[str, str]:
        return {CERT_ENV: str(self.cert), KEY_ENV: str(self.key), CA_ENV: str(self.ca)}

    def server_credentials(self) -> grpc.ServerCredentials:
        import grpc

        return grpc.ssl_server_credentials([(self.key.read_bytes(), self.cert.read_bytes())],
                                           root_certificates=self.ca.read_bytes(), require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        import grpc

        return grpc.ssl_channel_credentials(root_certificates=self.ca.read_bytes(),
                                            private_key=self.key.read_bytes(),
                                            certificate_chain=self.cert.read_bytes())

    def server_context(self) -> ssl.SSLContext:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(str(self.cert), str(self.key))
        return context

    def client_context(self) -> ssl.SSLContext:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


class TlsConfigError(ValueError):
    """The TLS settings are incomplete or name files that are not there."""


_lock = threading.Lock()
_activated: TlsFiles | None = None
_loaded = False
_from_env: TlsFiles | None = None


def activate(files: TlsFiles | None) -> None:
    """Use `files` for this process's connections from now on (None: what
    the environment says)."""
    global _activated
    with _lock:
        _activated = files


def active() -> TlsFiles | None:
    """The files this process's TCP connections use, or None for plaintext."""
    global _loaded, _from_env
    if _activated is not None:
        return _activated
    if not _loaded:
        with _lock:
            _from_env, _loaded = from_environment(), True
    return _from_env


def from_environment() -> TlsFiles | None:
    values = {name: os.environ.get(name, "") for name in (CERT_ENV, KEY_ENV, CA_ENV)}
    if not any(values.values()):
        return None
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise TlsConfigError(f"TLS needs {CERT_ENV}, {KEY_ENV} and {CA_ENV} together; {', '.join(missing)} not set")
    return checked(TlsFiles(pathlib.Path(values[CERT_ENV]), pathlib.Path(values[KEY_ENV]),
                            pathlib.Path(values[CA_ENV])))


def checked(files: TlsFiles) -> TlsFiles:
    for what, path in (("certificate", files.cert), ("key", files.key), ("CA certificate", files.ca)):
        if not path.is_file():
            raise TlsConfigError(f"the TLS {what} {path} does not exist")
    return files


def is_network_address(address: str) -> bool:
    """Whether a gRPC target crosses a network (unix sockets do not)."""
    return not address.startswith("unix:")
