"""The job manager's logic without gRPC: records in a dict, real entrypoint
processes (sh), a runtime-env builder that says what it was asked."""

import asyncio
import dataclasses
import pathlib

import psutil
import pytest

from ember_common.errors import AlreadyExists, InvalidArgument, NotFound
from ember_common.job_records import JobRecord, JobStatus
from ember_raylet.job_manager import JobManager
from ember_raylet.runtime_envs import RuntimeEnvSetupFailed


class DictStore:
    def __init__(self):
        self.records: dict[str, bytes] = {}

    async def put(self, record):
        self.records[record.submission_id] = record.to_json()

    async def get(self, submission_id):
        raw = self.records.get(submission_id)
        return JobRecord.from_json(raw) if raw is not None else None

    async def all(self):
        return [JobRecord.from_json(r) for r in self.records.values()]


@dataclasses.dataclass
class Setup:
    python: str
    cwd: str | None
    env: dict


class Envs:
    def __init__(self, cwd):
        self.cwd = cwd

    async def ensure(self, env):
        if "FAIL" in env:
            raise RuntimeEnvSetupFailed("pip install failed: no such package")
        return Setup("python", str(self.cwd), {"FROM_ENV": "yes"})


async def _no_cpus(amount):
    return lambda: None


def _manager(tmp_path, store=None):
    return JobManager("ab" * 8, store or DictStore(), Envs(tmp_path), tmp_path, {"EMBER_ADDRESS": "x"}, _no_cpus,
                      stop_grace_s=1)


async def _ended(jobs, sid):
    while not (record := await jobs.info(sid)).status.is_terminal():
        await asyncio.sleep(0.02)
    return record


def test_a_job_runs_in_its_environment_and_ends_with_its_exit_code(tmp_path):
    async def main():
        jobs = _manager(tmp_path)
        env = '{"env_vars":{"A":"1"}}'
        sid = await jobs.submit("echo $FROM_ENV $EMBER_ADDRESS $EMBER_JOB_RUNTIME_ENV; pwd", "", env, "{}", 0, {})
        record = await _ended(jobs, sid)
        assert record.status == JobStatus.SUCCEEDED and record.exit_code == 0
        assert await jobs.logs(sid) == f"yes x {env}\n{tmp_path}\n"
        failed = await jobs.submit("exit 4", "four", "", "", 0, {})
        record = await _ended(jobs, failed)
        assert (record.status, record.exit_code) == (JobStatus.FAILED, 4) and "exit code 4" in record.message
        chunks = [c async for c in jobs.tail(sid)]
        assert "".join(chunks) == await jobs.logs(sid)
        assert [r.submission_id for r in await jobs.list()] == [sid, "four"]

    asyncio.run(main())


def test_bad_input_and_a_failed_environment(tmp_path):
    async def main():
        store = DictStore()
        jobs = _manager(tmp_path, store)
        for args, error in [(("", "", "", "", 0, {}), "entrypoint is empty"),
                            (("true", "a b", "", "", 0, {}), "must be 1-128"),
                            (("true", "", "{bad", "", 0, {}), "not JSON"),
                            (("true", "", "", "", -1, {}), "entrypoint_num_cpus")]:
            with pytest.raises(InvalidArgument, match=error):
                await jobs.submit(*args)
        assert store.records == {}
        with pytest.raises(NotFound):
            await jobs.info("nope")
        with pytest.raises(NotFound):
            await jobs.stop("nope")
        sid = await jobs.submit("true", "once", '{"env_vars":{"FAIL":"1"}}', "", 0, {})
        with pytest.raises(AlreadyExists):
            await jobs.submit("true", "once", "", "", 0, {})
        record = await _ended(jobs, sid)
        assert record.status == JobStatus.FAILED and record.exit_code is None
        assert "could not start: pip install failed" in record.message

    asyncio.run(main())


def test_stop_ends_the_process_group_and_recover_fails_orphans(tmp_path):
    async def main():
        store = DictStore()
        jobs = _manager(tmp_path, store)
        sid = await jobs.submit("sleep 60 & sleep 60; wait", "", "", "", 0, {})
        while (await jobs.info(sid)).status != JobStatus.RUNNING:
            await asyncio.sleep(0.02)
        shell = psutil.Process((await jobs.info(sid)).driver_pid)
        while len(shell.children()) < 2:
            await asyncio.sleep(0.02)
        tree = [shell, *shell.children(recursive=True)]
        assert await jobs.stop(sid) is True
        assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        record = await jobs.info(sid)
        assert record.status == JobStatus.STOPPED
        assert await jobs.stop(sid) is False
        # A record a previous supervisor left RUNNING is failed by the next one.
        orphan = JobRecord("orphan", "sleep 1", JobStatus.RUNNING)
        await store.put(orphan)
        await _manager(tmp_path, store).recover()
        record = await store.get("orphan")
        assert record.status == JobStatus.FAILED and "restarted" in record.message

    asyncio.run(main())
