"""What every Ember service process shares: flags, logging, the gRPC server
with the token interceptor and the standard health service, a TCP port plus
a unix socket for clients on the node, the Prometheus endpoint (its
collectors, on the same host), a ready file, and a clean stop on
SIGTERM/SIGINT or when the process that started it dies.

A service implements `Service`; its main() calls `run_service`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import pathlib
import signal
import sys
from typing import Any, Callable, NoReturn, Protocol

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ember_common import auth, ports, rpc, service_spans, tls
from ember_common.config import Config
from ember_common.metrics_server import MetricsServer, make_registry

log = logging.getLogger(__name__)


class Service(Protocol):
    """What run_service runs. A service may also have `interceptors` (server
    interceptors installed after the token check); `health` is set to the
    process's health servicer before `start`, for services that can become
    unhealthy while running.

    `request_limits` (an rpc.RequestLimits), if it has one, bounds the
    size of the requests it takes.

    Metrics: `metrics_setting` names the Config field of the service's
    default metrics port; `collectors()` gives what its /metrics serves,
    and `metrics_port` is set before `start` (0 when metrics are off)."""

    name: str
    metrics_setting: str
    metrics_port: int

    def collectors(self) -> list[Any]:
        """prometheus-client collectors reading the service's state at scrape time."""

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicers (before the server starts)."""

    async def start(self, port: int) -> None:
        """Begin background work once the server is serving on `port`."""

    async def stop(self) -> None:
        """Release everything: children, files, shared memory."""


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument("--socket", default=None, help="also listen on this unix socket path")
    parser.add_argument("--session-dir", required=True, help="session directory (logs, token, sockets)")
    parser.add_argument("--ready-file", default=None, help="write {port, pid} here once serving")
    parser.add_argument("--log-file", default=None, help="log file (default: <session-dir>/logs/<service>.log)")
    parser.add_argument("--parent-pid", type=int, default=0, help="stop when this process dies")
    parser.add_argument("--config-file", default=None, help="JSON config file (flags > EMBER_* env > file)")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="port of the Prometheus /metrics endpoint, on --host (0 picks a free one; "
                             "default: the EMBER_METRICS_<SERVICE>_PORT setting; EMBER_METRICS_ENABLED=0: none)")


def load_token(session_dir: pathlib.Path) -> str:
    token = os.environ.get(auth.TOKEN_ENV)
    if token:
        return token
    path = session_dir / "token"
    if path.exists():
        return auth.read_token(path)
    raise SystemExit(f"no cluster token: set {auth.TOKEN_ENV} or create {path}")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": record.created,
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(name: str, log_file: str | None, session_dir: pathlib.Path, json_lines: bool) -> None:
    path = pathlib.Path(log_file) if log_file else session_dir / "logs" / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(
        _JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(process)d: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


async def _start_metrics(service: Service, args: argparse.Namespace, config: Config) -> MetricsServer | None:
    """The service's /metrics endpoint on its host, or None when metrics are off."""
    service.metrics_port = 0
    if not config.metrics_enabled:
        return None
    port = args.metrics_port if args.metrics_port is not None else getattr(config, service.metrics_setting)
    server = MetricsServer(make_registry(service.collectors()), args.host, port)
    service.metrics_port = await server.start()
    return server


async def _fail_start(service: Service, error: ports.ListenError) -> NoReturn:
    """Exit naming what could not listen, after releasing what the service
    made already (a store's shared-memory directory)."""
    log.error("%s", error)
    try:
        await service.stop()
    except Exception:
        log.exception("%s: stopping after a failed start failed", service.name)
    raise SystemExit(str(error))


