"""A submitted job's record: what the job service keeps of it in the GCS KV
(namespace "job_submission", one JSON value per submission id), so it
outlives a GCS failover; read by the job service and sent to clients as
job_pb2.JobDetails."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import secrets
from typing import Any

from ember.v1 import job_pb2

KV_NAMESPACE = "job_submission"
_SUBMISSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class JobStatus(str, enum.Enum):
    """Ray's job states (ray.job_submission.JobStatus)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)

    def __str__(self) -> str:
        return self.value


def new_submission_id() -> str:
    return f"embersubmit_{secrets.token_hex(8)}"


def check_submission_id(submission_id: str) -> str:
    if not _SUBMISSION_ID.match(submission_id):
        raise ValueError(f"submission id {submission_id!r} must be 1-128 characters of letters, digits and _.:-")
    return submission_id


@dataclasses.dataclass
class JobRecord:
    submission_id: str
    entrypoint: str
    status: JobStatus = JobStatus.PENDING
    message: str = ""
    exit_code: int | None = None
    start_time: float = 0.0
    end_time: float = 0.0
    runtime_env: str = ""  # as the user gave it (JSON)
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    driver_pid: int = 0
    entrypoint_num_cpus: float = 0.0
    node_id: str = ""  # hex: its supervisor's node

    def to_json(self) -> bytes:
        fields: dict[str, Any] = dataclasses.asdict(self)
        fields["status"] = self.status.value
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "JobRecord":
        fields = json.loads(raw)
        fields["status"] = JobStatus(fields["status"])
        return cls(**fields)

    def to_proto(self) -> job_pb2.JobDetails:
        details = job_pb2.JobDetails(
            submission_id=self.submission_id, entrypoint=self.entrypoint,
            status=job_pb2.JobStatus.Value(self.status.value), message=self.message,
            has_exit_code=self.exit_code is not None, exit_code=self.exit_code or 0, start_time=self.start_time,
            end_time=self.end_time, runtime_env=self.runtime_env, driver_pid=self.driver_pid,
            entrypoint_num_cpus=self.entrypoint_num_cpus, node_id=self.node_id)
        details.metadata.update(self.metadata)
        return details

    @classmethod
    def from_proto(cls, details: job_pb2.JobDetails) -> "JobRecord":
        return cls(
            submission_id=details.submission_id, entrypoint=details.entrypoint,
            status=JobStatus(job_pb2.JobStatus.Name(details.status)), message=details.message,
            exit_code=details.exit_code if details.has_exit_code else None, start_time=details.start_time,
            end_time=details.end_time, runtime_env=details.runtime_env, metadata=dict(details.metadata),
            driver_pid=details.driver_pid, entrypoint_num_cpus=details.entrypoint_num_cpus, node_id=details.node_id)
