"""runtime_env with real processes: env_vars, working_dir (uploaded once,
unpacked per node, the worker's cwd and first on its import path,
excludes honoured), py_modules (a package directory and a wheel), for
tasks, actors and whole jobs (merged as Ray merges), workers of different
environments never shared, unused environments collected after their
grace period, and bad input refused before anything is created."""

import os
import pathlib
import subprocess
import sys
import textwrap
import zipfile

import pytest

import ember
from ember.exceptions import RuntimeEnvSetupError
from ember.runtime_env import RuntimeEnv
from ember.v1 import gcs_pb2
from ember_common import auth
from ember_common import runtime_env_packages as packages
from tests.helpers import build_wheel, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env_cluster(tmp_path_factory):
    """A cluster whose nodes forget unused environments after 1 s (and retire idle workers after 0.5 s)."""
    saved = {k: os.environ.get(k) for k in ("EMBER_RUNTIME_ENV_GC_GRACE_S", "EMBER_RUNTIME_ENV_GC_INTERVAL_S",
                                            "EMBER_IDLE_WORKER_TIMEOUT_S")}
    os.environ.update(EMBER_RUNTIME_ENV_GC_GRACE_S="1", EMBER_RUNTIME_ENV_GC_INTERVAL_S="0.2",
                      EMBER_IDLE_WORKER_TIMEOUT_S="0.5")
    try:
        info = ember.init(num_cpus=2)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield info
    ember.shutdown()


@ember.remote
def probe(module: str = ""):
    import importlib

    value = importlib.import_module(module).VALUE if module else None
    return {"pid": os.getpid(), "cwd": os.getcwd(), "MODE": os.environ.get("MODE"), "value": value,
            "files": sorted(os.listdir(".")), "path0": sys.path[0]}


@ember.remote
def nested_probe():
    return ember.get(probe.remote())


@ember.remote
class Box:
    def look(self, module=""):
        import importlib

        return importlib.import_module(module).VALUE if module else None, os.environ.get("MODE"), os.getcwd()


def _working_dir(root: pathlib.Path, value: str) -> str:
    root.mkdir()
    (root / "wd_module.py").write_text(f"VALUE = {value!r}\n")
    (root / "notes.log").write_text("left out\n")
    (root / "cache").mkdir()
    (root / "cache" / "blob.bin").write_bytes(b"\0" * 1000)
    return str(root)


def _package_dirs(info) -> list[pathlib.Path]:
    root = pathlib.Path(info["session_dir"]) / "runtime_resources"
    return [p for p in root.glob("*/pkg/*") if not p.name.startswith(".")]


@pytest.mark.parametrize("empty", [None, {}, RuntimeEnv()])
def test_an_empty_runtime_env_runs_on_the_default_workers(env_cluster, empty):
    assert ember.get(probe.options(runtime_env=empty).remote(), timeout=60)["MODE"] is None
    box = Box.options(runtime_env=empty).remote()
    assert ember.get(box.look.remote(), timeout=60)[:2] == (None, None)
    ember.kill(box)


def test_working_dir_and_env_vars_for_a_task(env_cluster, tmp_path):
    wd = _working_dir(tmp_path / "wd", "first")
    env = {"working_dir": wd, "env_vars": {"MODE": "fast"}, "excludes": ["*.log", "cache/"]}
    got = ember.get(probe.options(runtime_env=env).remote("wd_module"), timeout=60)
    assert got["value"] == "first" and got["MODE"] == "fast"
    assert got["files"] == ["wd_module.py"], "excludes were not honoured"
    assert pathlib.Path(got["cwd"]).name == pathlib.Path(got["path0"]).name  # cwd, and first on the import path
    assert got["cwd"] != wd  # a copy unpacked on the node, not the driver's directory
    plain = ember.get(probe.remote(), timeout=60)
    assert plain["MODE"] is None and plain["pid"] != got["pid"]
    # The same environment again: the same cached package, a worker of that environment.
    again = ember.get(probe.options(runtime_env=env).remote("wd_module"), timeout=60)
    assert again["cwd"] == got["cwd"]
    # Another environment never shares the first one's worker.
    other = ember.get(probe.options(runtime_env={"env_vars": {"MODE": "slow"}}).remote(), timeout=60)
    assert other["MODE"] == "slow" and other["pid"] not in (got["pid"], again["pid"], plain["pid"])


