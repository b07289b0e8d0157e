"""A service's Prometheus endpoint: `GET /metrics` over a minimal HTTP/1.1
server on the service's own event loop.

On the loop, not in prometheus-client's server thread: collectors read the
service's state (task tables, node tables) at scrape time, and that state is
only consistent on the loop that changes it. So nothing on a hot path
updates a metric for a scrape's sake, and no lock guards what is read.
A scrape costs the loop what the collectors take (a pass over the tables).

The body is the classic text format (0.0.4), which every Prometheus reads.
The registry is a fresh `CollectorRegistry` per service (never the
process-wide default, which libraries may fill): the service's collectors,
and prometheus-client's standard `process_*` metrics (CPU, memory, fds).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterable

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from ember_common import ports

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
_MAX_HEADER_BYTES = 16 * 1024
_READ_TIMEOUT_S = 10.0


def make_registry(collectors: Iterable[Collector]) -> CollectorRegistry:
    """A registry with the standard process metrics and `collectors`."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    for collector in collectors:
        registry.register(collector)
    return registry


class MetricsServer:
    """Serves `registry` at http://host:port/metrics; any other path is 404."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        """Bind and serve; the port (chosen by the system when asked for 0).
        Raises ports.ListenError naming the address and why when it cannot
        listen there (the service must not start without its endpoint)."""
        try:
            self._server = await asyncio.start_server(self._serve, self._host, self._port,
                                                      limit=_MAX_HEADER_BYTES)
        except OSError as e:
            raise ports.listen_error("the metrics endpoint (--metrics-port)", self._host, self._port, e) from None
        self._port = self._server.sockets[0].getsockname()[1]
        return self._port

    @property
    def port(self) -> int:
        return self._port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split(" ")
            if len(parts) != 3:
                writer.write(_response(400, "Bad Request", b"malformed request line\n"))
                return
            method, target, _version = parts
            path = target.split("?", 1)[0]
            if path != METRICS_PATH:
                writer.write(_response(404, "Not Found", f"no such path {path!r}; metrics are at {METRICS_PATH}\n"
                                       .encode()))
            elif method not in ("GET", "HEAD"):
                writer.write(_response(405, "Method Not Allowed", b"GET or HEAD\n", ("Allow: GET, HEAD",)))
            else:
                body = generate_latest(self._registry)
                writer.write(_response(200, "OK", body if method == "GET" else b"", content_type=CONTENT_TYPE_PLAIN_0_0_4,
                                       length=len(body)))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            pass  # the client went away, never finished its request, or sent too much
        except Exception:
            log.exception("serving a metrics request failed")
            writer.write(_response(500, "Internal Server Error", b"collecting metrics failed; see the service log\n"))
        finally:
            writer.close()


def _response(status: int, reason: str, body: bytes, extra: tuple[str, ...] = (),
              content_type: str = "text/plain; charset=utf-8", length: int | None = None) -> bytes:
    headers = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
               f"Content-Length: {len(body) if length is None else length}", "Connection: close", *extra]
    return ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body
