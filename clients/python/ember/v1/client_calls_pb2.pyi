from ember.v1 import client_api_pb2 as _client_api_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaggedRun(_message.Message):
    __slots__ = ("tag", "run", "submit", "get")
    TAG_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    tag: int
    run: _client_api_pb2.RunRequest
    submit: _client_api_pb2.SubmitRequest
    get: _client_api_pb2.GetRequest
    def __init__(self, tag: _Optional[int] = ..., run: _Optional[_Union[_client_api_pb2.RunRequest, _Mapping]] = ..., submit: _Optional[_Union[_client_api_pb2.SubmitRequest, _Mapping]] = ..., get: _Optional[_Union[_client_api_pb2.GetRequest, _Mapping]] = ...) -> None: ...

class TaggedReply(_message.Message):
    __slots__ = ("tag", "reply", "replies", "done", "code", "message", "submitted")
    TAG_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    tag: int
    reply: _client_api_pb2.GetReply
    replies: _containers.RepeatedCompositeFieldContainer[_client_api_pb2.GetReply]
    done: bool
    code: int
    message: str
    submitted: _client_api_pb2.SubmitReply
    def __init__(self, tag: _Optional[int] = ..., reply: _Optional[_Union[_client_api_pb2.GetReply, _Mapping]] = ..., replies: _Optional[_Iterable[_Union[_client_api_pb2.GetReply, _Mapping]]] = ..., done: _Optional[bool] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., submitted: _Optional[_Union[_client_api_pb2.SubmitReply, _Mapping]] = ...) -> None: ...