async def _serve(service: Service, args: argparse.Namespace, token: str, config: Config) -> None:
    server = grpc.aio.server(
        # The token first: nothing else looks at an unauthenticated call.
        interceptors=[rpc.TokenInterceptor(token), rpc.ParseRequests(getattr(service, "request_limits", None)),
                      *getattr(service, "interceptors", [])],
        options=[*rpc.CHANNEL_OPTIONS, *ports.EXCLUSIVE_PORT_OPTIONS]
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service.health = health_servicer  # services may report NOT_SERVING later (the GCS without etcd)
    service.register(server)
    files = tls.active()
    try:
        address = f"{args.host}:{args.port}"
        port = (server.add_secure_port(address, files.server_credentials()) if files
                else server.add_insecure_port(address))
    except RuntimeError:  # grpc >= 1.5x raises where it used to return 0
        port = 0
    if port == 0:
        await _fail_start(service, ports.listen_error(f"{service.name}'s gRPC port", args.host, args.port))
    socket_path = pathlib.Path(args.socket) if args.socket else None
    if socket_path:  # the node's own clients: never off the machine, so no TLS
        socket_path.unlink(missing_ok=True)
        server.add_insecure_port(f"unix:{socket_path}")
    try:
        metrics = await _start_metrics(service, args, config)
    except ports.ListenError as e:
        await _fail_start(service, e)
    await server.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(args.parent_pid, stop)) if args.parent_pid else None

    # Spans over OTLP if the OTEL_* variables ask (docs/tracing.md): the
    # service's trace_name (service.name) and trace_attributes (its node).
    service_spans.configure(getattr(service, "trace_name", f"ember-{service.name}"),
                            getattr(service, "trace_attributes", None))
    failed = False
    try:
        await service.start(port)
    except ports.ListenError as e:
        log.error("%s failed to start: %s", service.name, e)
        failed = True
        stop.set()
    except Exception:
        log.exception("%s failed to start", service.name)
        failed = True
        stop.set()
    if not failed:
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        if args.ready_file:
            tmp = pathlib.Path(args.ready_file + ".tmp")
            tmp.write_text(json.dumps({"port": port, "pid": os.getpid(), "host": args.host,
                                       "metrics_port": service.metrics_port,
                                       **getattr(service, "ready_info", dict)()}))
            tmp.rename(args.ready_file)
        log.info("%s serving on %s:%d (pid %d)", service.name, args.host, port, os.getpid())
        if metrics is not None:
            log.info("%s metrics at http://%s:%d/metrics", service.name, args.host, service.metrics_port)

    await stop.wait()
    log.info("%s stopping", service.name)
    await health_servicer.enter_graceful_shutdown()
    if watcher:
        watcher.cancel()
    try:
        await service.stop()
    finally:
        if metrics is not None:
            await metrics.stop()
        await server.stop(grace=0.5)
        await asyncio.to_thread(service_spans.shutdown)  # (what is buffered goes, off the loop)
        if socket_path:
            socket_path.unlink(missing_ok=True)
        if args.ready_file:
            pathlib.Path(args.ready_file).unlink(missing_ok=True)
    log.info("%s stopped", service.name)
    if failed:
        raise SystemExit(1)


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    # Reparenting means the starter died (even by SIGKILL): stop with it.
    while os.getppid() == parent_pid:
        await asyncio.sleep(0.25)
    log.warning("parent %d is gone; stopping", parent_pid)
    stop.set()


# A service keeps many small containers alive per task in flight (entries,
# sets, protobuf wrappers) and frees them by reference counting; cycles are
# rare. With CPython's default gen0 threshold of 700 the collector ran every
# few dozen tasks and took 10-12% of the raylet's CPU per task (in-process
# node manager, 20,000 tasks in flight); at 50,000 it takes 3-4%.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """What was loaded at start (modules, flags, stubs) is never garbage:
    out of the collector's way for good, and collections less often."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_service(make: Callable[[argparse.Namespace, Config], Service], parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """Parse flags, set up logging and run the service until told to stop."""
    args = parser.parse_args(argv)
    session_dir = pathlib.Path(args.session_dir)
    config = Config.load(args.config_file)
    service = make(args, config)
    setup_logging(service.name, args.log_file, session_dir, config.log_json)
    token = load_token(session_dir)
    tune_gc()
    try:
        asyncio.run(_serve(service, args, token, config))
    except KeyboardInterrupt:
        pass
    sys.exit(0)
