from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubscribeRequest(_message.Message):
    __slots__ = ("instance", "applied_version")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_VERSION_FIELD_NUMBER: _ClassVar[int]
    instance: str
    applied_version: str
    def __init__(self, instance: _Optional[str] = ..., applied_version: _Optional[str] = ...) -> None: ...

class RewriteTable(_message.Message):
    __slots__ = ("version", "targets")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    version: str
    targets: _containers.RepeatedCompositeFieldContainer[TargetRewrite]
    def __init__(self, version: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[TargetRewrite, _Mapping]]] = ...) -> None: ...

class HeaderValue(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class TargetRewrite(_message.Message):
    __slots__ = ("key", "route", "target", "model", "paths", "set_headers", "remove_headers", "api")
    class PathsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    SET_HEADERS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_HEADERS_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    key: str
    route: str
    target: str
    model: str
    paths: _containers.ScalarMap[str, str]
    set_headers: _containers.RepeatedCompositeFieldContainer[HeaderValue]
    remove_headers: _containers.RepeatedScalarFieldContainer[str]
    api: str
    def __init__(self, key: _Optional[str] = ..., route: _Optional[str] = ..., target: _Optional[str] = ..., model: _Optional[str] = ..., paths: _Optional[_Mapping[str, str]] = ..., set_headers: _Optional[_Iterable[_Union[HeaderValue, _Mapping]]] = ..., remove_headers: _Optional[_Iterable[str]] = ..., api: _Optional[str] = ...) -> None: ...
