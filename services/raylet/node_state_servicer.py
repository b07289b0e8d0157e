"""The NodeState gRPC service (proto/ember/v1/node_state.proto): thin, it
asks `node_state.NodeState` and streams log files off the event loop."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import grpc
import grpc.aio
from ember.v1 import node_state_pb2, node_state_pb2_grpc

from ember_common.errors import EmberServiceError
from ember_common.rpc import map_errors, status_of
from ember_raylet import log_files
from ember_raylet.node_state import NodeState

# How often a followed log file is looked at for what was appended.
FOLLOW_INTERVAL_S = 0.2


class NodeStateServicer(node_state_pb2_grpc.NodeStateServicer):
    def __init__(self, state: NodeState) -> None:
        self._state = state

    @map_errors
    async def GetTaskEvents(self, request: node_state_pb2.GetTaskEventsRequest,
                            context: grpc.aio.ServicerContext) -> node_state_pb2.GetTaskEventsReply:
        return self._state.task_events()

    @map_errors
    async def ListWorkers(self, request: node_state_pb2.ListWorkersRequest,
                          context: grpc.aio.ServicerContext) -> node_state_pb2.ListWorkersReply:
        return self._state.workers()

    @map_errors
    async def ListLogs(self, request: node_state_pb2.ListLogsRequest,
                       context: grpc.aio.ServicerContext) -> node_state_pb2.ListLogsReply:
        return await asyncio.to_thread(self._state.log_files)

    async def StreamLog(self, request: node_state_pb2.StreamLogRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[node_state_pb2.LogChunk]:
        try:
            path = self._state.log_path(request.name)
            offset = await asyncio.to_thread(log_files.tail_offset, path, request.tail_lines)
        except EmberServiceError as e:
            await context.abort(status_of(e), str(e))
        while True:
            try:
                data = await asyncio.to_thread(log_files.read_chunk, path, offset)
            except FileNotFoundError:
                return  # (removed while followed)
            if data:
                offset += len(data)
                yield node_state_pb2.LogChunk(data=data)
            elif not request.follow:
                return
            else:
                await asyncio.sleep(FOLLOW_INTERVAL_S)
