"""Batch files: the OTLP requests of one batch, as ClickHouse reads them.

A batch file is a sequence of length-delimited records (varint length, then the record),
the framing of ClickHouse's ``Protobuf`` input format. Each record is one request's own
bytes followed by four fields the collector appends (``otlp_batch.proto``): the request's
number in the batch, its forced tenant (from the sender's token) and its token. Appending
is a protobuf merge, so a request is never re-encoded, and a record is still a valid
``ExportTraceServiceRequest`` for Python to read.

The same file is the batch's write-ahead copy, its spool entry and ClickHouse's input.
Pure functions over bytes; no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator, NamedTuple

__all__ = ["Record", "encode", "decode", "split", "parse", "batch_token", "request_token", "forges_collector_fields"]

_REQUEST_NO, _TENANT, _TENANT_FORCED, _TOKEN = 1001, 1002, 1003, 1004
_FIELDS = frozenset((_REQUEST_NO, _TENANT, _TENANT_FORCED, _TOKEN))


class Record(NamedTuple):
    request: bytes  # the ExportTraceServiceRequest as received (protobuf)
    tenant: str | None  # stored as every row's tenant when set
    token: str  # the request's token (client-retry deduplication)


def forges_collector_fields(request: Any) -> bool:
    """Whether a parsed ExportTraceServiceRequest carries field numbers the collector
    appends. Such a request must be refused, not encoded: Python reads the last of repeated
    scalar fields, but ClickHouse's Protobuf reader does not (a test pins this)."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    return any(f.field_number in _FIELDS for f in UnknownFieldSet(request))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(field: int, text: str) -> bytes:
    data = text.encode()
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def encode(records: list[Record]) -> bytes:
    """The batch file's bytes. Record numbers are 1-based positions. Requests must not
    carry the collector's fields (see :func:`forges_collector_fields`)."""
    parts = []
    for no, record in enumerate(records, 1):
        tail = (_varint(_REQUEST_NO << 3) + _varint(no) + _string(_TENANT, record.tenant or "")
                + _varint(_TENANT_FORCED << 3) + (b"\x01" if record.tenant is not None else b"\x00")
                + _string(_TOKEN, record.token))
        parts.append(_varint(len(record.request) + len(tail)))
        parts.append(record.request)
        parts.append(tail)
    return b"".join(parts)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated or oversized varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def split(data: bytes) -> list[bytes]:
    """Each record's bytes, unparsed, in order. Raises ValueError for a damaged file."""
    records, at = [], 0
    while at < len(data):
        size, at = _read_varint(data, at)
        if at + size > len(data):
            raise ValueError("truncated record")
        records.append(data[at:at + size])
        at += size
    return records


def parse(record: bytes) -> tuple[Any, str | None, str]:
    """(ExportTraceServiceRequest, forced tenant, token) of one record of :func:`split`.
    Raises ValueError for a damaged record."""
    from google.protobuf.message import DecodeError
    from google.protobuf.unknown_fields import UnknownFieldSet
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    try:
        request = ExportTraceServiceRequest.FromString(record)
    except DecodeError as exc:
        raise ValueError(f"record is not OTLP: {exc}") from exc
    fields: dict[int, Any] = {}
    for field in UnknownFieldSet(request):  # the appended fields; the last of each wins
        fields[field.field_number] = field.data
    if _TOKEN not in fields:
        raise ValueError("record has no collector fields")
    tenant = fields.get(_TENANT, b"").decode() if fields.get(_TENANT_FORCED) else None
    return request, tenant, fields[_TOKEN].decode()


def decode(data: bytes) -> Iterator[tuple[Any, str | None, str]]:
    """:func:`parse` of each record, in order. Raises ValueError for a damaged file."""
    for record in split(data):
        yield parse(record)


def request_token(body: bytes, tenant: str | None) -> str:
    """A request's token: the same bytes from the same sender are the same request, so an
    exporter's retry is recognised (exporters resend the bytes they serialised)."""
    digest = hashlib.sha256(b"\x00" if tenant is None else b"\x01" + tenant.encode() + b"\x00")
    digest.update(body)
    return digest.hexdigest()[:32]


def batch_token(records: list[Record]) -> str:
    """A batch's deduplication token: the hash of its requests' tokens, in order."""
    return hashlib.sha256("\n".join(r.token for r in records).encode()).hexdigest()[:32]