def test_a_task_s_children_inherit_its_environment(env_cluster):
    got = ember.get(nested_probe.options(runtime_env={"env_vars": {"MODE": "inherited"}}).remote(), timeout=60)
    assert got["MODE"] == "inherited"


def test_py_modules_from_a_directory_and_abuild_wheel(env_cluster, tmp_path):
    package = tmp_path / "src" / "pm_dir_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 'from a directory'\n")
    wheel = tmp_path / "pm_wheel_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pm_wheel_pkg/__init__.py", "VALUE = 'from a wheel'\n")
        z.writestr("pm_wheel_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pm-wheel-pkg\nVersion: 1.0\n")
    env = {"py_modules": [str(package), str(wheel)]}
    assert ember.get(probe.options(runtime_env=env).remote("pm_dir_pkg"), timeout=60)["value"] == "from a directory"
    assert ember.get(probe.options(runtime_env=env).remote("pm_wheel_pkg"), timeout=60)["value"] == "from a wheel"
    with pytest.raises(ember.exceptions.TaskError, match="No module named 'pm_dir_pkg'"):
        ember.get(probe.remote("pm_dir_pkg"), timeout=60)


def test_an_actor_runs_in_its_environment(env_cluster, tmp_path):
    wd = _working_dir(tmp_path / "actor_wd", "actor's")
    box = Box.options(runtime_env={"working_dir": wd, "env_vars": {"MODE": "actor"}}).remote()
    value, mode, cwd = ember.get(box.look.remote("wd_module"), timeout=60)
    assert (value, mode) == ("actor's", "actor") and cwd != wd
    ember.kill(box)


def test_a_job_s_runtime_env_is_merged_under_its_tasks(env_cluster, tmp_path):
    wd = _working_dir(tmp_path / "job_wd", "job's")
    script = textwrap.dedent(f"""
        import os, ember
        ember.init(address={env_cluster["gcs_address"]!r}, runtime_env={{"working_dir": {wd!r},
                   "env_vars": {{"A": "job", "B": "job"}}}})

        @ember.remote
        def look():
            import wd_module
            return wd_module.VALUE, os.environ.get("A"), os.environ.get("B")

        print("JOB", ember.get(look.remote(), timeout=60))
        print("TASK", ember.get(look.options(runtime_env={{"env_vars": {{"B": "task"}}}}).remote(), timeout=60))
    """)
    token = auth.read_token(pathlib.Path(env_cluster["session_dir"]) / "token")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, auth.TOKEN_ENV: token})
    assert out.returncode == 0, out.stderr
    assert "JOB (\"job's\", 'job', 'job')" in out.stdout
    assert "TASK (\"job's\", 'job', 'task')" in out.stdout  # env_vars merged; working_dir kept from the job


def test_bad_runtime_envs_are_refused_and_nothing_is_uploaded(env_cluster, tmp_path, monkeypatch):
    gcs = ember._private.runtime.client().gcs
    before = set(gcs.KvKeys(gcs_pb2.KvKeysRequest(namespace=packages.KV_NAMESPACE), timeout=10).keys)
    with pytest.raises(ValueError, match="unknown runtime_env key 'working_directory'"):
        probe.options(runtime_env={"working_directory": str(tmp_path)})
    with pytest.raises(ValueError, match="does not exist"):
        probe.options(runtime_env={"working_dir": str(tmp_path / "missing")})
    with pytest.raises(NotImplementedError, match="sets container, which Ember does not build"):
        probe.options(runtime_env={"container": {"image": "x"}})
    big = tmp_path / "big"
    big.mkdir()
    (big / "data.bin").write_bytes(os.urandom(64 * 1024))
    monkeypatch.setenv("EMBER_RUNTIME_ENV_MAX_BYTES", str(32 * 1024))
    with pytest.raises(packages.PackageTooLarge, match="over the limit of 0.0 MiB"):
        probe.options(runtime_env={"working_dir": str(big)}).remote()
    with pytest.raises(packages.PackageTooLarge):
        Box.options(runtime_env={"working_dir": str(big)}, name="never-made").remote()
    with pytest.raises(ValueError, match="no actor|not found|does not exist|named"):
        ember.get_actor("never-made")
    after = set(gcs.KvKeys(gcs_pb2.KvKeysRequest(namespace=packages.KV_NAMESPACE), timeout=10).keys)
    assert after == before


