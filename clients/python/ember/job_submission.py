"""`ember.job_submission`: submit a program to a cluster and follow it
(Ray's `ray.job_submission`).

    client = JobSubmissionClient("127.0.0.1:6380")    # the cluster's (GCS) address, or "auto"
    sid = client.submit_job(entrypoint="python train.py", runtime_env={"working_dir": "."})
    client.get_job_status(sid)                          # JobStatus.RUNNING
    async for lines in client.tail_job_logs(sid): ...

The job service runs on the head node, behind the cluster token (read from
the environment or the cluster's session directory on this machine, as
`ember.init` does). The entrypoint's `ember.init()` / `ember.init(address="auto")`
joins the cluster and runs in the job's runtime_env.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, AsyncIterator

import grpc
from ember.v1 import gcs_pb2, job_pb2, job_pb2_grpc

from ember._private import runtime_env_support
from ember_common import rpc
from ember_common.config import Config
from ember_common.job_records import JobRecord, JobStatus

__all__ = ["JobDetails", "JobInfo", "JobStatus", "JobSubmissionClient"]


@dataclasses.dataclass
class JobDetails:
    """A submitted job, as Ray describes one (times in ms since the epoch)."""

    submission_id: str
    entrypoint: str
    status: JobStatus
    message: str
    start_time: int | None
    end_time: int | None
    metadata: dict[str, str]
    runtime_env: dict[str, Any]
    driver_exit_code: int | None
    driver_pid: int | None
    entrypoint_num_cpus: float
    type: str = "SUBMISSION"

    @property
    def job_id(self) -> str:
        return self.submission_id

    @classmethod
    def _of(cls, record: JobRecord) -> "JobDetails":
        return cls(submission_id=record.submission_id, entrypoint=record.entrypoint, status=record.status,
                   message=record.message, start_time=int(record.start_time * 1000) or None,
                   end_time=int(record.end_time * 1000) or None, metadata=dict(record.metadata),
                   runtime_env=json.loads(record.runtime_env) if record.runtime_env else {},
                   driver_exit_code=record.exit_code, driver_pid=record.driver_pid or None,
                   entrypoint_num_cpus=record.entrypoint_num_cpus)


JobInfo = JobDetails  # Ray's older name


class JobSubmissionClient:
    def __init__(self, address: str | None = None, *, _token: str | None = None) -> None:
        """address: the cluster's address (as ember.init takes it: "host:port"
        of its GCS, or "auto" for the latest cluster started on this machine;
        default EMBER_ADDRESS, else "auto")."""
        from ember._private import runtime  # (its _resolve finds the token and TLS files as ember.init does)
        from ember_common.auth import TOKEN_ENV
        from ember_common.gcs_client import GcsClient

        address = address or os.environ.get("EMBER_ADDRESS") or "auto"
        self._gcs_address, self._token, _ = runtime._resolve(address, _token or os.environ.get(TOKEN_ENV),
                                                             Config.load())
        self._gcs = GcsClient(self._gcs_address, self._token, failover_window_s=10.0)
        try:
            nodes = self._gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=10).nodes
        except grpc.RpcError as e:
            self._gcs.close()
            raise ConnectionError(f"cannot reach the cluster at {self._gcs_address}: "
                                  f"{e.code().name} {e.details()}") from None
        head = [n for n in nodes if n.alive and n.is_head]
        if not head:
            self._gcs.close()
            raise ConnectionError(f"the cluster at {self._gcs_address} has no live head node to run jobs")
        node = head[0]
        self._address = (f"unix:{node.raylet_socket}" if node.raylet_socket and os.path.exists(node.raylet_socket)
                         else f"{node.node_address}:{node.raylet_port}")
        self._channel = rpc.channel(self._address, self._token)
        self._stub = job_pb2_grpc.JobServiceStub(self._channel)

    def _call(self, method: str, request: Any, timeout: float = 30) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=timeout)
        except grpc.RpcError as e:
            raise _error(e) from None

    def submit_job(self, *, entrypoint: str, job_id: str | None = None, runtime_env: dict[str, Any] | None = None,
                   metadata: dict[str, str] | None = None, submission_id: str | None = None,
                   entrypoint_num_cpus: float | None = None, entrypoint_num_gpus: float | None = None,
                   entrypoint_memory: int | None = None, entrypoint_resources: dict[str, float] | None = None) -> str:
        """Start `entrypoint` (a shell command) on the head node in
        `runtime_env` (its working_dir and py_modules are uploaded first);
        returns the submission id."""
        if entrypoint_num_gpus or entrypoint_memory or entrypoint_resources:
            raise NotImplementedError("entrypoint_num_gpus, entrypoint_memory and entrypoint_resources are not "
                                      "supported: the entrypoint runs on the head node (entrypoint_num_cpus is)")
        if job_id is not None and submission_id is not None and job_id != submission_id:
            raise ValueError("give either job_id or submission_id (the same thing), not both")
        env = runtime_env_support.validate(runtime_env, "a job")
        resolved = runtime_env_support.Resolver(self._gcs).resolve(env).to_json() if env else ""
        request = job_pb2.SubmitJobRequest(
            entrypoint=entrypoint, submission_id=submission_id or job_id or "", runtime_env=resolved,
            runtime_env_given=json.dumps(env, sort_keys=True, default=str) if env else "",
            entrypoint_num_cpus=float(entrypoint_num_cpus or 0))
        request.metadata.update(metadata or {})
        return self._call("SubmitJob", request).submission_id

    def get_job_info(self, job_id: str) -> JobDetails:
        return JobDetails._of(JobRecord.from_proto(self._call("GetJobInfo", job_pb2.GetJobInfoRequest(
            submission_id=job_id))))

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def list_jobs(self) -> list[JobDetails]:
        reply = self._call("ListJobs", job_pb2.ListJobsRequest())
        return [JobDetails._of(JobRecord.from_proto(j)) for j in reply.jobs]

    def stop_job(self, job_id: str) -> bool:
        """End the job's processes; False if it had ended already."""
        return self._call("StopJob", job_pb2.StopJobRequest(submission_id=job_id), timeout=60).stopped

    def get_job_logs(self, job_id: str) -> str:
        return self._call("GetJobLogs", job_pb2.GetJobLogsRequest(submission_id=job_id)).logs

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """What the job prints, as it prints it (from its start), until it ends."""
        channel = rpc.aio_channel(self._address, self._token)
        try:
            stream = job_pb2_grpc.JobServiceStub(channel).TailJobLogs(
                job_pb2.TailJobLogsRequest(submission_id=job_id), metadata=rpc.token_metadata(self._token))
            try:
                async for chunk in stream:
                    yield chunk.text
            except grpc.aio.AioRpcError as e:
                raise _error(e) from None
        finally:
            await channel.close()

    def close(self) -> None:
        self._channel.close()
        self._gcs.close()

    def __enter__(self) -> "JobSubmissionClient":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def _error(e: grpc.RpcError) -> Exception:
    code, details = e.code(), e.details()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return PermissionError(f"the job service refused the request: {details}")
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS):
        return ValueError(details)
    return RuntimeError(f"{code.name}: {details}")
