"""Mutual TLS on every TCP port: a cluster made with a CA of its own (a
Cluster with EMBER_TLS=1, `ember start --tls`) or with an operator's files
(EMBER_TLS_CERT/KEY/CA) runs tasks, actors and node-to-node transfers over
it, and refuses plaintext clients and clients of another CA before any
handler runs; the token is still checked. Each cluster here belongs to a
driver process of its own, so this process's connections stay plaintext."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import threading

import grpc
import pytest

from ember._private import certificates
from ember._private.node_launcher import free_port
from ember.v1 import gcs_pb2, gcs_pb2_grpc
from ember_common import rpc
from ember_common.tls import TlsFiles
from tests.conftest import wait_gone
from tests.test_cli import ember_cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
TLS_ENV = ("EMBER_TLS", "EMBER_TLS_CERT", "EMBER_TLS_KEY", "EMBER_TLS_CA")

_TLS_CLUSTER_DRIVER = """
    import json, os, sys
    import numpy as np
    import ember
    from ember.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1, resources={"other": 1})
    ember.init(address=c.address)

    @ember.remote(resources={"other": 1})
    def made_there():
        return np.arange(5_000_000, dtype=np.int64), ember.get_runtime_context().get_node_id()

    @ember.remote(resources={"other": 1})
    class Far:
        def echo(self, x):
            return x, ember.get_runtime_context().get_node_id()

    array, node = ember.get(made_there.remote())  # pulled over the transfer data plane
    far = Far.remote()
    echoed, far_node = ember.get(far.echo.remote("hello"))
    print(json.dumps({"sum": int(array.sum()), "task_node": node, "actor_node": far_node, "echo": echoed,
                      "head_node": ember.get_runtime_context().get_node_id(), "token": c.token,
                      "head_session": str(c.head_node.session_dir),
                      "other_session": str(c.worker_nodes[0].session_dir),
                      "gcs": c.head_node.gcs_address,
                      "nodes": [[n["NodeManagerAddress"], n["NodeManagerPort"], n["ObjectManagerPort"]]
                                for n in ember.nodes()]}), flush=True)
    sys.stdin.readline()  # the test probes the live cluster, then says so
    ember.shutdown()
    c.shutdown()
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TLS_ENV}
    return {**env, **extra}


