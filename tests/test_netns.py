"""Two hosts in network namespaces made here (ip netns + a veth pair, each
namespace its own address): a head in one, a node in the other, joined
with `ember start --address`; the nodes reach each other only over those
addresses. Tasks are placed and objects move across. Needs root and
iproute2; skipped otherwise."""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from tests.conftest import wait_gone

PORT = 6390
ROOT = pathlib.Path(__file__).resolve().parent.parent  # the driver below imports tests.helpers from here


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture(scope="module")
def hosts():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for network namespaces")
    tag = f"emb{os.getpid() % 100000}"
    a, b = f"{tag}a", f"{tag}b"
    subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 250)}"
    ip_a, ip_b = f"{subnet}.1", f"{subnet}.2"
    if _run("ip", "netns", "add", a, check=False).returncode != 0:
        pytest.skip("cannot create network namespaces here")
    try:
        _run("ip", "netns", "add", b)
        _run("ip", "link", "add", f"{tag}va", "type", "veth", "peer", "name", f"{tag}vb")
        _run("ip", "link", "set", f"{tag}va", "netns", a)
        _run("ip", "link", "set", f"{tag}vb", "netns", b)
        for ns, dev, ip in ((a, f"{tag}va", ip_a), (b, f"{tag}vb", ip_b)):
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", dev)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        # Short roots: unix socket paths (under the session directory) are limited to 107 bytes.
        roots = {ns: pathlib.Path(tempfile.mkdtemp(prefix=f"{ns}-", dir="/tmp")) for ns in (a, b)}
        yield {"a": (a, ip_a, roots[a]), "b": (b, ip_b, roots[b])}
    finally:
        for ns in (a, b):
            root = locals().get("roots", {}).get(ns)
            if root is not None:
                _in(ns, root, "-m", "ember._private.cli", "stop", check=False)
                assert not wait_gone(str(root)), f"processes of host {ns} left behind"
                shutil.rmtree(root, ignore_errors=True)
            _run("ip", "netns", "del", ns, check=False)


def _in(ns: str, root, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("ip", "netns", "exec", ns, "env", f"EMBER_SESSION_ROOT={root}", *(f"{k}={v}" for k, v in (env or {}).items()),
                sys.executable, *args, check=check)


def test_a_cluster_across_two_namespaces(hosts):
    (a, ip_a, root_a), (b, ip_b, root_b) = hosts["a"], hosts["b"]
    out = _in(a, root_a, "-m", "ember._private.cli", "start", "--head", "--host", ip_a, "--port", str(PORT),
              "--num-cpus", "1", "--object-store-memory", str(256 << 20))
    assert "GCS at" in out.stdout, out.stderr
    token = (root_a / "session_latest" / "token").read_text().strip()
    out = _in(b, root_b, "-m", "ember._private.cli", "start", "--address", f"{ip_a}:{PORT}", "--host", ip_b,
              "--num-cpus", "2", "--resources", '{"b": 1}', "--object-store-memory", str(256 << 20),
              env={"EMBER_AUTH_TOKEN": token})
    assert "joined" in out.stdout, out.stderr
    driver = textwrap.dedent(f"""
        import json, sys, time, numpy as np, ember
        sys.path.insert(0, {str(ROOT)!r})
        from tests.helpers import wait_nodes
        ember.init(address="{ip_a}:{PORT}")
        wait_nodes(2, timeout=20)
        here = lambda: ember.get_runtime_context().get_node_id()
        @ember.remote(resources={{"b": 1}})
        def on_b(arr):
            return int(arr.sum(dtype=np.uint64)), np.arange(3_000_000, dtype=np.int64), here()
        data = np.random.default_rng(1).integers(0, 255, size=20_000_000, dtype=np.uint8)
        total, back, node = ember.get(on_b.remote(ember.put(data)))
        @ember.remote
        def where(s):
            time.sleep(s)
            return here()
        spread = ember.get([where.options(scheduling_strategy="SPREAD").remote(0.1) for _ in range(6)])
        addresses = sorted(n["NodeManagerAddress"] for n in ember.nodes() if n["Alive"])
        print(json.dumps({{"ok": total == int(data.sum(dtype=np.uint64)) and int(back[-1]) == 2_999_999,
                          "node": node, "spread": sorted(set(spread)), "addresses": addresses}}))
        ember.shutdown()
    """)
    out = _in(a, root_a, "-c", driver, env={"EMBER_AUTH_TOKEN": token}, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"]
    assert result["addresses"] == sorted([ip_a, ip_b])
    assert len(result["spread"]) == 2 and result["node"] in result["spread"]
    for ns, root in ((b, root_b), (a, root_a)):
        assert "Stopped 1 node(s)" in _in(ns, root, "-m", "ember._private.cli", "stop").stdout
