"""The OTLP trace request as the collector parses it: the official schema, read through a
copy in which what the mapping never reads stays undecoded.

Reading a span's attributes through the protobuf runtime is most of a mapping's time: every
``KeyValue`` and ``AnyValue`` becomes a Python wrapper object. The copy declares a span's and
a resource's ``attributes`` (field 9 and 1, repeated ``KeyValue {string key = 1; AnyValue
value = 2}``) as ``map<string, bytes>``: the same bytes on the wire (a map entry is a message
with the key as field 1 and the value as field 2), so upb decodes the keys and leaves each
value as its encoded ``AnyValue``, which :func:`value` decodes only for the names the mapping
reads. A span's ``events`` and ``links`` (prompts and completions are often recorded as
events: megabytes) are not declared: upb keeps them as unknown bytes without parsing them.

Everything else (ids, times, names, status, scopes) is the official schema. Keys must be UTF-8,
as before; a value the mapping reads that is not valid raises :class:`BadValue` (the mapping
rejects that span, not the request).
"""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otel_costs_collector.mapping.read import value_of

__all__ = ["BadValue", "DecodeError", "Request", "as_read", "parse", "value"]


class BadValue(ValueError):
    """An attribute value the mapping reads is not a valid OTLP AnyValue."""


_F = descriptor_pb2.FieldDescriptorProto
# Message → its fields left undeclared (kept as unknown bytes): a span's events and links are never read.
_UNREAD = {"Span": ("events", "links")}


def _file(module: Any, maps: dict[str, str]) -> descriptor_pb2.FileDescriptorProto:
    """A copy of ``module``'s file descriptor where each message in ``maps`` has its attribute
    field (named by the value) as ``map<string, bytes>``."""
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    for message in proto.message_type:
        field_name = maps.get(message.name)
        if field_name is not None:
            entry = message.nested_type.add(name="AttributesEntry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_STRING)
            entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL, type=_F.TYPE_BYTES)
            for field in message.field:
                if field.name == field_name:
                    field.type_name = f".{proto.package}.{message.name}.AttributesEntry"
        unread = _UNREAD.get(message.name, ())
        keep = [f for f in message.field if f.name not in unread]
        del message.field[:]
        message.field.extend(keep)
    return proto


def _request_class() -> Any:
    pool = descriptor_pool.DescriptorPool()  # its own pool: the official classes are untouched
    pool.Add(_file(common_pb2, {}))
    pool.Add(_file(resource_pb2, {"Resource": "attributes"}))
    pool.Add(_file(trace_pb2, {"Span": "attributes"}))
    pool.Add(_file(trace_service_pb2, {}))
    name = trace_service_pb2.ExportTraceServiceRequest.DESCRIPTOR.full_name
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


#: The ExportTraceServiceRequest as the collector reads it (see the module's docstring).
Request = _request_class()


def parse(body: bytes) -> Any:
    """An OTLP ExportTraceServiceRequest's bytes as a :data:`Request`. Raises DecodeError."""
    return Request.FromString(body)


def as_read(request: Any) -> Any:
    """``request`` as a :data:`Request` (an official ExportTraceServiceRequest is re-read)."""
    if isinstance(request, Request):
        return request
    return Request.FromString(request.SerializeToString())


_DOUBLE = struct.Struct("<d")


def value(raw: bytes) -> Any:
    """The Python value of an encoded OTLP AnyValue (strings, ints, floats, bools; arrays as
    tuples, kvlists as dicts, bytes; None when it holds none). Raises BadValue."""
    n = len(raw)
    if not n:
        return None
    tag = raw[0]
    # The common shapes, each exactly one field, decoded here; any other goes to upb.
    if tag == 10:  # string_value
        if n > 1 and raw[1] == n - 2:  # shorter than 128 bytes: a one-byte length
            try:
                return raw[2:].decode()
            except UnicodeDecodeError:
                raise BadValue("a string value is not UTF-8") from None
    elif tag == 24:  # int_value (a varint)
        result = shift = 0
        for i in range(1, min(n, 11)):  # a varint has at most ten bytes
            byte = raw[i]
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                if i == n - 1:
                    result &= 0xFFFF_FFFF_FFFF_FFFF  # int64: ten bytes carry 70 bits
                    return result - (1 << 64) if result >= 1 << 63 else result
                break
    elif tag == 33 and n == 9:  # double_value
        return _DOUBLE.unpack_from(raw, 1)[0]
    elif tag == 16 and n == 2 and raw[1] < 0x80:  # bool_value
        return raw[1] != 0
    try:
        return value_of(AnyValue.FromString(raw))
    except DecodeError as exc:
        raise BadValue(f"not an OTLP AnyValue: {exc}") from None