@pytest.fixture(scope="module")
def tls_cluster():
    """A two-node Cluster over mutual TLS, owned by a driver process."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_TLS_CLUSTER_DRIVER)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=_env(EMBER_TLS="1"))
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"the TLS cluster did not start: {proc.stderr.read()[-4000:]}")
    info = json.loads(line)
    yield info
    _, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0, err[-4000:]
    assert not wait_gone(info["head_session"]) and not wait_gone(info["other_session"])


def _ping(address: str, token: str | None, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """GetAllNodes on the GCS at `address`: OK or the status it failed with."""
    channel = (grpc.secure_channel(address, credentials) if credentials is not None
               else grpc.insecure_channel(address))
    if token:
        channel = grpc.intercept_channel(channel, rpc._ClientToken(token))
    try:
        gcs_pb2_grpc.GcsStub(channel).GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()
    finally:
        channel.close()


def _other_ca(tmp_path: pathlib.Path) -> TlsFiles:
    ca_cert, ca_key = certificates.make_ca(tmp_path / "other-ca", "impostor")
    return certificates.issue_node(tmp_path / "other-ca", ca_cert, ca_key, ["127.0.0.1"])


def test_tasks_actors_and_transfers_run_across_nodes_over_tls(tls_cluster):
    info = tls_cluster
    assert info["sum"] == sum(range(5_000_000)) and info["echo"] == "hello"
    assert info["task_node"] == info["actor_node"] != info["head_node"]
    head_tls = pathlib.Path(info["head_session"]) / "tls"
    other_tls = pathlib.Path(info["other_session"]) / "tls"
    for key in (head_tls / "ca.key", head_tls / "node.key", other_tls / "node.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert not (other_tls / "ca.key").exists()  # only the head keeps the CA's key


def test_plaintext_and_other_ca_clients_are_refused_and_the_token_still_counts(tls_cluster, tmp_path):
    info = tls_cluster
    head = TlsFiles(*(pathlib.Path(info["head_session"]) / "tls" / name for name in ("node.crt", "node.key", "ca.crt")))
    address = info["gcs"]
    assert _ping(address, info["token"], head.channel_credentials()) == grpc.StatusCode.OK
    assert _ping(address, None, head.channel_credentials()) == grpc.StatusCode.UNAUTHENTICATED
    assert _ping(address, info["token"], None) == grpc.StatusCode.UNAVAILABLE  # plaintext: no handshake
    assert _ping(address, info["token"], _other_ca(tmp_path).channel_credentials()) == grpc.StatusCode.UNAVAILABLE
    # Server-only TLS (no client certificate) is refused too: the TLS is mutual.
    server_only = grpc.ssl_channel_credentials(root_certificates=head.ca.read_bytes())
    assert _ping(address, info["token"], server_only) == grpc.StatusCode.UNAVAILABLE
    # Every raylet's TCP port the same.
    for host, port, _ in info["nodes"]:
        assert _ping(f"{host}:{port}", info["token"], None) == grpc.StatusCode.UNAVAILABLE


def test_the_transfer_data_plane_refuses_plaintext_and_other_cas(tls_cluster, tmp_path):
    info = tls_cluster
    hello = len(info["token"]).to_bytes(2, "little") + info["token"].encode() + bytes(20) + bytes(16)
    for host, _, port in info["nodes"]:
        with socket.create_connection((host, port), timeout=10) as plain:
            plain.sendall(hello)
            try:
                answer = plain.recv(9)
            except ConnectionResetError:
                answer = b""
            assert answer == b"" or answer[:1] not in (b"\x00", b"\x01"), answer  # no status: TLS alert or close
        impostor = _other_ca(tmp_path).client_context()
        with socket.create_connection((host, port), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionResetError)):
                with impostor.wrap_socket(raw, server_hostname=host) as s:
                    s.sendall(hello)
                    s.recv(9)


def test_ember_start_tls_head_and_joining_node(tmp_path):
    port = free_port()
    env = _env()
    head = ember_cli("start", "--head", "--tls", "--port", str(port), "--num-cpus", "1", env=env)
    try:
        assert head.returncode == 0, head.stderr
        assert "TLS:       mutual TLS on every TCP port" in head.stdout and "--tls --tls-ca-dir=" in head.stdout
        plain_join = ember_cli("start", f"--address=127.0.0.1:{port}", "--num-cpus", "1", env=env)
        assert plain_join.returncode != 0
        assert "cannot reach the GCS" in plain_join.stderr and "if the cluster uses TLS" in plain_join.stderr
        joined = ember_cli("start", f"--address=127.0.0.1:{port}", "--tls", "--num-cpus", "1", "--resources",
                           '{"joined": 1}', env=env)
        assert joined.returncode == 0, joined.stderr
        status = ember_cli("status", env=env)
        assert status.returncode == 0 and "2 alive" in status.stdout, status.stdout + status.stderr
        driver = subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import ember
            ember.init(address="auto")
            @ember.remote(resources={"joined": 1})
            def there(n):
                return bytes(n)
            print(len(ember.get(there.remote(30_000_000))))  # stored on the joined node, pulled over TLS
        """)], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
        assert driver.returncode == 0 and driver.stdout.strip() == "30000000", driver.stderr[-3000:]
    finally:
        assert ember_cli("stop", env=env).returncode == 0


