"""The committed stubs are exactly what `python proto/generate.py` makes."""

import filecmp
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_generated_stubs_match_protos(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), "--out", str(tmp_path)], check=True)
    fresh = tmp_path / "ember" / "v1"
    committed = ROOT / "clients" / "python" / "ember" / "v1"
    names = sorted(p.name for p in fresh.iterdir() if p.suffix in (".py", ".pyi"))
    assert names, "generation produced nothing"
    mismatch = [n for n in names if not filecmp.cmp(fresh / n, committed / n, shallow=False)]
    assert not mismatch, f"stale stubs (run python proto/generate.py): {mismatch}"
    extra = sorted(p.name for p in committed.glob("*_pb2*.py*") if p.name not in names)
    assert not extra, f"stubs without a proto: {extra}"


def test_node_stubs_match_protos(tmp_path):
    """The Node client's TypeScript stubs come from the same command (ts-proto,
    installed by `npm ci` in clients/node; CI installs it before pytest)."""
    import pytest

    if not (ROOT / "clients" / "node" / "node_modules" / ".bin" / "protoc-gen-ts_proto").exists():
        pytest.skip("ts-proto is not installed: run `npm ci` in clients/node")
    subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), "--out", str(tmp_path)], check=True)
    fresh = tmp_path / "node" / "ember" / "v1"
    committed = ROOT / "clients" / "node" / "src" / "generated" / "ember" / "v1"
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(p.name for p in committed.iterdir()), "Node stubs without a proto, or missing"
    mismatch = [n for n in names if not filecmp.cmp(fresh / n, committed / n, shallow=False)]
    assert not mismatch, f"stale Node stubs (run python proto/generate.py): {mismatch}"
