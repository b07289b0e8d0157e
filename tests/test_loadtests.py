"""loadtests/locustfile.py and loadtests/client_api_locustfile.py against a
real local cluster: short headless locust runs whose every call type is made
and none fails, and the files' refusal of any target that is not loopback.

locust is never imported here: importing it monkey-patches the whole test
process with gevent (socket, threading, subprocess...). It runs in a
subprocess, and the module is skipped when it is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from ember._private import runtime
from ember_common import rpc
from ember.v1 import objectstore_pb2, objectstore_pb2_grpc

if importlib.util.find_spec("locust") is None:  # pytest.importorskip would import (and patch)
    pytest.skip("locust is not installed (pip install locust)", allow_module_level=True)

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
CLIENT_API_LOCUSTFILE = ROOT / "loadtests" / "client_api_locustfile.py"
CALLS = ["Gcs.KvPut", "Gcs.KvGet", "Gcs.GetAllNodes", "ObjectStore.Create", "ObjectStore.Seal",
         "ObjectStore.Locate", "ObjectStore.Delete", "Raylet.GetNodeStats"]


def _locust(env: dict[str, str], *args: str, timeout: float = 25,
            locustfile: pathlib.Path = LOCUSTFILE) -> subprocess.CompletedProcess[str]:
    # subprocess.run kills locust if it outlives `timeout`; it starts no children.
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("EMBER_GCS_ADDRESS", "EMBER_RAYLET_ADDRESS", "EMBER_STORE_ADDRESS", "EMBER_AUTH_TOKEN")}
    # Belt and braces: the run stops by itself even if -t were lost.
    env.update(EMBER_LOADTEST_MAX_SECONDS="15", EMBER_LOADTEST_MAX_REQUESTS="200000", **extra)
    return env


def test_locust_headless_run(cluster):
    session_dir = pathlib.Path(cluster["session_dir"])
    # The GCS's TCP address (init() reports the unix socket its raylet uses).
    gcs_address = runtime._state.local_node.gcs_address
    assert gcs_address.startswith("127.0.0.1:")
    env = _env(EMBER_GCS_ADDRESS=gcs_address, EMBER_AUTH_TOKEN=(session_dir / "token").read_text().strip())
    out = _locust(env, "-u", "6", "-r", "6", "-t", "5s", "--stop-timeout", "2", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    stats = {entry["name"]: entry for entry in json.loads(out.stdout)}
    for name in CALLS:
        assert stats.get(name, {}).get("num_requests", 0) > 0, (name, sorted(stats))
        assert stats[name]["method"] == "grpc"
    assert sum(e["num_requests"] for e in stats.values()) >= 100, out.stdout
    assert sum(e["num_failures"] for e in stats.values()) == 0, out.stdout
    # The users cleaned up after themselves: no object is left in the store.
    record = json.loads(next((session_dir / "nodes").glob("*.json")).read_text())
    socket = session_dir / f"store-{record['node_id'][:8]}.sock"
    store = objectstore_pb2_grpc.ObjectStoreStub(rpc.channel(f"unix:{socket}", env["EMBER_AUTH_TOKEN"]))
    assert not store.List(objectstore_pb2.ListRequest(), timeout=10).object_ids


def test_client_api_locust_run(cluster):
    """The ClientApi user: tasks, sync calls, puts and actor calls by name,
    every value checked, nothing failed, nothing left held."""
    session_dir = pathlib.Path(cluster["session_dir"])
    env = _env(EMBER_GCS_ADDRESS=runtime._state.local_node.gcs_address,
               EMBER_AUTH_TOKEN=(session_dir / "token").read_text().strip())
    out = _locust(env, "-u", "4", "-r", "4", "-t", "5s", "--stop-timeout", "2", "--json",
                  locustfile=CLIENT_API_LOCUSTFILE)
    assert out.returncode == 0, out.stderr[-3000:]
    stats = {entry["name"]: entry for entry in json.loads(out.stdout)}
    for name in ("Connect", "CreateActor", "Submit", "Get", "Release", "Run", "Put"):
        assert stats.get(f"ClientApi.{name}", {}).get("num_requests", 0) > 0, (name, sorted(stats))
    assert stats["ClientApi.Submit"]["num_requests"] >= 20, out.stdout
    assert sum(e["num_failures"] for e in stats.values()) == 0, out.stdout


def test_client_api_locustfile_refuses_non_loopback_targets():
    out = _locust(_env(EMBER_GCS_ADDRESS="127.0.0.1:1", EMBER_CLIENT_API_ADDRESS="10.0.0.1:6380",
                       EMBER_RAYLET_ADDRESS="unix:/x", EMBER_STORE_ADDRESS="unix:/y", EMBER_AUTH_TOKEN="x"),
                  "-u", "1", "-r", "1", "-t", "2s", locustfile=CLIENT_API_LOCUSTFILE)
    assert out.returncode != 0
    assert "refusing to load-test" in out.stderr + out.stdout


@pytest.mark.parametrize("address", ["10.0.0.1:6380", "192.0.2.1:6380", "example.invalid:6380"])
def test_locustfile_refuses_non_loopback_targets(address):
    out = _locust(_env(EMBER_GCS_ADDRESS=address, EMBER_AUTH_TOKEN="x"), "-u", "1", "-r", "1", "-t", "2s")
    assert out.returncode != 0
    assert "refusing to load-test" in out.stderr + out.stdout
