"""Batch files: the OTLP requests of one batch as received, each with the header it needs.

A batch file is a sequence of records; a record is a length-delimited header (JSON:
``{"tenant": null | "acme", "token": "…"}``) followed by the length-delimited request, its
bytes as received (never re-encoded, so a request carrying any field numbers is kept as
sent). Lengths are protobuf varints. The same bytes are a batch's write-ahead copy and its
spool entry.

Version 0.1 appended the header to each request as protobuf fields 1001-1004 instead
(:func:`decode_legacy`), so that ClickHouse could read the file; spool files in that framing
are still replayed.

Pure functions over bytes; no I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator, NamedTuple

__all__ = [
    "Damaged",
    "Record",
    "encode",
    "decode",
    "split",
    "parse",
    "decode_legacy",
    "insert_token_of",
    "request_token",
]


class Record(NamedTuple):
    request: bytes  # the ExportTraceServiceRequest as received (protobuf)
    tenant: str | None  # stored as every row's tenant when set
    request_token: str  # a hash of the request and its tenant: an exporter's retry is recognised by it


class Damaged(ValueError):
    """A batch file (or a record in it) that cannot be read: its bytes are at fault, for good."""


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


def encode(records: list[Record]) -> bytes:
    """The batch file's bytes."""
    parts: list[bytes] = []
    for record in records:
        head = json.dumps({"tenant": record.tenant, "token": record.request_token}, separators=(",", ":")).encode()
        parts += (_varint(len(head)), head, _varint(len(record.request)), record.request)
    return b"".join(parts)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if at >= len(data) or shift > 63:
            raise Damaged("truncated or oversized varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _chunks(data: bytes) -> Iterator[bytes]:
    at = 0
    while at < len(data):
        size, at = _read_varint(data, at)
        if at + size > len(data):
            raise Damaged("truncated record")
        yield data[at : at + size]
        at += size


def split(data: bytes) -> list[Record]:
    """Each record with its request unparsed, in order. Raises Damaged for a damaged file."""
    chunks = list(_chunks(data))
    if len(chunks) % 2:
        raise Damaged("a record's header has no request after it")
    records = []
    for head, request in zip(chunks[::2], chunks[1::2]):
        try:
            doc = json.loads(head)
            tenant, token = doc["tenant"], doc["token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise Damaged(f"damaged record header: {exc}") from None
        if not isinstance(token, str) or not (tenant is None or isinstance(tenant, str)):
            raise Damaged("damaged record header: tenant and token must be strings")
        records.append(Record(request, tenant, token))
    return records


def parse(record: Record) -> Any:
    """The ExportTraceServiceRequest of a record. Raises Damaged when it is not one."""
    from otel_costs_collector.mapping import otlp

    try:
        return otlp.parse(record.request)
    except otlp.DecodeError as exc:
        raise Damaged(f"record is not OTLP: {exc}") from exc


def decode(data: bytes) -> Iterator[tuple[Any, str | None, str]]:
    """(request, forced tenant, token) of each record, in order. Raises Damaged for a
    damaged file."""
    for record in split(data):
        yield parse(record), record.tenant, record.request_token


# Version 0.1's framing: each record a request with fields appended to it.
_LEGACY_NO, _LEGACY_TENANT, _LEGACY_FORCED, _LEGACY_TOKEN = 1001, 1002, 1003, 1004


def decode_legacy(data: bytes) -> list[Record]:
    """The records of a batch file written by version 0.1 (the header as appended protobuf
    fields 1001-1004; the last of each wins, as the Python mapping read them). Raises
    Damaged for a damaged file."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    records = []
    for chunk in _chunks(data):
        request = parse(Record(chunk, None, ""))
        fields: dict[int, Any] = {}
        for field in UnknownFieldSet(request):
            fields[field.field_number] = field.data
        if _LEGACY_TOKEN not in fields:
            raise Damaged("record has no collector fields")
        tenant = fields.get(_LEGACY_TENANT, b"").decode() if fields.get(_LEGACY_FORCED) else None
        # The appended fields stay in the bytes: the mapping never reads unknown fields.
        records.append(Record(chunk, tenant, fields[_LEGACY_TOKEN].decode()))
    return records


def request_token(body: bytes, tenant: str | None) -> str:
    """A request's token: the same bytes from the same sender are the same request, so an
    exporter's retry is recognised (exporters resend the bytes they serialised)."""
    digest = hashlib.sha256(b"\x00" if tenant is None else b"\x01" + tenant.encode() + b"\x00")
    digest.update(body)
    return digest.hexdigest()[:32]


def insert_token_of(records: list[Record]) -> str:
    """A batch's insert token (ClickHouse's insert_deduplication_token): the hash of its
    requests' request tokens, in order."""
    return hashlib.sha256("\n".join(r.request_token for r in records).encode()).hexdigest()[:32]
