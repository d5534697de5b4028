from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProduceRequest(_message.Message):
    __slots__ = ("item", "count", "size", "caller")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    item: str
    count: int
    size: int
    caller: str
    def __init__(self, item: _Optional[str] = ..., count: _Optional[int] = ..., size: _Optional[int] = ..., caller: _Optional[str] = ...) -> None: ...

class Hop(_message.Message):
    __slots__ = ("item", "pod", "caller", "bytes", "elapsed_ms")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    item: str
    pod: str
    caller: str
    bytes: int
    elapsed_ms: float
    def __init__(self, item: _Optional[str] = ..., pod: _Optional[str] = ..., caller: _Optional[str] = ..., bytes: _Optional[int] = ..., elapsed_ms: _Optional[float] = ...) -> None: ...

class ProduceResponse(_message.Message):
    __slots__ = ("item", "count", "payload", "trace")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    item: str
    count: int
    payload: bytes
    trace: _containers.RepeatedCompositeFieldContainer[Hop]
    def __init__(self, item: _Optional[str] = ..., count: _Optional[int] = ..., payload: _Optional[bytes] = ..., trace: _Optional[_Iterable[_Union[Hop, _Mapping]]] = ...) -> None: ...
