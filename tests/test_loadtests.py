"""A short locust run against a real local cluster: requests flow, none fail."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("locust")

ROOT = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("cluster")


def test_locust_headless_run(cluster):
    session_dir = pathlib.Path(cluster["session_dir"])
    env = {
        **os.environ,
        "EMBER_GCS_ADDRESS": cluster["gcs_address"],
        "EMBER_AUTH_TOKEN": (session_dir / "token").read_text(),
    }
    out = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
         "-u", "6", "-r", "6", "-t", "4s", "--only-summary", "--json", "--stop-timeout", "2"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    stats = {entry["name"]: entry for entry in json.loads(out.stdout)}
    for name in ["Gcs.KvPut", "Gcs.KvGet", "ObjectStore.Create", "ObjectStore.Seal", "ObjectStore.Delete",
                 "Raylet.GetNodeStats"]:
        assert stats[name]["num_requests"] > 0, name
    assert sum(e["num_failures"] for e in stats.values()) == 0, out.stdout
