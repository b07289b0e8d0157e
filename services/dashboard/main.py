"""ember-dashboard: the web UI's process (started by `ember start --head`).

A plain threaded HTTP server, not an asyncio service: it serves no RPCs,
and its answers come from the blocking StateClient the CLI uses. It stops
on SIGTERM/SIGINT, or when the process that started it dies.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import signal
import sys
import threading
import time

from ember_common import ports
from ember_common.config import Config
from ember_common.service import load_token, setup_logging
from ember_common.state_client import StateClient

from ember_dashboard.api import Api
from ember_dashboard.http_server import DashboardServer

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember-dashboard", description=__doc__)
    parser.add_argument("--host", default=None, help="address to bind (default EMBER_DASHBOARD_HOST: loopback)")
    parser.add_argument("--port", type=int, default=None,
                        help="HTTP port (default EMBER_DASHBOARD_PORT: 8265; 0 picks a free one)")
    parser.add_argument("--gcs-address", required=True, help="the GCS (host:port, or unix:PATH on the head)")
    parser.add_argument("--session-dir", required=True, help="session directory (token, logs)")
    parser.add_argument("--ready-file", default=None, help="write {port, pid, host} here once serving")
    parser.add_argument("--log-file", default=None, help="log file (default: <session-dir>/logs/dashboard.log)")
    parser.add_argument("--parent-pid", type=int, default=0, help="stop when this process dies")
    parser.add_argument("--config-file", default=None, help="JSON config file (flags > EMBER_* env > file)")
    return parser


def _watch_parent(parent_pid: int, server: DashboardServer) -> None:
    while os.getppid() == parent_pid:  # reparented: the starter died
        time.sleep(0.25)
    log.warning("parent %d is gone; stopping", parent_pid)
    server.shutdown()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    session_dir = pathlib.Path(args.session_dir)
    config = Config.load(args.config_file)
    setup_logging("dashboard", args.log_file, session_dir, config.log_json)
    token = load_token(session_dir)
    host = args.host if args.host is not None else config.dashboard_host
    port = args.port if args.port is not None else config.dashboard_port
    state = StateClient(args.gcs_address, token)
    try:
        server = DashboardServer((host, port), token, Api(state))
    except ports.ListenError as e:
        log.error("%s", e)
        raise SystemExit(str(e)) from None
    port = server.server_address[1]

    def stop(*_: object) -> None:  # (shutdown waits for serve_forever: not on its thread)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid, server), daemon=True).start()
    if args.ready_file:
        tmp = pathlib.Path(args.ready_file + ".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": os.getpid(), "host": host}))
        tmp.rename(args.ready_file)
    log.info("dashboard serving on http://%s:%d (pid %d)", host, port, os.getpid())
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        state.close()
        if args.ready_file:
            pathlib.Path(args.ready_file).unlink(missing_ok=True)
        log.info("dashboard stopped")
    sys.exit(0)


if __name__ == "__main__":
    main()
