"""The JobService gRPC servicer (the head's raylet): validates, calls the
job manager, maps its errors."""

from __future__ import annotations

from typing import AsyncIterator

import grpc
import grpc.aio
from ember.v1 import job_pb2, job_pb2_grpc

from ember_common.errors import EmberServiceError
from ember_common.rpc import map_errors, status_of
from ember_raylet.job_manager import JobManager

Ctx = grpc.aio.ServicerContext


class JobServicer(job_pb2_grpc.JobServiceServicer):
    def __init__(self, jobs: JobManager) -> None:
        self._jobs = jobs

    @map_errors
    async def SubmitJob(self, request: job_pb2.SubmitJobRequest, context: Ctx) -> job_pb2.SubmitJobReply:
        submission_id = await self._jobs.submit(
            request.entrypoint, request.submission_id, request.runtime_env, request.runtime_env_given,
            request.entrypoint_num_cpus, dict(request.metadata))
        return job_pb2.SubmitJobReply(submission_id=submission_id)

    @map_errors
    async def GetJobInfo(self, request: job_pb2.GetJobInfoRequest, context: Ctx) -> job_pb2.JobDetails:
        return (await self._jobs.info(request.submission_id)).to_proto()

    @map_errors
    async def ListJobs(self, request: job_pb2.ListJobsRequest, context: Ctx) -> job_pb2.ListJobsReply:
        return job_pb2.ListJobsReply(jobs=[r.to_proto() for r in await self._jobs.list()])

    @map_errors
    async def StopJob(self, request: job_pb2.StopJobRequest, context: Ctx) -> job_pb2.StopJobReply:
        return job_pb2.StopJobReply(stopped=await self._jobs.stop(request.submission_id))

    @map_errors
    async def GetJobLogs(self, request: job_pb2.GetJobLogsRequest, context: Ctx) -> job_pb2.GetJobLogsReply:
        return job_pb2.GetJobLogsReply(logs=await self._jobs.logs(request.submission_id))

    async def TailJobLogs(self, request: job_pb2.TailJobLogsRequest,
                          context: Ctx) -> AsyncIterator[job_pb2.JobLogChunk]:
        try:
            async for text in self._jobs.tail(request.submission_id):
                yield job_pb2.JobLogChunk(text=text)
        except EmberServiceError as e:
            await context.abort(status_of(e), str(e))
