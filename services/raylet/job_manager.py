"""Submitted jobs on the head node: each entrypoint runs as a supervised
driver process (its own process group) in the job's runtime environment,
its output kept in a file and streamed, its state recorded in the GCS.

Why in the head's raylet and not in the GCS: the GCS may run as several
replicas that hand leadership over; a driver supervised by one would be
orphaned (or killed) by a failover, while the raylet already starts and
watches processes on its node, builds runtime environments there and owns
the node's CPUs an entrypoint may reserve. The records, not the processes,
are what must survive a GCS failover, and they are in the GCS KV.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pathlib
import signal
import time
from typing import AsyncIterator, Awaitable, Callable, Protocol

import psutil

from ember_common.errors import AlreadyExists, InvalidArgument, NotFound
from ember_common.job_records import JobRecord, JobStatus, check_submission_id, new_submission_id
from ember_common.runtime_env_spec import ResolvedEnv

log = logging.getLogger(__name__)

JOB_ENV_VAR = "EMBER_JOB_RUNTIME_ENV"  # (ember._private.runtime_env_support reads it in the driver)
SUBMISSION_ID_VAR = "EMBER_JOB_SUBMISSION_ID"
_TAIL_POLL_S = 0.05


class JobStore(Protocol):
    """The job records (the GCS KV in the service; a dict in unit tests)."""

    async def put(self, record: JobRecord) -> None: ...

    async def get(self, submission_id: str) -> JobRecord | None: ...

    async def all(self) -> list[JobRecord]: ...


class EnvBuilder(Protocol):
    async def ensure(self, env: str) -> "WorkerSetupLike": ...


class WorkerSetupLike(Protocol):
    python: str
    cwd: str | None
    env: dict[str, str]


@dataclasses.dataclass
class _Running:
    record: JobRecord
    env: str
    task: asyncio.Task[None] | None = None
    process: asyncio.subprocess.Process | None = None
    stopping: bool = False
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class JobManager:
    def __init__(self, node_id: str, store: JobStore, envs: EnvBuilder, log_dir: pathlib.Path,
                 driver_env: dict[str, str], reserve_cpus: Callable[[float], Awaitable[Callable[[], None]]],
                 stop_grace_s: float = 3.0) -> None:
        self._node_id = node_id
        self._store = store
        self._envs = envs
        self._log_dir = log_dir
        self._driver_env = driver_env  # what every entrypoint's environment starts from (address, token)
        self._reserve_cpus = reserve_cpus  # waits for the CPUs, returns their release
        self._stop_grace_s = stop_grace_s
        self._jobs: dict[str, _Running] = {}  # the jobs this node supervises (until they end)

    def log_path(self, submission_id: str) -> pathlib.Path:
        return self._log_dir / f"job-driver-{submission_id}.log"

    def envs_in_use(self) -> set[str]:
        return {job.env for job in self._jobs.values() if job.env}

    async def recover(self) -> None:
        """Records of jobs a previous supervisor (a raylet since restarted)
        left unfinished: their processes are gone with it."""
        for record in await self._store.all():
            if not record.status.is_terminal() and record.submission_id not in self._jobs:
                record.status, record.end_time = JobStatus.FAILED, time.time()
                record.message = "the job's supervisor (the head node's raylet) restarted while it ran"
                await self._store.put(record)

    async def submit(self, entrypoint: str, submission_id: str, runtime_env: str, runtime_env_given: str,
                     entrypoint_num_cpus: float, metadata: dict[str, str]) -> str:
        if not entrypoint.strip():
            raise InvalidArgument("the entrypoint is empty: give the command to run")
        if entrypoint_num_cpus < 0:
            raise InvalidArgument(f"entrypoint_num_cpus must be >= 0, got {entrypoint_num_cpus}")
        try:
            if submission_id:
                check_submission_id(submission_id)
            ResolvedEnv.from_json(runtime_env)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        submission_id = submission_id or new_submission_id()
        if submission_id in self._jobs or await self._store.get(submission_id) is not None:
            raise AlreadyExists(f"a job with submission id {submission_id!r} exists already")
        record = JobRecord(submission_id=submission_id, entrypoint=entrypoint, start_time=time.time(),
                           runtime_env=runtime_env_given, metadata=dict(metadata),
                           entrypoint_num_cpus=entrypoint_num_cpus, node_id=self._node_id,
                           message="waiting for its runtime environment and resources")
        job = self._jobs[submission_id] = _Running(record, runtime_env)
        try:
            await self._store.put(record)
        except BaseException:
            del self._jobs[submission_id]
            raise
        job.task = asyncio.get_running_loop().create_task(self._supervise(job))
        return submission_id

    async def _supervise(self, job: _Running) -> None:
        record = job.record
        release: Callable[[], None] | None = None
        try:
            setup = await self._envs.ensure(job.env) if job.env else None
            if record.entrypoint_num_cpus > 0:
                release = await self._reserve_cpus(record.entrypoint_num_cpus)
            if job.stopping:
                await self._end(job, JobStatus.STOPPED, "stopped before it started", None)
                return
            env = {**os.environ, **self._driver_env, **(setup.env if setup else {}),
                   SUBMISSION_ID_VAR: record.submission_id, JOB_ENV_VAR: job.env, "PYTHONUNBUFFERED": "1"}
            with open(self.log_path(record.submission_id), "ab") as out:
                job.process = await asyncio.create_subprocess_shell(
                    record.entrypoint, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                    cwd=setup.cwd if setup else None, env=env, start_new_session=True)
            record.status, record.driver_pid = JobStatus.RUNNING, job.process.pid
            record.message = "the entrypoint is running"
            await self._store.put(record)
            code = await job.process.wait()
            if job.stopping:
                await self._end(job, JobStatus.STOPPED, "Job was intentionally stopped.", code)
            elif code == 0:
                await self._end(job, JobStatus.SUCCEEDED, "Job finished successfully.", code)
            else:
                await self._end(job, JobStatus.FAILED, f"Job entrypoint command failed with exit code {code}", code)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # its environment or its start failed: the job did not run
            log.warning("job %s could not start: %s", record.submission_id, e)
            await self._end(job, JobStatus.FAILED, f"the job could not start: {e}", None)
        finally:
            if release is not None:
                release()

    async def _end(self, job: _Running, status: JobStatus, message: str, code: int | None) -> None:
        record = job.record
        record.status, record.message, record.exit_code, record.end_time = status, message, code, time.time()
        try:
            await self._store.put(record)
        finally:
            self._jobs.pop(record.submission_id, None)
            job.done.set()

    async def info(self, submission_id: str) -> JobRecord:
        """NotFound for an unknown id; InvalidArgument for one no job can have."""
        try:
            check_submission_id(submission_id)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        job = self._jobs.get(submission_id)
        if job is not None:
            return job.record
        record = await self._store.get(submission_id)
        if record is None:
            raise NotFound(f"no job with submission id {submission_id!r}")
        return record

    async def list(self) -> list[JobRecord]:
        records = {r.submission_id: r for r in await self._store.all()}
        records.update({sid: job.record for sid, job in self._jobs.items()})
        return sorted(records.values(), key=lambda r: (r.start_time, r.submission_id))

    async def stop(self, submission_id: str) -> bool:
        """End the job's process tree: SIGTERM to its process group and every
        descendant, SIGKILL to what is left after the grace period."""
        await self.info(submission_id)  # NOT_FOUND for an unknown id
        job = self._jobs.get(submission_id)
        if job is None:
            return False
        job.stopping = True
        process = job.process
        if process is None and job.task is not None and not job.task.done():
            job.task.cancel()  # still waiting for its environment or CPUs: it never starts
            await self._end(job, JobStatus.STOPPED, "the job was stopped before it started", None)
            return True
        if process is not None and process.returncode is None:
            tree = _tree(process.pid)
            _signal_all(process.pid, tree, signal.SIGTERM)
            try:
                await asyncio.wait_for(job.done.wait(), self._stop_grace_s)
            except asyncio.TimeoutError:
                pass
            _signal_all(process.pid, [p for p in tree if p.is_running()], signal.SIGKILL)
            for child in tree:  # (reaped by their parents; wait until none is left)
                await asyncio.to_thread(_wait_gone, child, self._stop_grace_s)
        await job.done.wait()
        return True

    async def logs(self, submission_id: str) -> str:
        await self.info(submission_id)
        path = self.log_path(submission_id)
        return (await asyncio.to_thread(path.read_bytes)).decode(errors="replace") if path.exists() else ""

    async def tail(self, submission_id: str) -> AsyncIterator[str]:
        """What the job printed, then what it prints, until it has ended."""
        await self.info(submission_id)
        path = self.log_path(submission_id)
        offset = 0
        while True:
            ended = submission_id not in self._jobs
            if path.exists():
                chunk = await asyncio.to_thread(_read_from, path, offset)
                if chunk:
                    offset += len(chunk)
                    yield chunk.decode(errors="replace")
                    continue
            if ended:
                return
            await asyncio.sleep(_TAIL_POLL_S)

    async def close(self) -> None:
        """The raylet stops: its jobs' process trees end with it."""
        for submission_id in list(self._jobs):
            job = self._jobs.get(submission_id)
            if job is not None and job.process is not None and job.process.returncode is None:
                _signal_all(job.process.pid, _tree(job.process.pid), signal.SIGKILL)
            if job is not None and job.task is not None:
                job.task.cancel()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _signal_all(pid: int, tree: list[psutil.Process], sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the entrypoint's session: its shell and what it started
    except (ProcessLookupError, PermissionError):
        pass
    for process in tree:  # and descendants that left the group
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def _wait_gone(process: psutil.Process, timeout: float) -> None:
    try:
        process.wait(timeout)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired, ChildProcessError):
        pass


def _read_from(path: pathlib.Path, offset: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(1024 * 1024)