def test_operator_files_from_the_environment(tmp_path):
    ca_cert, ca_key = certificates.make_ca(tmp_path / "pki", "operator")
    files = certificates.issue_node(tmp_path / "pki", ca_cert, ca_key, ["127.0.0.1"])
    env = _env(**files.env())
    port = free_port()
    head = ember_cli("start", "--head", "--port", str(port), "--num-cpus", "1", env=env)
    try:
        assert head.returncode == 0, head.stderr
        assert f"CA {files.ca}" in head.stdout
        session_dir = pathlib.Path(head.stdout.split("session:", 1)[1].split()[0])
        assert not (session_dir / "tls").exists()  # the operator's files, no CA made
        token = (session_dir / "token").read_text().strip()
        assert _ping(f"127.0.0.1:{port}", token, files.channel_credentials()) == grpc.StatusCode.OK
        assert _ping(f"127.0.0.1:{port}", token, None) == grpc.StatusCode.UNAVAILABLE
        driver = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            import ember
            ember.init(address="127.0.0.1:{port}")
            print(ember.get(ember.put("over the operator's TLS")))
        """)], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
        assert driver.returncode == 0 and "over the operator's TLS" in driver.stdout, driver.stderr[-3000:]
    finally:
        assert ember_cli("stop", env=env).returncode == 0


def test_incomplete_or_missing_tls_files_are_refused_before_anything_starts(tmp_path):
    only_cert = ember_cli("start", "--head", "--port", str(free_port()),
                          env=_env(EMBER_TLS_CERT=str(tmp_path / "node.crt")))
    assert only_cert.returncode != 0
    assert "TLS needs EMBER_TLS_CERT, EMBER_TLS_KEY and EMBER_TLS_CA together" in only_cert.stderr
    missing = ember_cli("start", "--head", "--port", str(free_port()),
                        env=_env(EMBER_TLS_CERT=str(tmp_path / "node.crt"), EMBER_TLS_KEY=str(tmp_path / "node.key"),
                                 EMBER_TLS_CA=str(tmp_path / "ca.crt")))
    assert missing.returncode != 0 and f"the TLS certificate {tmp_path / 'node.crt'} does not exist" in missing.stderr
    no_ca = ember_cli("start", "--address", "127.0.0.1:1", "--tls", "--tls-ca-dir", str(tmp_path), "--token", "t",
                      env=_env())
    assert no_ca.returncode != 0 and f"no cluster CA in {tmp_path}" in no_ca.stderr


def test_ember_tls_makes_a_ca_and_node_certificates_that_verify(tmp_path):
    ca = ember_cli("tls", "ca", str(tmp_path / "ca"), "--name", "prod")
    assert ca.returncode == 0, ca.stderr
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    again = ember_cli("tls", "ca", str(tmp_path / "ca"))
    assert again.returncode != 0 and "exists; a new CA would orphan its nodes" in again.stderr
    node = ember_cli("tls", "node", str(tmp_path / "node1"), "--ca-dir", str(tmp_path / "ca"), "--host", "127.0.0.1")
    assert node.returncode == 0, node.stderr
    env = dict(line.split("=", 1) for line in node.stdout.split())
    files = TlsFiles(pathlib.Path(env["EMBER_TLS_CERT"]), pathlib.Path(env["EMBER_TLS_KEY"]),
                     pathlib.Path(env["EMBER_TLS_CA"]))
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600 and not (tmp_path / "node1" / "ca.key").exists()
    # The node's certificate serves and is trusted by a client of the same CA, over a real handshake.
    server = files.server_context()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            conn, _ = listener.accept()
            accepted = threading.Thread(target=lambda: server.wrap_socket(conn, server_side=True).sendall(b"ok"))
            accepted.start()
            with files.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as client:
                assert client.recv(2) == b"ok"
            accepted.join(10)
            conn.close()
    missing = ember_cli("tls", "node", str(tmp_path / "node2"), "--ca-dir", str(tmp_path / "nowhere"), "--host", "x")
    assert missing.returncode != 0 and "no CA in" in missing.stderr
