"""The C++ client (clients/cpp): built with CMake against the system's gRPC
and protobuf once per test session, then its test programs run against real
clusters started with `ember start --head` (and `--tls`) on loopback, with
Python drivers of the same cluster for interop both ways. Each C++ test case
is one test here."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Iterator

import pytest

from ember._private import certificates

ROOT = pathlib.Path(__file__).resolve().parent.parent
CPP = ROOT / "clients" / "cpp"
# (kept between runs, so a second run only rebuilds what changed)
BUILD = pathlib.Path(os.environ.get("EMBER_CPP_BUILD_DIR", CPP / "build"))
CODE = str(ROOT / "tests" / "polyglot_code")
EMBER = shutil.which("ember", path=os.path.dirname(sys.executable)) or "ember"
INSTALL = "apt-get install cmake g++ libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler"
MAX_VALUE_BYTES = 8 << 20


def cases(program: str) -> list[str]:
    return re.findall(r"^TEST\((\w+)\)", (CPP / "tests" / f"{program}.cc").read_text(), re.M)


@pytest.fixture(scope="session")
def cpp_build() -> pathlib.Path:
    missing = [tool for tool in ("cmake", "g++", "protoc", "grpc_cpp_plugin") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the C++ client's build tools are missing ({', '.join(missing)}); install them with: {INSTALL}")
    for step in (["cmake", "-S", str(CPP), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                 ["cmake", "--build", str(BUILD), "-j", "2"]):
        out = subprocess.run(step, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, f"{' '.join(step)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return BUILD


def _start_head(root: pathlib.Path, *flags: str, **env: str) -> dict[str, str]:
    """`ember start --head` with a session root of its own; the environment
    the C++ tests run with (EMBER_ADDRESS, EMBER_AUTH_TOKEN, ...)."""
    run_env = {k: v for k, v in os.environ.items()
               if k not in ("EMBER_ADDRESS", "EMBER_AUTH_TOKEN", "EMBER_TLS_CA", "EMBER_TLS_CERT", "EMBER_TLS_KEY")}
    run_env.update(EMBER_SESSION_ROOT=str(root), EMBER_DASHBOARD_PORT="0", **env)
    started = subprocess.run([EMBER, "start", "--head", "--port", "0", "--num-cpus", "2", *flags],
                             capture_output=True, text=True, timeout=120, env=run_env)
    assert started.returncode == 0, started.stderr
    session_dir = (root / "session_latest").resolve()
    run_env.update(EMBER_ADDRESS=json.loads((session_dir / "cluster.json").read_text())["gcs_address"],
                   EMBER_AUTH_TOKEN=(session_dir / "token").read_text().strip(), EMBER_TEST_CODE=CODE,
                   EMBER_PYTHON=sys.executable, EMBER_TEST_SESSION_DIR=str(session_dir))
    return run_env


def _stop(env: dict[str, str]) -> None:
    stopped = subprocess.run([EMBER, "stop"], capture_output=True, text=True, timeout=120, env=env)
    assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    # (short directory names: the session directory holds unix sockets, 107 bytes at most)
    env = _start_head(tmp_path_factory.mktemp("c"),
                      EMBER_CLIENT_API_MAX_VALUE_BYTES=str(MAX_VALUE_BYTES))
    yield env
    _stop(env)


@pytest.fixture(scope="module")
def tls_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = _start_head(tmp_path_factory.mktemp("t"), "--tls")
    other = tmp_path_factory.mktemp("other-ca")
    ca_cert, ca_key = certificates.make_ca(other, "other")
    certificates.issue_node(other, ca_cert, ca_key, ["127.0.0.1"])
    env.update(EMBER_TEST_TLS_DIR=str(pathlib.Path(env["EMBER_TEST_SESSION_DIR"]) / "tls"),
               EMBER_TEST_OTHER_TLS_DIR=str(other))
    yield env
    _stop(env)


def _run(program: pathlib.Path, case: str | None = None, env: dict[str, str] | None = None) -> None:
    out = subprocess.run([str(program), *([case] if case else [])], capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, f"{out.stdout[-6000:]}\n{out.stderr[-6000:]}"
    assert re.search(r"^[1-9]\d* passed, 0 failed$", out.stdout, re.M), out.stdout


def test_codec(cpp_build):
    """The MessagePack codec's bytes and refusals (no cluster)."""
    _run(cpp_build / "codec_tests")


@pytest.mark.parametrize("case", cases("client_tests"))
def test_client(cpp_build, head, case):
    _run(cpp_build / "client_tests", case, head)


@pytest.mark.parametrize("case", cases("tls_tests"))
def test_tls(cpp_build, tls_head, case):
    _run(cpp_build / "tls_tests", case, tls_head)


def test_example_runs(cpp_build, head):
    out = subprocess.run([str(cpp_build / "ember_example"), CODE], capture_output=True, text=True, timeout=120,
                         env=head)
    assert out.returncode == 0, out.stderr
    assert "add(2, 3) = 5" in out.stdout and "Python raised ValueError: on purpose" in out.stdout, out.stdout
