"""Who may see the dashboard: a request carrying the cluster token, either
as `Authorization: Bearer TOKEN` (scripts) or as the session cookie that
the login form sets (browsers).

The cookie holds an HMAC of the token, not the token itself: the token
also lets its holder run code on the cluster (every RPC takes it), while
the cookie only opens this read-only UI. It is HttpOnly (no script reads
it) and SameSite=Strict (no other site's page sends it). Comparisons are
constant-time (hmac.compare_digest). Pure functions (tests/unit).
"""

from __future__ import annotations

import hashlib
import hmac

COOKIE_NAME = "ember_dashboard"
_COOKIE_CONTEXT = b"ember-dashboard-session-v1"
# A login form's body is at most this long (a token is ~43 characters).
MAX_LOGIN_BYTES = 4096


def session_cookie_value(token: str) -> str:
    return hmac.new(token.encode(), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


def authorized(authorization: str | None, cookie: str | None, token: str) -> bool:
    """Whether a request with these headers carries the token (either way)."""
    if authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and token_matches(given.strip(), token):
            return True
    if cookie:
        value = _cookie(cookie, COOKIE_NAME)
        if value is not None and hmac.compare_digest(value.encode(), session_cookie_value(token).encode()):
            return True
    return False


def login_cookie(token: str, secure: bool = False) -> str:
    """The Set-Cookie header value a successful login answers with."""
    attrs = f"{COOKIE_NAME}={session_cookie_value(token)}; Path=/; HttpOnly; SameSite=Strict"
    return attrs + ("; Secure" if secure else "")


def logout_cookie() -> str:
    return f"{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
