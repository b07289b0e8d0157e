"""Jobs: one per driver, numbered by the GCS."""

from __future__ import annotations

import time

from ember.v1 import gcs_pb2

from ember_common import ids
from ember_common.errors import NotFound
from ember_gcs.storage import Storage

TABLE = "jobs"


class JobTable:
    table = TABLE

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._jobs: dict[bytes, gcs_pb2.JobInfo] = {}
        self._next = 1
        self._by_request: dict[bytes, bytes] = {}  # AddJob request_id -> job_id

    def restore(self, rows: dict[bytes, bytes]) -> None:
        """Replace what is in memory with the stored rows (at start and at takeover)."""
        self._jobs, self._next, self._by_request = {}, 1, {}
        for key, raw in rows.items():
            job = self._jobs[key] = gcs_pb2.JobInfo.FromString(raw)
            self._next = max(self._next, ids.job_id_to_int(key) + 1)
            if job.request_id:
                self._by_request[job.request_id] = key

    async def add(self, request: gcs_pb2.AddJobRequest) -> gcs_pb2.JobInfo:
        if request.request_id in self._by_request:  # a retry: the job it made
            return self._jobs[self._by_request[request.request_id]]
        job = gcs_pb2.JobInfo(
            job_id=ids.job_id_from_int(self._next),
            driver_pid=request.driver_pid,
            driver_address=request.driver_address,
            namespace=request.namespace,
            entrypoint=request.entrypoint,
            start_time=time.time(),
            request_id=request.request_id,
            metadata=request.metadata,
        )
        self._next += 1
        await self._storage.put(TABLE, job.job_id, job.SerializeToString())
        self._jobs[job.job_id] = job
        if job.request_id:
            self._by_request[job.request_id] = job.job_id
        return job

    async def finish(self, job_id: bytes) -> None:
        current = self._jobs.get(job_id)
        if current is None:
            raise NotFound(f"job {job_id.hex()} does not exist")
        if current.is_dead:
            return
        job = gcs_pb2.JobInfo()
        job.CopyFrom(current)
        job.is_dead = True
        job.end_time = time.time()
        await self._storage.put(TABLE, job.job_id, job.SerializeToString())
        self._jobs[job_id] = job

    def all(self) -> list[gcs_pb2.JobInfo]:
        return list(self._jobs.values())
