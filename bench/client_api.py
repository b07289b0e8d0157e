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
  the Node client batches the submissions of one tick by itself).

Clients take turns round by round (the order rotates), so the machine's
load swings hit all of them; the medians over rounds are printed, as JSON
lines, with each foreign client's ratio to Python.

    python bench/client_api.py [--rounds 5] [--calls 500] [--tasks 1000] [--clients python,node,cpp]
    python bench/client_api.py --old-node /tmp/old/clients/node   # also "node-old": another build of the Node client

Needs `npm ci && npm run build` in clients/node and the C++ build
(`cmake -S clients/cpp -B clients/cpp/build && cmake --build clients/cpp/build --target client_api_bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent
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
    calls, tasks, rounds = map(int, sys.argv[2:5])
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
    rates = []
    for r in range(rounds):
        t0 = time.perf_counter()
        ember.get([add.remote(i, 1) for i in range(tasks)])
        rates.append(tasks / (time.perf_counter() - t0))
    print(json.dumps({"call_ms": [call_ms], "get_ms": [get_ms], "tasks_per_s": rates}))
    ember.shutdown()
""")


def command(client: str, calls: int, tasks: int, rounds: int) -> list[str]:
    args = [CODE, str(calls), str(tasks), str(rounds)]
    if client == "python":
        return [sys.executable, "-c", PYTHON_SIDE, *args]
    if client in ("node", "node-old"):
        return ["node", str(NODE_BENCH), *args]
    return [str(CPP_BENCH), *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--clients", default="python,node,cpp")
    parser.add_argument("--old-node", help="a built clients/node of another tree, run as the client 'node-old'")
    args = parser.parse_args()
    clients = args.clients.split(",") + (["node-old"] if args.old_node else [])

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
                out = subprocess.run(command(client, args.calls, args.tasks, 3), capture_output=True, text=True,
                                     env=run_env, timeout=600)
                if out.returncode != 0:
                    raise SystemExit(f"{client} failed:\n{out.stderr[-3000:]}")
                got = json.loads(out.stdout.strip().splitlines()[-1])
                for key, values in got.items():
                    results[client].setdefault(key, []).extend(values)
                print(json.dumps({"round": r, "client": client, **got}), file=sys.stderr)
        base = {k: statistics.median(v) for k, v in results.get("python", {}).items() if v}
        for client in clients:
            med = {k: round(statistics.median(v), 3) for k, v in results[client].items()}
            line = {"client": client, **med, "load": os.getloadavg()[0]}
            if client != "python" and base:
                line["call_vs_python"] = round(med["call_ms"] / base["call_ms"], 2)
                line["get_vs_python"] = round(med["get_ms"] / base["get_ms"], 2)
                line["throughput_vs_python"] = round(med["tasks_per_s"] / base["tasks_per_s"], 2)
                if "batched_tasks_per_s" in med:
                    line["batched_vs_python"] = round(med["batched_tasks_per_s"] / base["tasks_per_s"], 2)
            print(json.dumps(line))
    finally:
        subprocess.run([EMBER, "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
