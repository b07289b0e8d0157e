"""Jobs and runtime environments, Ember beside Ray in one run (issue 14):

- job submit -> the entrypoint's first line of output (JobSubmissionClient:
  submit_job, then its logs polled every 5 ms);
- the first task in a new working_dir environment (cold: a directory never
  seen, uploaded and unpacked), then a task in the same one (warm: cached);
- tasks per second in that cached non-default environment, against the
  default one (2,000 no-op tasks submitted, then got).

Each runtime runs in its own subprocess (its own interpreter: Ray from a
virtualenv with ray[default]==2.60.0, which its job server and runtime
environments need) against a head it starts on loopback and stops.

    python bench/jobs.py [--ray-python /tmp/rayvenv/bin/python] [--ember-python PY] [--repeat 3]

Ray's processes all stay on loopback here only with
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (set below); give its raylet time to
start on a loaded machine with RAY_raylet_start_wait_time_s=180.

Ray 2.60 takes a local directory as working_dir only at job level; on a
task it wants a URI, so Ray's side zips the directory and passes file://
(Ember's takes the directory). If the probe fails it prints the error
before it stops the head: otherwise Ray's excepthook waits 60 s on the
stopped GCS and aborts the process with "Failed to connect to GCS", which
hid that ValueError until 2026-12-08 (the raylet that "went away" was
killed by the probe's own `ray stop --force`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(r'''
    import json, os, pathlib, shutil, socket, subprocess, sys, tempfile, time, traceback
    runtime, repeat = sys.argv[1], int(sys.argv[2])
    if runtime == "ember":
        import ember as rt
        from ember.job_submission import JobSubmissionClient
    else:
        import ray as rt
        from ray.job_submission import JobSubmissionClient
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-jobs-{runtime}-"))

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    env = dict(os.environ)
    bindir = pathlib.Path(sys.executable).parent
    if runtime == "ember":
        env["EMBER_SESSION_ROOT"] = str(tmp / "sessions")
        out = subprocess.run([str(bindir / "ember"), "start", "--head", "--port", "0", "--num-cpus", "2"],
                             capture_output=True, text=True, env=env, check=True).stdout
        session = pathlib.Path(next(l for l in out.splitlines() if "session:" in l).split("session:")[1].strip())
        address = json.loads((session / "cluster.json").read_text())["gcs_address"]
        token = (session / "token").read_text().strip()
        os.environ.update(EMBER_SESSION_ROOT=env["EMBER_SESSION_ROOT"], EMBER_AUTH_TOKEN=token)
        job_address = address
        stop = [str(bindir / "ember"), "stop"]
    else:
        # Token authentication on both sides, as Ember's (Ray 2.60's RAY_AUTH_MODE=token;
        # ~/.ray/auth_token, made by `ray get-auth-token --generate` if missing).
        token_file = pathlib.Path.home() / ".ray" / "auth_token"
        if not token_file.exists():
            subprocess.run([str(bindir / "ray"), "get-auth-token", "--generate"], capture_output=True, check=True)
        env["RAY_AUTH_MODE"] = "token"  # (the client's too: _probe sets it before ray is imported)
        dash, gcs_port = free_port(), free_port()
        subprocess.run([str(bindir / "ray"), "start", "--head", "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
                        "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                        "--port", str(gcs_port),
                        "--temp-dir", str(tmp / "ray")], capture_output=True, text=True, env=env, check=True)
        address = f"127.0.0.1:{gcs_port}"  # ("auto" may find another session's files in /tmp/ray)
        job_address = f"http://127.0.0.1:{dash}"
        stop = [str(bindir / "ray"), "stop", "--force"]
    results = {}
    try:
        client = JobSubmissionClient(job_address)
        entry = tmp / "entry"
        entry.mkdir()
        (entry / "main.py").write_text("print('first', flush=True)\n")
        firsts = []
        for i in range(repeat):
            t = time.perf_counter()
            job = client.submit_job(entrypoint="python main.py", runtime_env={"working_dir": str(entry)})
            while "first" not in client.get_job_logs(job):
                time.sleep(0.005)
            firsts.append(time.perf_counter() - t)
            while str(client.get_job_status(job)).split(".")[-1] not in ("SUCCEEDED", "FAILED", "STOPPED"):
                time.sleep(0.05)
        results["job submit -> first line (s)"] = firsts

        rt.init(address=address, **({"_node_ip_address": "127.0.0.1"} if runtime == "ray" else {}))

        @rt.remote
        def noop():
            return None

        @rt.remote
        def answer():
            import answer_module
            return answer_module.VALUE

        working_dirs = {}

        def task_working_dir(d):
            # Ember takes a local directory at task level and packs it; Ray 2.60 takes one
            # only at job level (ray.init) and wants a URI on a task ("... is not a valid
            # URI"), so its side packs the same directory into a zip with one top-level
            # folder and passes it as file:// (unpacked by the node). Packing is timed on both.
            if runtime == "ember":
                uri = str(d)
            else:
                uri = "file://" + shutil.make_archive(str(d), "zip", root_dir=d.parent, base_dir=d.name)
            working_dirs[d] = uri
            return uri

        rt.get([noop.remote() for _ in range(200)])
        colds, warms = [], []
        for i in range(repeat):
            d = tmp / f"wd{i}"
            d.mkdir()
            (d / "answer_module.py").write_text(f"VALUE = {i}\n")
            (d / "data.bin").write_bytes(os.urandom(1 << 20))  # a 1 MiB file: something to upload and unpack
            t = time.perf_counter()
            in_env = answer.options(runtime_env={"working_dir": task_working_dir(d)})
            assert rt.get(in_env.remote()) == i
            colds.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert rt.get(in_env.remote()) == i
            warms.append(time.perf_counter() - t)
        results["first task, new working_dir (cold, s)"] = colds
        results["task, cached working_dir (warm, s)"] = warms
        env_noop = noop.options(runtime_env={"working_dir": working_dirs[tmp / "wd0"]})
        rt.get([env_noop.remote() for _ in range(200)])
        rates_default, rates_env = [], []
        for _ in range(repeat):
            for fn, rates in ((noop, rates_default), (env_noop, rates_env)):
                t = time.perf_counter()
                rt.get([fn.remote() for _ in range(2000)])
                rates.append(2000 / (time.perf_counter() - t))
        results["tasks/s, default environment"] = rates_default
        results["tasks/s, cached working_dir environment"] = rates_env
        rt.shutdown()
    except BaseException:
        # Print the error before stopping the head: afterwards Ray's excepthook (set by
        # ray.init) reports it to the stopped GCS, waits 60 s and aborts the process with
        # "Failed to connect to GCS", which hid this error before.
        traceback.print_exc()
        sys.stderr.flush()
        if rt.is_initialized():
            rt.shutdown()
        raise
    finally:
        subprocess.run(stop, capture_output=True, env=env)
    print(json.dumps(results))
''')


def _probe(python: str, runtime: str, repeat: int) -> dict[str, list[float]]:
    # Ray: every process of it on loopback. Ray 2.60 takes a node's address
    # from the route to 8.8.8.8 whatever --node-ip-address says (its job
    # supervisor and the job's driver then dialled the machine's address and
    # died); with "clusters" off (the setting meant for one-machine Ray on
    # macOS and Windows) it uses 127.0.0.1.
    ray_env = {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env = {**os.environ, **(ray_env if runtime == "ray" else {})}
    done = subprocess.run([python, "-c", PROBE, runtime, str(repeat)], capture_output=True, text=True, timeout=1200,
                          env=env)
    if done.returncode != 0:
        raise SystemExit(f"{runtime} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ember-python", default=sys.executable)
    parser.add_argument("--ray-python", default=None, help="a Python with ray[default]==2.60.0 (omitted: Ember only)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ember = _probe(args.ember_python, "ember", args.repeat)
    ray = _probe(args.ray_python, "ray", args.repeat) if args.ray_python else {}
    print(f"| metric | Ember | Ray 2.60 | Ember better by |\n|---|---|---|---|")
    for metric in ember:
        e = statistics.median(ember[metric])
        if metric not in ray:
            fmt = (lambda v: f"{v:,.0f}") if "tasks/s" in metric else (lambda v: f"{v:.3f}")
            print(f"| {metric} | {fmt(e)} | (not run) | |")
            continue
        r = statistics.median(ray[metric])
        better = r / e if "(s)" in metric or "(cold" in metric or "(warm" in metric else e / r
        fmt = (lambda v: f"{v:,.0f}") if "tasks/s" in metric else (lambda v: f"{v:.3f}")
        print(f"| {metric} | {fmt(e)} | {fmt(r)} | {better:.2f}x |")
    print(json.dumps({"ember": ember, "ray": ray}), file=sys.stderr)


if __name__ == "__main__":
    main()
