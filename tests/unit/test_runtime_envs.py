"""The node's runtime-environment builder without a cluster: packages
fetched once however many environments want them at once, failures
reported to whoever waits, unused parts deleted after the grace period."""

import asyncio
import os

import pytest

from ember_common import runtime_env_packages as packages
from ember_common.runtime_env_spec import ResolvedEnv
from ember_raylet.runtime_envs import RuntimeEnvs, RuntimeEnvSetupFailed


def _package(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text("X = 1\n")
    data = packages.pack(str(tmp_path / "src"), [], 1 << 20)
    return data, packages.package_uri(data)


def test_shared_parts_are_fetched_once_and_collected_when_unused(tmp_path):
    data, uri = _package(tmp_path)
    fetched, ready, failed = [], [], []

    async def fetch(u):
        fetched.append(u)
        await asyncio.sleep(0.05)  # both environments ask while the first fetch is under way
        return data

    async def main():
        envs = RuntimeEnvs(tmp_path / "rr", fetch, ready.append, lambda e, m: failed.append((e, m)), grace_s=5)
        one = ResolvedEnv(working_dir=uri, env_vars=(("A", "1"),)).to_json()
        two = ResolvedEnv(working_dir=uri, env_vars=(("A", "2"),)).to_json()
        first, second = await asyncio.gather(envs.ensure(one), envs.ensure(two))
        assert fetched == [uri] and sorted(ready) == sorted([one, two]) and not failed
        assert first.cwd == second.cwd and os.path.exists(os.path.join(first.cwd, "mod.py"))
        assert first.env["A"] == "1" and first.env["EMBER_RUNTIME_ENV"] == one
        assert envs.collect({one}, now=1e12) == []  # `one` in use: its package stays
        trash = envs.collect(set(), now=2e12)  # then unused past the grace period
        assert len(trash) == 1 and not os.path.exists(first.cwd)
        assert not envs.is_ready(one) and not envs.is_ready(two)

    asyncio.run(main())


def test_a_failed_fetch_fails_the_environment_for_everyone_waiting(tmp_path):
    _, uri = _package(tmp_path)
    failed = []

    async def fetch(u):
        raise RuntimeEnvSetupFailed(f"package {u} is not in the GCS")

    async def main():
        envs = RuntimeEnvs(tmp_path / "rr", fetch, lambda e: None, lambda e, m: failed.append(m), grace_s=5)
        env = ResolvedEnv(working_dir=uri).to_json()
        results = await asyncio.gather(envs.ensure(env), envs.ensure(env), return_exceptions=True)
        assert all(isinstance(r, RuntimeEnvSetupFailed) and "not in the GCS" in str(r) for r in results)
        assert len(failed) == 1 and not envs.is_ready(env)
        assert not list((tmp_path / "rr").glob("pkg/*"))  # nothing half-made

    asyncio.run(main())
