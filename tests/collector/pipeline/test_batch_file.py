"""Batch files: each request's bytes as received with its header (tenant, token), read back
exactly; damaged files refused; version 0.1's framing (appended fields) still read."""

from __future__ import annotations

import pytest

from otel_costs_collector.mapping import otlp
from otel_costs_collector.pipeline import batch_file

from ..spans import SEMCONV, sdk_request


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint(number << 3 | wire)
    return key + (_varint(len(payload)) + payload if wire == 2 else payload)


@pytest.mark.parametrize("tenant", [None, "acme", ""])
def test_records_read_back_as_written(tenant):
    body = sdk_request([dict(SEMCONV)]).SerializeToString()
    data = batch_file.encode([batch_file.Record(body, tenant, "tok-1"), batch_file.Record(b"", None, "tok-2")])
    assert batch_file.split(data) == [batch_file.Record(body, tenant, "tok-1"), batch_file.Record(b"", None, "tok-2")]
    (first, first_tenant, first_token), (empty, _, second_token) = list(batch_file.decode(data))
    assert first == otlp.parse(body)  # parsed as the mapping reads it
    assert (first_tenant, first_token, second_token) == (tenant, "tok-1", "tok-2")
    assert not empty.resource_spans


def test_a_request_carrying_any_field_numbers_is_kept_as_sent():
    """The header is beside the request, not inside it: a request may carry any field."""
    body = sdk_request([dict(SEMCONV)]).SerializeToString() + _field(1002, 2, b"evil") + _field(1004, 2, b"forged")
    data = batch_file.encode([batch_file.Record(body, "acme", "real")])
    assert batch_file.split(data) == [batch_file.Record(body, "acme", "real")]
    ((request, tenant, token),) = batch_file.decode(data)
    assert (tenant, token) == ("acme", "real")
    assert request == otlp.parse(body)


@pytest.mark.parametrize(
    "data",
    [
        b"\x05ab",
        b"\xff",
        b"\x02{}\x00",
        b"\x01x\x00",
        b'\x0e{"token":"t"}\x00',
        b'\x1c{"tenant":1,"token":"t"}\x00' + b"\x00" * 4,
    ],
)
def test_damaged_files_are_refused(data):
    with pytest.raises(ValueError):
        list(batch_file.decode(data))


@pytest.mark.parametrize("tenant", [None, "acme"])
def test_version_0_1_files_are_read(tenant):
    """0.1 appended the request number (1001), the tenant (1002), whether it is forced (1003)
    and the token (1004) to each request's bytes."""
    body = sdk_request([dict(SEMCONV)]).SerializeToString()
    tail = (
        _field(1001, 0, b"\x01")
        + _field(1002, 2, (tenant or "").encode())
        + _field(1003, 0, b"\x01" if tenant is not None else b"\x00")
        + _field(1004, 2, b"tok-1")
    )
    legacy = _varint(len(body) + len(tail)) + body + tail
    (record,) = batch_file.decode_legacy(legacy)
    assert (record.tenant, record.request_token) == (tenant, "tok-1")
    ((request, _, _),) = batch_file.decode(batch_file.encode([record]))
    assert request.resource_spans == otlp.parse(body).resource_spans
