"""The client API (proto/ember/v1/client_api.proto) from its three clients,
in one run against one cluster (issue 13): the Python SDK (a Python driver,
for the baseline), the Node client (clients/node) and the C++ client
(clients/cpp). Each client, in its own process:

- sync call: call a Python function by name and wait for its result
  (Node `await client.call(...)`, C++ `client.call(...)`: one Run each;
  Python `ember.get(add.remote(...))`), mean ms over CALLS calls;
- sync get: get a small object already there, mean ms;
- throughput: TASKS tasks submitted one by one, then all got, tasks/s
  (the C++ client also in one request: submit_many, `batched_tasks_per_s`;
  the Node client batches the submissions of one tick by itself);
- actor calls (Python and Node): a Python actor's method (polyglot_fns:Counter.inc)
  called and waited for, mean ms (`actor_call_ms`), and TASKS calls submitted
  then got, calls/s (`actor_calls_per_s`);
- a TABLE_MB (100) MB Arrow table (one float64 column) put and got, GB/s of
  its column data (Node: apache-arrow through the client API, as Arrow IPC
  in chunks; Python: pyarrow through ember.put/ember.get), beside loopback TCP
  between two processes moving the same number of bytes in the same run
  (bench/transfer.py's baseline), so the get's share of TCP can be set
  against the node-to-node transfer's (bench/README.md).

Clients take turns round by round (the order rotates), so the machine's
load swings hit all of them; the medians over rounds are printed, as JSON
lines, with each foreign client's ratio to Python.

    python bench/client_api.py [--rounds 5] [--calls 500] [--tasks 1000] [--table-mb 100] [--clients python,node,cpp]
    python bench/client_api.py --old-node /tmp/old/clients/node   # also "node-old": another build of the Node client

Needs `npm ci && npm run build` in clients/node and the C++ build
(`cmake -S clients/cpp -B clients/cpp/build && cmake --build clients/cpp/build --target client_api_bench`).
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
import subprocess
import sys
import tempfile
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.transfer import tcp_receiver, tcp_rounds  # noqa: E402

CODE = str(ROOT / "tests" / "polyglot_code")
EMBER = shutil.which("ember", path=os.path.dirname(sys.executable)) or "ember"
CPP_BENCH = ROOT / "clients" / "cpp" / "build" / "client_api_bench"
NODE_BENCH = ROOT / "clients" / "node" / "bench" / "client_api.js"

PYTHON_SIDE = textwrap.dedent(r"""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    import ember
    from ember.job_config import JobConfig
    import polyglot_fns
    calls, tasks, rounds, table_mb = map(int, sys.argv[2:6])
    ember.init(address="auto", job_config=JobConfig(code_search_path=[sys.argv[1]]), log_to_driver=False)
    add = ember.remote(polyglot_fns.add)
    for i in range(20):
        ember.get(add.remote(i, 1))
    t0 = time.perf_counter()
    for i in range(calls):
        ember.get(add.remote(i, 1))
    call_ms = (time.perf_counter() - t0) * 1000 / calls
    small = ember.put({"k": 1})
    t0 = time.perf_counter()
    for i in range(calls):
        ember.get(small)
    get_ms = (time.perf_counter() - t0) * 1000 / calls
    def throughput(submit):
        rates = []
        for r in range(rounds):
            t0 = time.perf_counter()
            ember.get([submit(i) for i in range(tasks)])
            rates.append(tasks / (time.perf_counter() - t0))
        return rates
    out = {"call_ms": [call_ms], "get_ms": [get_ms], "tasks_per_s": throughput(lambda i: add.remote(i, 1))}
    counter = ember.remote(polyglot_fns.Counter).remote(0)
    for i in range(20):
        ember.get(counter.inc.remote(1))
    t0 = time.perf_counter()
    for i in range(calls):
        ember.get(counter.inc.remote(1))
    out["actor_call_ms"] = [(time.perf_counter() - t0) * 1000 / calls]
    out["actor_calls_per_s"] = throughput(lambda i: counter.inc.remote(1))
    ember.kill(counter)
    if table_mb:
        import numpy as np, pyarrow as pa
        n = table_mb * 10**6 // 8
        table = pa.table({"x": np.arange(n, dtype=np.float64)})
        out["table_put_gb_s"], out["table_get_gb_s"] = [], []
        for r in range(rounds + 1):  # (round 0 warms up)
            t0 = time.perf_counter()
            ref = ember.put(table)
            put = time.perf_counter() - t0
            t0 = time.perf_counter()
            got = ember.get(ref)
            get = time.perf_counter() - t0
            assert got.num_rows == n and got.column("x")[n - 1].as_py() == n - 1
            del ref, got
            if r:
                out["table_put_gb_s"].append(n * 8 / 1e9 / put)
                out["table_get_gb_s"].append(n * 8 / 1e9 / get)
    print(json.dumps(out))
    ember.shutdown()
