"""The worker zygote on its own: forks on request, reports pids and exit
codes, and goes away with its raylet."""

from __future__ import annotations

import os
import signal
import sys

import psutil

from ember_raylet.worker_pool import ZygoteSpawner
from tests.conftest import pid_gone


def _spawner(tmp_path, raylet_address="local:/nonexistent/raylet.sock", *extra):
    return ZygoteSpawner(["--raylet-address", raylet_address, "--session-dir", str(tmp_path), *extra],
                         {**os.environ, "EMBER_AUTH_TOKEN": "t"}, str(tmp_path))


def test_forks_report_pids_and_exit_codes(tmp_path):
    import asyncio

    spawner = _spawner(tmp_path)  # no raylet there: a worker retries connecting
    try:
        asyncio.run(spawner.start())
        proc = spawner(b"\1" * 16)
        parent = psutil.Process(proc.pid)
        assert parent.ppid() != os.getpid()  # forked by the zygote...
        assert str(tmp_path) in " ".join(parent.cmdline())  # ...whose command line names the session
        assert proc.poll() is None
        proc.kill()
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        spawner.close()
    spawner = _spawner(tmp_path, "local:/x", "--no-such-flag")
    try:
        asyncio.run(spawner.start())
        proc = spawner(b"\2" * 16)
        assert proc.wait(timeout=10) == 2  # argparse's exit code, relayed by the zygote
        assert "--no-such-flag" in (tmp_path / "worker-020202020202.log").read_text()
    finally:
        spawner.close()


def test_zygote_and_workers_exit_when_the_raylet_goes(tmp_path):
    import subprocess
    import textwrap

    # A stand-in raylet process owns the zygote; SIGKILL it and the zygote
    # (its stdin closes) and its workers (their parent goes) follow.
    script = textwrap.dedent(f"""
        import asyncio, os, sys, time
        sys.path.insert(0, {str(os.getcwd())!r})
        from tests.test_worker_zygote import _spawner
        import pathlib
        s = _spawner(pathlib.Path({str(tmp_path)!r}), "local:/nonexistent/x")
        s(b"\\3" * 16)
        asyncio.run(s.start())
        print(s._zygote.pid, flush=True)
        time.sleep(60)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        zygote_pid = int(owner.stdout.readline())
        assert psutil.pid_exists(zygote_pid)
        owner.kill()
        owner.wait()
        assert pid_gone(zygote_pid), "the zygote outlived its raylet"
    finally:
        owner.kill()


def test_the_zygote_loads_only_what_every_worker_needs():
    # Everything the zygote imports is in every worker (shared, but counted in
    # the cluster's idle memory); what only some workers use loads on demand.
    import subprocess

    probe = ("import sys, ember._private.worker_zygote; "
             "print(' '.join(m for m in ('asyncio', 'concurrent.futures', 'psutil', 'grpc', 'numpy', "
             "'ember._private.node_launcher') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == []
