"""Node-to-node object transfer throughput on loopback, against plain TCP.

A two-node cluster on this machine (`ember.cluster_utils.Cluster`): a task
pinned to the second node returns a numpy array of 1 MB, 100 MB or 1 GB,
which lands in that node's object store; the driver, on the head node, then
times `ember.get` of it: the head's store pulls it over gRPC from the other
store, and the driver maps it zero-copy. The baseline is loopback TCP between
two processes of this machine: one `sendall`s the same number of bytes from a
preallocated buffer, the other `recv_into`s a preallocated buffer.

    python bench/transfer.py [--repeat N] [--max-size BYTES] [--warm-memory-gb G]

Prints one JSON line per size (median of the rounds, GB/s = 1e9 bytes/s) and
a summary line. Goal (transfer issue): at least 70% of loopback TCP for large
objects (100 MB and up).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pathlib
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import ember  # noqa: E402
from ember.cluster_utils import Cluster  # noqa: E402

# (size, default rounds): fewer rounds where one round moves more bytes.
SIZES = [(10**6, 10), (10**8, 5), (10**9, 3)]
STORE_BYTES = 3 << 30  # per node: room for a 1 GB object plus a stale copy


def warm_memory(gb: float) -> None:
    """Touch `gb` GB once in a throwaway process. On this kind of VM the first
    touch of guest memory costs ~0.4 GB/s and later ones ~7 GB/s (see
    README), so without it the first large rounds measure the hypervisor."""
    if gb > 0:
        code = ("import mmap\nn = int(%r * 1e9)\nm = mmap.mmap(-1, n)\nc = b'\\1' * (1 << 20)\n"
                "for o in range(0, n - len(c) + 1, len(c)):\n    m[o:o + len(c)] = c\n" % gb)
        subprocess.run([sys.executable, "-c", code], check=False)


def tcp_receiver(listener: socket.socket, max_size: int) -> None:
    """The receiving process: for each round, read an 8-byte length, then
    that many bytes into one preallocated buffer, then ack with one byte."""
    buf = memoryview(np.ones(max_size, dtype=np.uint8))  # touched up front, then reused every round
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        head = conn.recv(8, socket.MSG_WAITALL)
        if len(head) < 8:
            return
        n, = struct.unpack("!Q", head)
        got = 0
        while got < n:
            r = conn.recv_into(buf[got:n])
            if r == 0:
                return
            got += r
        conn.sendall(b"k")


def tcp_rounds(conn: socket.socket, size: int, rounds: int) -> list[float]:
    """Seconds per round, from the first byte sent to the receiver's ack."""
    data = memoryview(np.ones(size, dtype=np.uint8))
    times = []
    for _ in range(rounds + 1):  # round 0 is a warm-up
        t = time.perf_counter()
        conn.sendall(struct.pack("!Q", size))
        conn.sendall(data)
        if conn.recv(1) != b"k":
            raise RuntimeError("the TCP receiver went away")
        times.append(time.perf_counter() - t)
    return times[1:]


@ember.remote(resources={"far": 1}, num_returns=2)
def produce(n: int) -> tuple[int, np.ndarray]:
    # The small first return comes back inline: getting it tells the driver
    # the task is done (and the array stored on its node) without a pull.
    return 0, np.ones(n, dtype=np.uint8)


def ember_rounds(size: int, rounds: int) -> list[float]:
    """Seconds per `ember.get` of an array that sits on the other node."""
    times = []
    for _ in range(rounds + 1):  # round 0 is a warm-up (channels, workers)
        marker, big = produce.remote(size)
        ember.get(marker)
        t = time.perf_counter()
        arr = ember.get(big)
        times.append(time.perf_counter() - t)
        if arr.nbytes != size or arr[0] != 1 or arr[-1] != 1:
            raise RuntimeError(f"got a wrong array: {arr.nbytes} bytes")
        # Drop both copies before the next round, so the stores do not fill.
        del arr, big, marker
        time.sleep(0.2)
    return times[1:]


def gbps(size: int, times: list[float]) -> float:
    return size / statistics.median(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=None, help="rounds per size (default 10, 5, 3 for 1 MB, 100 MB, 1 GB)")
    ap.add_argument("--max-size", type=int, default=10**9, help="largest object size in bytes (default 1e9)")
    ap.add_argument("--warm-memory-gb", type=float, default=6.0, help="touch this much memory first (0 = off)")
    a = ap.parse_args()
    sizes = [(s, a.repeat or r) for s, r in SIZES if s <= a.max_size]
    # Each round holds the object twice in /dev/shm (one copy per node); keep room for a stale pair.
    free = shutil.disk_usage("/dev/shm").free
    while sizes and 4 * sizes[-1][0] > free:
        print(f"[transfer] note: /dev/shm has {free / 1e9:.1f} GB free, too little for "
              f"{sizes[-1][0] / 1e9:g} GB objects; skipping that size", file=sys.stderr)
        sizes.pop()
    if not sizes:
        sys.exit("no size to run")
    max_size = sizes[-1][0]
    warm_memory(a.warm_memory_gb)

    listener = socket.create_server(("127.0.0.1", 0))
    # spawn, not fork: a fresh receiver process with nothing of the driver's.
    receiver = mp.get_context("spawn").Process(target=tcp_receiver, args=(listener, max_size), daemon=True)
    receiver.start()
    cluster: Cluster | None = None
    conn: socket.socket | None = None
    results = []
    try:
        conn = socket.create_connection(listener.getsockname())
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": STORE_BYTES})
        cluster.add_node(num_cpus=1, resources={"far": 1}, object_store_memory=STORE_BYTES)
        cluster.connect()
        for size, rounds in sizes:
            # TCP right before Ember, size by size, so a change in load hits both.
            tcp = tcp_rounds(conn, size, rounds)
            emb = ember_rounds(size, rounds)
            line = {"size_bytes": size, "ember_gbps": round(gbps(size, emb), 3), "tcp_gbps": round(gbps(size, tcp), 3),
                    "ratio": round(gbps(size, emb) / gbps(size, tcp), 3), "rounds": rounds,
                    "ember_runs_s": [round(t, 4) for t in emb], "tcp_runs_s": [round(t, 4) for t in tcp]}
            results.append(line)
            print(json.dumps(line), flush=True)
    finally:
        if cluster is not None:
            cluster.shutdown()
        if conn is not None:
            conn.close()  # the receiver sees EOF and returns
        receiver.join(5)
        if receiver.is_alive():
            receiver.terminate()
            receiver.join(5)
        listener.close()
    large = [r for r in results if r["size_bytes"] >= 10**8]
    print(json.dumps({"summary": "object transfer between two nodes on loopback vs loopback TCP",
                      "goal": ">= 0.7 of TCP for objects >= 100 MB",
                      "ratios": {str(r["size_bytes"]): r["ratio"] for r in results},
                      "met": bool(large) and all(r["ratio"] >= 0.7 for r in large),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
