"""The cluster token: made by the head, stored 0600 in the session
directory, carried by every RPC (see `rpc` for the gRPC side: the server
interceptor that checks it and the client channels that attach it).

No gRPC import here: a worker process needs the token, not gRPC.
"""

from __future__ import annotations

import os
import pathlib
import secrets

TOKEN_ENV = "EMBER_AUTH_TOKEN"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_token(path: pathlib.Path, token: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)


def read_token(path: pathlib.Path) -> str:
    return path.read_text().strip()
