"""Drivers in their own processes: a private cluster's limits, and what is
left behind when a driver ends (nothing), however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from tests.conftest import ember_processes, shm_files, wait_gone


def run_driver(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_oversized_put_is_typed_and_store_keeps_serving():
    out = run_driver("""
        import numpy as np, ember
        ember.init(num_cpus=1, object_store_memory=20 * 1024 * 1024)
        try:
            ember.put(np.zeros(30 * 1024 * 1024, dtype=np.uint8))
        except ember.exceptions.ObjectStoreFullError as e:
            print("FULL:", e)
        a = ember.get(ember.put(np.ones(1024 * 1024)))
        print("OK", a.sum())
        ember.shutdown()
    """)
    assert out.returncode == 0, out.stderr
    assert "FULL:" in out.stdout and "can never fit" in out.stdout and str(20 * 1024 * 1024) in out.stdout
    assert "OK 1048576.0" in out.stdout


def test_script_exit_without_shutdown_cleans_up():
    out = run_driver("""
        import ember
        info = ember.init(num_cpus=1)
        print(info["session_dir"])
        @ember.remote
        def f(): return 1
        assert ember.get(f.remote()) == 1
        ref = ember.put(bytes(10 * 1024 * 1024))  # in shared memory
    """)
    assert out.returncode == 0, out.stderr
    session_dir = out.stdout.strip().splitlines()[-1]
    assert not wait_gone(session_dir)
    assert not shm_files(f"ember-{os.path.basename(session_dir)[-6:]}")


def test_killed_driver_takes_its_cluster_down():
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time, ember
        info = ember.init(num_cpus=1)
        ref = ember.put(bytes(10 * 1024 * 1024))
        print(info["session_dir"], flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        session_dir = proc.stdout.readline().strip()
        assert ember_processes(session_dir)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert not wait_gone(session_dir, timeout=15), "services outlived their killed driver"
        deadline = time.monotonic() + 5
        while shm_files(f"ember-{os.path.basename(session_dir)[-6:]}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not shm_files(f"ember-{os.path.basename(session_dir)[-6:]}")
    finally:
        proc.kill()


def test_driver_over_grpc_connect_stream():
    """The gRPC Connect stream (what remote and other-language clients use)
    carries the same session as the local socket."""
    code = """
        import numpy as np, ember
        ember.init(num_cpus=2)
        from ember._private import client_transport, runtime
        assert isinstance(runtime.client().transport, client_transport.GrpcTransport)
        @ember.remote
        def f(x): return x * 2
        @ember.remote
        def nested(n): return sum(ember.get([f.remote(i) for i in range(n)]))
        print(sum(ember.get([f.remote(i) for i in range(500)])), ember.get(nested.remote(10)),
              ember.get(ember.put(np.ones(10**6))).sum())
        ember.shutdown()
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "EMBER_LOCAL_TRANSPORT": "0"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["249500", "90", "1000000.0"]


def test_readme_demo_runs():
    """The README's first command runs examples/demo.py on a private cluster."""
    out = subprocess.run([sys.executable, "examples/demo.py"], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pi ~ 3.1" in out.stdout and "running total 500500" in out.stdout and "done in" in out.stdout