""")


# (a client's median, its name in the summary line: over Python's median of the same key)
RATIOS = [("call_ms", "call_vs_python"), ("get_ms", "get_vs_python"), ("tasks_per_s", "throughput_vs_python"),
          ("batched_tasks_per_s", "batched_vs_python"), ("actor_call_ms", "actor_call_vs_python"),
          ("actor_calls_per_s", "actor_throughput_vs_python"), ("table_put_gb_s", "table_put_vs_python"),
          ("table_get_gb_s", "table_get_vs_python")]


def command(client: str, calls: int, tasks: int, rounds: int, table_mb: int) -> list[str]:
    args = [CODE, str(calls), str(tasks), str(rounds), str(table_mb)]
    if client == "python":
        return [sys.executable, "-c", PYTHON_SIDE, *args]
    if client in ("node", "node-old"):
        return ["node", str(NODE_BENCH), *args]
    return [str(CPP_BENCH), *args[:4]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--table-mb", type=int, default=100, help="the Arrow table's size (0: none)")
    parser.add_argument("--clients", default="python,node,cpp")
    parser.add_argument("--old-node", help="a built clients/node of another tree, run as the client 'node-old'")
    args = parser.parse_args()
    clients = args.clients.split(",") + (["node-old"] if args.old_node else [])
    table_bytes = args.table_mb * 10**6 // 8 * 8
    listener = socket.create_server(("127.0.0.1", 0))
    # (spawn: a fresh receiver process with nothing of this one's)
    receiver = mp.get_context("spawn").Process(target=tcp_receiver, args=(listener, max(table_bytes, 1)), daemon=True)
    receiver.start()
    tcp = socket.create_connection(listener.getsockname())
    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    root = tempfile.mkdtemp(prefix="ember-bench-api-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k not in ("EMBER_ADDRESS", "EMBER_AUTH_TOKEN")}
    env.update(EMBER_SESSION_ROOT=root, EMBER_DASHBOARD_PORT="0")
    subprocess.run([EMBER, "start", "--head", "--port", "0", "--num-cpus", "2"], check=True, env=env,
                   capture_output=True, timeout=120)
    try:
        session = pathlib.Path(root) / "session_latest"
        env.update(EMBER_ADDRESS=json.loads((session / "cluster.json").read_text())["gcs_address"],
                   EMBER_AUTH_TOKEN=(session / "token").read_text().strip())
        results: dict[str, dict[str, list[float]]] = {c: {} for c in clients}
        for r in range(args.rounds):
            order = clients[r % len(clients):] + clients[:r % len(clients)]
            for client in order:
                run_env = {**env, "EMBER_NODE_CLIENT": args.old_node} if client == "node-old" else env
                out = subprocess.run(command(client, args.calls, args.tasks, 3, args.table_mb), capture_output=True,
                                     text=True, env=run_env, timeout=600)
                if out.returncode != 0:
                    raise SystemExit(f"{client} failed:\n{out.stderr[-3000:]}")
                got = json.loads(out.stdout.strip().splitlines()[-1])
                for key, values in got.items():
                    results[client].setdefault(key, []).extend(values)
                print(json.dumps({"round": r, "client": client, **got}), file=sys.stderr)
            if table_bytes:  # loopback TCP once a round, beside the clients' turns
                results.setdefault("tcp", {}).setdefault("table_get_gb_s", []).extend(
                    table_bytes / 1e9 / t for t in tcp_rounds(tcp, table_bytes, 3))
        base = {k: statistics.median(v) for k, v in results.get("python", {}).items() if v}
        tcp_gb_s = statistics.median(results["tcp"]["table_get_gb_s"]) if table_bytes else None
        if tcp_gb_s:
            print(json.dumps({"client": "loopback TCP", "gb_s": round(tcp_gb_s, 3)}))
        for client in clients:
            med = {k: round(statistics.median(v), 3) for k, v in results[client].items()}
            line = {"client": client, **med, "load": os.getloadavg()[0]}
            if client != "python" and base:
                for key, ratio in RATIOS:
                    if key in med and base.get(key.replace("batched_tasks", "tasks")):
                        line[ratio] = round(med[key] / base[key.replace("batched_tasks", "tasks")], 2)
            if tcp_gb_s and "table_get_gb_s" in med:
                line["table_get_vs_tcp"] = round(med["table_get_gb_s"] / tcp_gb_s, 2)
            print(json.dumps(line))
    finally:
        tcp.close()
        receiver.join(timeout=10)
        subprocess.run([EMBER, "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
