"""Job records in the GCS KV (namespace "job_submission"), through the
leader-following GCS client: a record written survives a GCS failover."""

from __future__ import annotations

from typing import Callable

import grpc.aio
from ember.v1 import gcs_pb2

from ember_common.errors import Unavailable
from ember_common.gcs_client import AioGcsClient
from ember_common.job_records import KV_NAMESPACE, JobRecord


def _unavailable(e: grpc.aio.AioRpcError) -> Unavailable:
    return Unavailable(f"the GCS could not be reached for the job records: {e.code().name} {e.details()}")


class GcsJobStore:
    def __init__(self, gcs: Callable[[], AioGcsClient]) -> None:
        self._client = gcs  # (the raylet makes its client when it starts, after this)

    @property
    def _gcs(self) -> AioGcsClient:
        return self._client()

    async def put(self, record: JobRecord) -> None:
        try:
            await self._gcs.KvPut(gcs_pb2.KvPutRequest(namespace=KV_NAMESPACE, key=record.submission_id.encode(),
                                                       value=record.to_json(), overwrite=True), timeout=30)
        except grpc.aio.AioRpcError as e:
            raise _unavailable(e) from None

    async def get(self, submission_id: str) -> JobRecord | None:
        try:
            reply = await self._gcs.KvGet(gcs_pb2.KvGetRequest(namespace=KV_NAMESPACE, key=submission_id.encode()),
                                          timeout=30)
        except grpc.aio.AioRpcError as e:
            raise _unavailable(e) from None
        return JobRecord.from_json(reply.value) if reply.found else None

    async def all(self) -> list[JobRecord]:
        try:
            keys = await self._gcs.KvKeys(gcs_pb2.KvKeysRequest(namespace=KV_NAMESPACE), timeout=30)
        except grpc.aio.AioRpcError as e:
            raise _unavailable(e) from None
        records = []
        for key in keys.keys:
            record = await self.get(key.decode())
            if record is not None:
                records.append(record)
        return records
