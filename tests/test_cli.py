"""`ember start|status|stop` and drivers joining a running cluster."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from ember._private.node_launcher import free_port
from tests.conftest import ember_processes, shm_files, wait_gone
from tests.helpers import wait_until


# The `ember` of the Python running the tests (a PATH lookup may find another install's).
EMBER = shutil.which("ember", path=os.path.dirname(sys.executable)) or "ember"


def ember_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EMBER, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def head():
    before = set(shm_files())  # other clusters on this machine are not ours to check
    port = free_port()
    out = ember_cli("start", "--head", "--port", str(port), "--num-cpus", "2", "--resources", '{"accel": 3}')
    assert out.returncode == 0, out.stderr
    yield port, out.stdout, before
    ember_cli("stop")


def test_start_status_join_run_stop(head):
    port, started, shm_before = head
    assert f"127.0.0.1:{port}" in started and "ember.init(address=\"auto\")" in started
    status = ember_cli("status")
    assert status.returncode == 0, status.stderr
    assert "1 alive" in status.stdout and "CPU: 0/2 used" in status.stdout and "accel: 0/3" in status.stdout
    assert f"leader: 127.0.0.1:{port}" in status.stdout

    sd_file = re.search(r"metrics: +Prometheus targets of every node in (\S+prometheus_sd\.json)", started).group(1)
    joined = ember_cli("start", f"--address=127.0.0.1:{port}", "--num-cpus", "1", "--raylet-metrics-port", "0")
    assert joined.returncode == 0, joined.stderr
    assert re.search(r"metrics: +objectstore 127\.0\.0\.1:\d+, raylet 127\.0\.0\.1:\d+", joined.stdout), joined.stdout
    # The head's GCS lists both nodes' raylet and store, and itself.
    wait_until(lambda: len(json.loads(pathlib.Path(sd_file).read_text())) == 5, what="both nodes in the sd file")
    status = ember_cli("status")
    assert "2 alive" in status.stdout and "CPU: 0/3 used" in status.stdout

    driver = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import ember
        ember.init(address="auto")
        @ember.remote
        def f(x): return x + 1
        print(sum(ember.get([f.remote(i) for i in range(100)])), ember.cluster_resources()["CPU"])
        ember.shutdown()
    """)], capture_output=True, text=True, timeout=60)
    assert driver.returncode == 0, driver.stderr
    assert driver.stdout.split() == ["5050", "3.0"]

    stopped = ember_cli("stop")
    assert stopped.returncode == 0 and "Stopped 2 node(s)" in stopped.stdout
    root = os.environ["EMBER_SESSION_ROOT"]
    assert not wait_gone(root)
    # Ours: stores of this test's sessions (other clusters may run on the machine).
    ours = {d.name[-6:] for d in pathlib.Path(root).glob("session_*")}
    assert not [f for f in set(shm_files()) - shm_before if f.split("-")[1] in ours]


def test_join_with_wrong_token_is_refused(head):
    port, _, _ = head
    out = ember_cli("start", f"--address=127.0.0.1:{port}", "--token", "wrong")
    assert out.returncode != 0 and "UNAUTHENTICATED" in out.stderr


def test_driver_joining_by_address_needs_the_token(head):
    port, _, _ = head
    code = textwrap.dedent(f"""
        import ember
        try:
            ember.init(address="127.0.0.1:{port}")
        except ConnectionError as e:
            print("REFUSED", e)
    """)
    env = {**os.environ, "EMBER_AUTH_TOKEN": "wrong"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert "REFUSED" in out.stdout and "UNAUTHENTICATED" in out.stdout


def test_driver_joining_by_address_with_token(head):
    port, _, _ = head
    root = os.environ["EMBER_SESSION_ROOT"]
    token = open(os.path.join(root, "session_latest", "token")).read()
    code = textwrap.dedent(f"""
        import ember
        ember.init(address="127.0.0.1:{port}")
        @ember.remote
        def f(): return ember.get_runtime_context().get_node_id()
        print(ember.get(f.remote()) == ember.nodes()[0]["NodeID"])
        ember.shutdown()
    """)
    env = {**os.environ, "EMBER_AUTH_TOKEN": token, "EMBER_SESSION_ROOT": "/nonexistent"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_status_without_cluster_says_so():
    out = ember_cli("status")
    assert out.returncode != 0 and "no running cluster" in out.stderr


def test_start_usage_errors():
    assert ember_cli("start").returncode != 0
    bad = ember_cli("start", "--head", "--resources", "not-json")
    assert bad.returncode != 0 and "JSON" in bad.stderr
    assert not ember_processes(os.environ["EMBER_SESSION_ROOT"])


def test_version():
    import ember

    out = ember_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"ember, version {ember.__version__}"


def test_rays_start_flags_and_stop_force():
    """A Ray launch script's flags: accepted, with a note where they mean nothing here;
    `ember stop --force` kills at once and still cleans the stores."""
    root = os.environ["EMBER_SESSION_ROOT"]
    before = set(shm_files())
    port = free_port()
    out = ember_cli("start", "--head", "--port", str(port), "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
                    "--include-dashboard", "false", "--dashboard-host", "0.0.0.0", "--disable-usage-stats")
    assert out.returncode == 0, out.stderr
    assert "dashboard:" not in out.stdout  # --include-dashboard false: none started
    assert ember_processes(root)
    assert not [p for p in ember_processes(root) if "ember_dashboard.main" in " ".join(p.cmdline())]
    assert "1 alive" in ember_cli("status").stdout

    stopped = ember_cli("stop", "--force")
    assert stopped.returncode == 0 and "Stopped 1 node(s)" in stopped.stdout
    assert not wait_gone(root)
    ours = {d.name[-6:] for d in pathlib.Path(root).glob("session_*")}
    assert not [f for f in set(shm_files()) - before if f.split("-")[1] in ours]
    assert "no running cluster" in ember_cli("status").stderr


def test_unknown_start_flag_is_refused():
    out = ember_cli("start", "--head", "--no-such-flag")
    # click's wording differs between versions ("option: --x" / "option '--x'").
    assert out.returncode != 0 and re.search(r"No such option\W+--no-such-flag", out.stderr)
    assert not ember_processes(os.environ["EMBER_SESSION_ROOT"])