def test_a_package_missing_from_the_gcs_fails_the_task_with_a_setup_error(env_cluster):
    from ember._private import remote_function

    # A spec naming a package nobody uploaded (as a driver of another cluster might).
    uri = "gcs://_ember_pkg_" + "ab" * 32 + ".zip"
    with pytest.raises(RuntimeEnvSetupError, match="is not in the GCS"):
        ember.get(probe.options(runtime_env={"working_dir": uri}).remote(), timeout=60)
    assert remote_function  # (the URI passed validation as Ray's gcs:// URIs do)


def test_unused_environments_are_collected_after_their_grace_period(env_cluster, tmp_path):
    wd = _working_dir(tmp_path / "gc_wd", "collected")
    got = ember.get(probe.options(runtime_env={"working_dir": wd}).remote("wd_module"), timeout=60)
    unpacked = pathlib.Path(got["cwd"])
    assert unpacked.is_dir()
    # The worker retires once idle (0.5 s); 1 s later nothing uses the package: it is deleted.
    wait_until(lambda: not unpacked.exists(), timeout=30, what="the unused package to be deleted")
    # Asked for again, it is fetched and unpacked anew.
    again = ember.get(probe.options(runtime_env={"working_dir": wd}).remote("wd_module"), timeout=60)
    assert again["value"] == "collected" and pathlib.Path(again["cwd"]).is_dir()


def _pip_builds(info, requirement: str) -> int:
    logs = pathlib.Path(info["session_dir"]) / "logs"
    return sum(log.read_text().count(f"installing pip requirements [{requirement!r}]")
               for log in logs.glob("raylet-*.log"))


def test_pip_installs_into_an_environment_only_its_tasks_see(env_cluster, tmp_path):
    wheel = build_wheel(tmp_path / "dist", "ember_tiny_pkg", "installed by pip")
    env = {"pip": {"packages": [wheel], "pip_install_options": ["--no-index"]}}
    got = ember.get(probe.options(runtime_env=env).remote("ember_tiny_pkg"), timeout=120)
    assert got["value"] == "installed by pip"
    with pytest.raises(ember.exceptions.TaskError, match="No module named 'ember_tiny_pkg'"):
        ember.get(probe.remote("ember_tiny_pkg"), timeout=60)
    # A requirements file names the same thing: the same venv, no second install.
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"# the tiny package\n--no-index\n{wheel}\n")
    got = ember.get(probe.options(runtime_env={"pip": str(requirements)}).remote("ember_tiny_pkg"), timeout=120)
    assert got["value"] == "installed by pip"
    assert _pip_builds(env_cluster, wheel) == 1


def test_two_tasks_wanting_a_new_pip_environment_at_once_build_it_once(env_cluster, tmp_path):
    wheel = build_wheel(tmp_path / "dist", "ember_twice_pkg", "built once")
    env = {"pip": {"packages": [wheel], "pip_install_options": ["--no-index"]}}
    refs = [probe.options(runtime_env=env).remote("ember_twice_pkg") for _ in range(2)]
    assert [r["value"] for r in ember.get(refs, timeout=120)] == ["built once", "built once"]
    assert _pip_builds(env_cluster, wheel) == 1


def test_a_failed_pip_install_fails_its_tasks_with_pip_s_error(env_cluster):
    env = {"pip": {"packages": ["ember-no-such-package-anywhere==9.9"], "pip_install_options": ["--no-index"]}}
    refs = [probe.options(runtime_env=env).remote() for _ in range(2)]
    for ref in refs:
        with pytest.raises(RuntimeEnvSetupError, match="(?s)pip install failed .*No matching distribution found for "
                                                       "ember-no-such-package-anywhere==9.9"):
            ember.get(ref, timeout=120)
    venvs = list((pathlib.Path(env_cluster["session_dir"]) / "runtime_resources").glob("*/pip/*"))
    assert not [v for v in venvs if not (v / ".ready").exists()], "a half-built venv was left behind"
    assert ember.get(probe.remote(), timeout=60)["MODE"] is None  # the node goes on
