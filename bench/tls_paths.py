"""What each way of moving bytes over TLS costs, one process sending to
another over loopback (no Ember services): plain sockets, Python's ssl
(TLS 1.3 with its default AES-256-GCM, and TLS 1.2 with AES-128-GCM), and
the sealed frames the object store's TLS data plane uses after its
handshake (services/objectstore/sealed_frames.py).

    python bench/tls_paths.py [--size BYTES] [--rounds N] [--invocations K]

Per way: the best round's rate and the CPU seconds per GB each side spent
in it (user + system; on a shared machine CPU is the steadier figure).
The receiver reads into a preallocated, touched buffer, as a store's arena.
"""

from __future__ import annotations

import argparse
import json
import mmap
import multiprocessing as mp
import os
import pathlib
import resource
import socket
import ssl
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ember._private import certificates  # noqa: E402
from ember_common.tls import TlsFiles  # noqa: E402
from ember_objectstore import sealed_frames as sf  # noqa: E402

WAYS = ("plain", "tls13-aes256", "tls12-aes128", "sealed-frames")


def _context(files: TlsFiles, server: bool, way: str) -> ssl.SSLContext:
    context = files.server_context() if server else files.client_context()
    if way == "tls12-aes128":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    return context


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _fill(conn: socket.socket, view: memoryview) -> None:
    filled = 0
    while filled < len(view):
        got = conn.recv_into(view[filled:filled + (8 << 20)])
        if not got:
            raise EOFError
        filled += got


def _receive(conn: socket.socket, way: str, view: memoryview, key: bytes) -> None:
    if way != "sealed-frames":
        _fill(conn, view)
        return
    opener = sf.Opener(key, sf.SOURCE_TO_PULLER)
    opener.begin(sf.Kind.DATA, len(view), sf.range_binding(bytes(20), 0, len(view)))
    sealed = memoryview(bytearray(sf.FRAME_BYTES + sf.TAG_BYTES))
    header = memoryview(bytearray(sf.HEADER.size))
    while not opener.done:
        _fill(conn, header)
        frame = sealed[:opener.expect(bytes(header))]
        _fill(conn, frame)
        opener.open(frame, view[opener.pos:opener.pos + sf.FRAME_BYTES])


def _send(conn: socket.socket, way: str, data: memoryview, key: bytes) -> None:
    if way != "sealed-frames":
        conn.sendall(data)
        return
    sealer = sf.Sealer(key, sf.SOURCE_TO_PULLER)
    sealer.begin(sf.Kind.DATA, len(data), sf.range_binding(bytes(20), 0, len(data)))
    out = memoryview(bytearray(sf.HEADER.size + sf.FRAME_BYTES + sf.TAG_BYTES))
    while not sealer.done:
        conn.sendall(sealer.seal(data[sealer.pos:sealer.pos + sf.FRAME_BYTES], out))


def _receiver(listener: socket.socket, files: TlsFiles, way: str, size: int, rounds: int, key: bytes,
              results: mp.Queue) -> None:
    arena = mmap.mmap(-1, size)
    arena[:] = bytes(size)  # touched, as a warm arena
    conn, _ = listener.accept()
    if way.startswith("tls"):
        conn = _context(files, True, way).wrap_socket(conn, server_side=True)
    with conn, memoryview(arena) as view:
        for _ in range(rounds):
            start = _cpu()
            _receive(conn, way, view, key)
            conn.sendall(b"k")
            results.put(_cpu() - start)


def run(files: TlsFiles, way: str, size: int, rounds: int) -> dict[str, object]:
    key = sf.derive_key(sf.new_random(), sf.new_random(), sf.SOURCE_TO_PULLER)
    listener = socket.create_server(("127.0.0.1", 0))
    results: mp.Queue = mp.get_context("fork").Queue()
    receiver = mp.get_context("fork").Process(target=_receiver,
                                              args=(listener, files, way, size, rounds, key, results))
    receiver.start()
    source = mmap.mmap(-1, size)
    source[:] = os.urandom(1 << 20) * (size >> 20) + os.urandom(size % (1 << 20))
    conn = socket.create_connection(listener.getsockname())
    if way.startswith("tls"):
        conn = _context(files, False, way).wrap_socket(conn, server_hostname="127.0.0.1")
    measured = []
    with conn, memoryview(source) as data:
        for _ in range(rounds):
            start, cpu = time.perf_counter(), _cpu()
            _send(conn, way, data, key)
            if conn.recv(1) != b"k":
                raise RuntimeError("the receiver went away")
            measured.append((size / (time.perf_counter() - start) / 1e9, (_cpu() - cpu) / size * 1e9,
                             results.get(timeout=60) / size * 1e9))
    receiver.join(30)
    listener.close()
    best = max(measured)
    return {"way": way, "best_gbps": round(best[0], 2), "send_cpu_s_per_gb": round(best[1], 3),
            "receive_cpu_s_per_gb": round(best[2], 3), "rounds_gbps": [round(m[0], 2) for m in measured]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=100_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--invocations", type=int, default=2, help="passes over every way, alternating")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ca_cert, ca_key = certificates.make_ca(pathlib.Path(tmp) / "ca", "bench")
        files = certificates.issue_node(pathlib.Path(tmp) / "node", ca_cert, ca_key, ["127.0.0.1"])
        for _ in range(a.invocations):
            for way in WAYS:
                print(json.dumps(run(files, way, a.size, a.rounds)), flush=True)
    print(json.dumps({"load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
