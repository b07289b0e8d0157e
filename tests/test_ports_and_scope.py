"""Ports and scope: a port another process holds is an error at start for
every listener (never shared, as gRPC's SO_REUSEPORT default would), and
`ember stop` stops only the clusters `ember start` made."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import pytest

from ember._private import session as sessions
from ember._private.node_launcher import free_port
from ember_common import auth
from tests.conftest import wait_gone
from tests.test_cli import ember_cli

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def held_port():
    """A loopback port another process (this test) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _run_service(module: str, args: list[str], session_dir: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, "--session-dir", str(session_dir), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, auth.TOKEN_ENV: "test-token-ports"})


@pytest.mark.parametrize("service, args", [
    ("ember_gcs.main", ["--port", "{held}"]),
    ("ember_objectstore.main", ["--port", "{held}", "--directory", "/dev/shm/ember-ports-{pid}", "--capacity", "1048576"]),
    ("ember_objectstore.main", ["--port", "0", "--transfer-port", "{held}", "--directory", "/dev/shm/ember-ports-{pid}",
                                "--capacity", "1048576"]),
    ("ember_raylet.main", ["--port", "{held}", "--node-id", "00" * 16, "--gcs-address", "unix:/nonexistent/gcs.sock",
                           "--store-address", "unix:/nonexistent/store.sock", "--store-dir", "/dev/shm/ember-ports-{pid}",
                           "--num-cpus", "1"]),
    ("ember_gcs.main", ["--port", "0", "--metrics-port", "{held}"]),
    ("ember_objectstore.main", ["--port", "0", "--metrics-port", "{held}", "--directory", "/dev/shm/ember-ports-{pid}",
                                "--capacity", "1048576"]),
    ("ember_raylet.main", ["--port", "0", "--metrics-port", "{held}", "--node-id", "00" * 16,
                           "--gcs-address", "unix:/nonexistent/gcs.sock", "--store-address", "unix:/nonexistent/store.sock",
                           "--store-dir", "/dev/shm/ember-ports-{pid}", "--num-cpus", "1"]),
], ids=["gcs", "objectstore", "objectstore-transfer", "raylet", "gcs-metrics", "objectstore-metrics", "raylet-metrics"])
def test_every_listener_refuses_a_port_in_use(tmp_path, held_port, service, args):
    (tmp_path / "logs").mkdir()
    args = [a.format(held=held_port, pid=os.getpid()) for a in args]
    out = _run_service(service, args, tmp_path)
    log = "\n".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
    assert out.returncode != 0, out.stderr
    assert f"cannot listen on 127.0.0.1:{held_port}: the port is in use by another process" in out.stderr + log
    assert not list(pathlib.Path("/dev/shm").glob(f"ember-ports-{os.getpid()}*"))


def test_a_second_head_on_the_same_port_fails_and_the_first_keeps_serving():
    port = free_port()
    first = ember_cli("start", "--head", "--port", str(port), "--num-cpus", "1")
    assert first.returncode == 0, first.stderr
    try:
        second = ember_cli("start", "--head", "--port", str(port), "--num-cpus", "1")
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in second.stderr
        # The failed head left nothing running, and no token a driver could take.
        root = pathlib.Path(os.environ["EMBER_SESSION_ROOT"])
        found = sessions.find_by_address(str(root), f"127.0.0.1:{port}")
        assert found is not None and (found / "nodes").exists()
        status = ember_cli("status", "--address", f"127.0.0.1:{port}")
        assert status.returncode == 0 and "1 alive" in status.stdout, status.stdout + status.stderr
        driver = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            import ember
            ember.init(address="127.0.0.1:{port}")
            print(ember.get(ember.put("same cluster")))
        """)], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert driver.returncode == 0 and driver.stdout.strip() == "same cluster", driver.stderr
    finally:
        assert ember_cli("stop").returncode == 0


def test_ember_stop_leaves_programs_private_clusters_alone(cluster):
    """`cluster` is this process's own ember.init() cluster; a Cluster made
    by another program runs too. `ember stop` stops only the CLI's head."""
    started = ember_cli("start", "--head", "--port", str(free_port()), "--num-cpus", "1")
    assert started.returncode == 0, started.stderr
    cli_session = started.stdout.split("session:", 1)[1].split()[0]
    program = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from ember.cluster_utils import Cluster
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        print(c.head_node.session_dir, flush=True)
        sys.stdin.readline()  # until the test says so
        c.shutdown()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        program_session = program.stdout.readline().strip()
        stopped = ember_cli("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert "Stopped 1 node(s)." in stopped.stdout
        assert "Left 2 cluster(s) that running programs started for themselves" in stopped.stdout
        assert f"pid {os.getpid()} (ember.init)" in stopped.stdout
        assert f"pid {program.pid} (cluster_utils.Cluster)" in stopped.stdout
        assert not wait_gone(cli_session)
        # Both private clusters still serve their programs.
        import ember

        assert ember.get(ember.put(41)) + 1 == 42
        assert (pathlib.Path(program_session) / "token").exists()
        assert list((pathlib.Path(program_session) / "nodes").glob("*.json"))
    finally:
        program.communicate("\n", timeout=60)
    assert program.returncode == 0
    assert not wait_gone(program_session)
