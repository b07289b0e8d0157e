"""A job's configuration (`ember.init(namespace=, runtime_env=, job_config=)`,
`ember.job_config.JobConfig`) reaches every task and actor of the job: its
code search path, namespace and default actor lifetime, and its metadata is
kept with the job. Drivers with their own configuration run as processes of
their own against this module's cluster."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import ember
from ember._private import runtime
from ember.job_config import JobConfig
from ember.v1 import gcs_pb2
from tests.conftest import pid_gone

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _driver(cluster: dict, code: str) -> subprocess.CompletedProcess[str]:
    token = (pathlib.Path(cluster["session_dir"]) / "token").read_text().strip()
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EMBER_AUTH_TOKEN": token}, cwd=ROOT)


def _last_json(out: subprocess.CompletedProcess[str]) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_code_search_path_puts_the_jobs_code_on_its_workers_path(cluster, tmp_path):
    code_dir = tmp_path / "jobcode"
    code_dir.mkdir()
    (code_dir / "jobcfg_helpers_7f3a.py").write_text("def triple(x):\n    return 3 * x\n")

    @ember.remote
    def use_helper(x):
        import jobcfg_helpers_7f3a
        return jobcfg_helpers_7f3a.triple(x)

    # This driver's job has no such path: the module is nowhere to import.
    with pytest.raises(ModuleNotFoundError):
        ember.get(use_helper.remote(1))
    # A job that names the directory (relative to its cwd, as Ray takes it)
    # imports it in its tasks and actors, though its driver never does.
    out = _driver(cluster, f"""
        import json, os, sys, ember
        from ember.job_config import JobConfig
        os.chdir({str(tmp_path)!r})
        ember.init(address={cluster["gcs_address"]!r}, job_config=JobConfig(code_search_path=["jobcode"]))
        assert "jobcfg_helpers_7f3a" not in sys.modules
        @ember.remote
        def use_helper(x):
            import jobcfg_helpers_7f3a
            return jobcfg_helpers_7f3a.triple(x)
        @ember.remote
        class UsesHelper:
            def call(self, x):
                import jobcfg_helpers_7f3a
                return jobcfg_helpers_7f3a.triple(x)
        a = UsesHelper.remote()
        print(json.dumps({{"task": ember.get(use_helper.remote(2)), "actor": ember.get(a.call.remote(5))}}))
    """)
    assert _last_json(out) == {"task": 6, "actor": 15}


def test_namespace_from_job_config_holds_inside_tasks_and_init_namespace_wins(cluster):
    out = _driver(cluster, f"""
        import json, ember
        from ember.job_config import JobConfig
        ember.init(address={cluster["gcs_address"]!r}, job_config=JobConfig(ray_namespace="team-a"))
        @ember.remote
        class Svc:
            def ping(self): return "pong"
        svc = Svc.options(name="svc").remote()
        @ember.remote
        def inside():
            # A task looks names up in its job's namespace, and its actors go there.
            ctx = ember.get_runtime_context()
            helper = Svc.options(name="made-in-task").remote()
            ember.get(helper.ping.remote())
            return [ctx.namespace, ember.get(ember.get_actor("svc").ping.remote())]
        print(json.dumps({{"driver": ember.get_runtime_context().namespace, "task": ember.get(inside.remote()),
                          "task_actor": ember.get(ember.get_actor("made-in-task").ping.remote())}}))
    """)
    assert _last_json(out) == {"driver": "team-a", "task": ["team-a", "pong"], "task_actor": "pong"}

    out = _driver(cluster, f"""
        import json, ember
        from ember.job_config import JobConfig
        ember.init(address={cluster["gcs_address"]!r}, namespace="team-b", job_config=JobConfig(ray_namespace="team-a"))
        print(json.dumps({{"driver": ember.get_runtime_context().namespace}}))
    """)
    assert _last_json(out) == {"driver": "team-b"}


def test_default_actor_lifetime_detached_outlives_the_driver(cluster):
    out = _driver(cluster, f"""
        import json, os, ember
        from ember.job_config import JobConfig
        ember.init(address={cluster["gcs_address"]!r}, namespace="lifetimes",
                   job_config=JobConfig(default_actor_lifetime="detached"))
        @ember.remote
        class Box:
            def pid(self): return os.getpid()
        kept = Box.options(name="kept").remote()
        ended = Box.options(name="ended", lifetime="non_detached").remote()
        print(json.dumps({{"kept": ember.get(kept.pid.remote()), "ended": ember.get(ended.pid.remote())}}))
    """)
    pids = _last_json(out)
    assert pid_gone(pids["ended"]), "a non_detached actor outlived its driver"
    kept = ember.get_actor("kept", namespace="lifetimes")
    assert ember.get(kept.pid.remote()) == pids["kept"]
    with pytest.raises(ValueError, match="no live actor named 'ended'"):
        ember.get_actor("ended", namespace="lifetimes")
    ember.kill(kept)
    assert pid_gone(pids["kept"])


def test_job_metadata_is_kept_with_the_job(cluster):
    out = _driver(cluster, f"""
        import json, ember
        from ember.job_config import JobConfig
        info = ember.init(address={cluster["gcs_address"]!r}, job_config=JobConfig(metadata={{"team": "search", "run": "7"}}))
        print(json.dumps({{"job_id": info["job_id"]}}))
    """)
    job_id = bytes.fromhex(_last_json(out)["job_id"])
    jobs = {j.job_id: j for j in runtime.client().gcs.GetAllJobs(gcs_pb2.GetAllJobsRequest(), timeout=10).jobs}
    assert dict(jobs[job_id].metadata) == {"team": "search", "run": "7"}
    assert jobs[job_id].is_dead  # the driver exited


def test_init_refuses_a_bad_job_configuration_before_starting_anything(cluster):
    # These are checked before the connection: the module's driver stays connected.
    with pytest.raises(RuntimeError, match="already called"):
        ember.init(job_config=JobConfig())
    from ember._private.runtime import _job_settings

    with pytest.raises(TypeError, match="JobConfig"):
        _job_settings(None, None, {"code_search_path": ["x"]})
    with pytest.raises(ValueError, match="both to ember.init and in its job_config"):
        _job_settings(None, {}, JobConfig(runtime_env={}))
    with pytest.raises(NotImplementedError, match="sets conda"):
        _job_settings(None, {"conda": "base"}, None)
    with pytest.raises(ValueError, match="does not exist"):
        _job_settings(None, None, JobConfig(runtime_env={"working_dir": "/no/such/dir"}))
    with pytest.raises(ValueError, match="not a valid namespace"):
        _job_settings("", None, None)
    settings, metadata, job_env = _job_settings(None, {}, JobConfig(code_search_path=["rel"], metadata={"k": "v"}))
    assert job_env is None
    assert settings.namespace == "" and settings.code_search_path == (os.path.abspath("rel"),)
    assert metadata == {"k": "v"}


def test_a_fresh_driver_with_an_unbuildable_runtime_env_fails_without_starting_a_cluster(tmp_path):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import ember
        try:
            ember.init(runtime_env={"env_vars": {"A": "1"}, "conda": "base"})
        except NotImplementedError as e:
            print("REFUSED", e)
        print("INITIALIZED", ember.is_initialized())
    """)], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "EMBER_SESSION_ROOT": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "REFUSED the runtime_env given to ember.init sets conda" in out.stdout and "INITIALIZED False" in out.stdout
    assert not list(tmp_path.iterdir()), "a session was made for an init that was refused"


