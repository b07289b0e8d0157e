"""The dashboard's HTTP transport: the stdlib's threading HTTP server (one
thread per connection; no framework), the token check before anything
else, the login form, /api/ (JSON from `api.Api`) and the static pages.

Only `GET /login` and `POST /login` answer without the token; everything
else (pages, scripts, /api/) is 401 for a request that has neither the
Bearer token nor the login cookie (a page request gets the login form
with its 401). The UI is read-only: no request changes the cluster.
"""

from __future__ import annotations

import html
import json
import logging
import mimetypes
import pathlib
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc

from ember_common import ports

from ember_dashboard import web_auth
from ember_dashboard.api import Api, ApiError

log = logging.getLogger(__name__)

STATIC_DIR = pathlib.Path(__file__).with_name("static")
_PAGES = {"/": "index.html", "/index.html": "index.html"}
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    # Everything the pages use is served from here; nothing inline but styles.
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                "script-src 'self'; frame-ancestors 'none'"),
)


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a port in use fails the start, as every Ember port

    def __init__(self, address: tuple[str, int], token: str, api: Api) -> None:
        self.token = token
        self.api = api
        try:
            super().__init__(address, _Handler)
        except OSError as e:
            raise ports.listen_error("the dashboard (--dashboard-port)", address[0], address[1], e) from None


def _login_page(message: str = "") -> bytes:
    text = (STATIC_DIR / "login.html").read_text()
    note = f'<p class="error">{html.escape(message)}</p>' if message else ""
    return text.replace("<!--message-->", note).encode()


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.1"
    # (so that a malformed request line gets a status line with its 400, not HTTP/0.9's bare body)
    default_request_version = "HTTP/1.1"
    server_version = "ember-dashboard"
    timeout = 60  # a connection idle this long is closed (a thread each: none is held forever)
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        log.debug("%s " + format, self.address_string(), *args)

    # ---- answers --------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (*_SECURITY_HEADERS, *extra):
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, default=str).encode(), "application/json")

    def _unauthorized(self, path: str) -> None:
        extra = (("WWW-Authenticate", 'Bearer realm="ember"'),)
        if path.startswith("/api/") or path in ("/api",):
            self._send(401, json.dumps({"result": False, "msg": "the cluster token is needed: "
                                        "Authorization: Bearer TOKEN, or log in at /login"}).encode(),
                       "application/json", extra)
        else:
            self._send(401, _login_page(), "text/html; charset=utf-8", extra)

    # ---- requests -------------------------------------------------------

    def _authorized(self) -> bool:
        return web_auth.authorized(self.headers.get("Authorization"), self.headers.get("Cookie"), self.server.token)

    def do_HEAD(self) -> None:  # noqa: N802 (the stdlib's name)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if path == "/login":
            self._send(200, _login_page(), "text/html; charset=utf-8")
            return
        if not self._authorized():
            self._unauthorized(path)
            return
        if path.startswith("/api/"):
            self._api(path[len("/api/"):], url.query)
        elif path in _PAGES:
            self._static(_PAGES[path])
        elif path.startswith("/static/"):
            self._static(path[len("/static/"):])
        else:
            self._send(404, f"no such page {path}\n".encode(), "text/plain; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        if path == "/login":
            self._login()
        elif path == "/logout":
            self._send(303, b"", "text/plain", (("Location", "/login"), ("Set-Cookie", web_auth.logout_cookie())))
        elif not self._authorized():
            self._unauthorized(path)
        else:
            self._send(405, b"the dashboard is read-only\n", "text/plain; charset=utf-8", (("Allow", "GET, HEAD"),))

    def _login(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 <= length <= web_auth.MAX_LOGIN_BYTES:
            self.close_connection = True  # (its body is not read)
            self._send(400, _login_page("The form was too long or malformed."), "text/html; charset=utf-8")
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        if not given or not web_auth.token_matches(given, self.server.token):
            self._send(401, _login_page("That is not this cluster's token."), "text/html; charset=utf-8")
            return
        self._send(303, b"", "text/plain", (("Location", "/"), ("Set-Cookie", web_auth.login_cookie(self.server.token))))

    def _api(self, path: str, query_text: str) -> None:
        try:
            query = urllib.parse.parse_qs(query_text, keep_blank_values=True, max_num_fields=100)
            self._json(200, self.server.api.answer(path, query))
        except ApiError as e:
            self._json(e.status, {"result": False, "msg": str(e)})
        except ValueError as e:  # too many query fields
            self._json(400, {"result": False, "msg": str(e)})
        except grpc.RpcError as e:
            self._json(503, {"result": False, "msg": f"the cluster did not answer: {e.code().name}: {e.details()}"})
        except Exception:
            log.exception("answering /api/%s failed", path)
            self._json(500, {"result": False, "msg": "the dashboard failed answering; see its log"})

    def _static(self, name: str) -> None:
        file = (STATIC_DIR / name).resolve()
        if file.parent != STATIC_DIR.resolve() or not file.is_file():
            self._send(404, f"no such file {name}\n".encode(), "text/plain; charset=utf-8")
            return
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self._send(200, file.read_bytes(), content_type)