def test_job_config_checks_and_json_form():
    jc = JobConfig(code_search_path=("a", "b"), metadata={"k": "v"}, ray_namespace="ns",
                   default_actor_lifetime="detached", jvm_options=["-Xmx1g"])
    assert jc.code_search_path == ["a", "b"] and jc.default_actor_lifetime.value == "detached"
    again = JobConfig.from_json(json.dumps({"code_search_path": ["a", "b"], "metadata": {"k": "v"},
                                            "ray_namespace": "ns", "default_actor_lifetime": "detached"}))
    assert (again.code_search_path, again.metadata, again.ray_namespace) == (["a", "b"], {"k": "v"}, "ns")
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        JobConfig.from_json('{"colour": "red"}')
    with pytest.raises(TypeError, match="code_search_path must be a list"):
        JobConfig(code_search_path="a:b")
    with pytest.raises(TypeError, match="str -> str"):
        JobConfig(metadata={"k": 1})
    with pytest.raises(ValueError, match="'detached' or 'non_detached'"):
        JobConfig(default_actor_lifetime="forever")
    with pytest.raises(TypeError, match="namespace must be a str"):
        JobConfig(ray_namespace=3)
    with pytest.raises(TypeError, match="runtime_env must be a dict"):
        JobConfig(runtime_env=["pip"])
