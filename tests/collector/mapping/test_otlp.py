"""mapping.otlp: the request as the collector reads it gives every value the official schema
gives, and a bad value costs its span alone."""

from __future__ import annotations

import math
import struct
import time

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_costs.pricing import Pricer
from otel_costs_collector.mapping import otlp, rows
from otel_costs_collector.mapping.read import value_of
from otel_costs_collector.mapping.rows import map_request, span_count
from otel_costs_collector.storage.columns import COLUMNS, USER

from ..spans import SEMCONV, any_value, build, sdk_request

NOW = time.time_ns()


def _same(a, b) -> bool:
    """Equal, NaN included (a NaN double is read as NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.booleans(),
    st.binary(max_size=20),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, min_size=1, max_size=4), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(values)
def test_a_value_reads_as_the_official_schema_reads_it(v) -> None:
    encoded = any_value(v)
    assert _same(otlp.value(encoded.SerializeToString()), value_of(encoded))


@pytest.mark.parametrize(
    "encoded",
    [
        AnyValue(),  # no value
        AnyValue(string_value=""),
        AnyValue(string_value="é" * 64),  # 128 bytes: a two-byte length
        AnyValue(int_value=0),
        AnyValue(int_value=-1),  # ten bytes
        AnyValue(int_value=2**63 - 1),
        AnyValue(int_value=-(2**63)),
        AnyValue(double_value=-0.0),
        AnyValue(bool_value=False),
        AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="a", value=AnyValue(int_value=1))])),
        AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="x"), AnyValue()])),
        AnyValue(array_value=ArrayValue()),
    ],
    ids=repr,
)
def test_edge_values(encoded: AnyValue) -> None:
    assert _same(otlp.value(encoded.SerializeToString()), value_of(encoded))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x0a\x01a" + b"\x18\x05",  # a string, then an int: the last field wins
        b"\x18\x85\x80\x80\x80\x80\x80\x80\x80\x80\x00",  # 5 in ten bytes (not minimal)
        b"\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # seventy bits: int64 keeps 64
        b"\x10\x02",  # a bool of 2
        b"\x10\x80\x01",  # a bool in two bytes
        b"\x21" + struct.pack("<d", 1.5) + b"\x18\x01",  # a double, then an int
        b"\x0a\x01a\x48\x01",  # an unknown field after the string
    ],
)
def test_encodings_another_encoder_may_write(raw: bytes) -> None:
    assert _same(otlp.value(raw), value_of(AnyValue.FromString(raw)))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x0a\x02\xff\xfe",
        b"\x0a\x05ab",
        b"\x18\x80",
        b"\x0a" + b"\x80\x01" + b"\xff" * 128,
        b"\x18" + b"\xff" * (1 << 20),
    ],
)
def test_a_value_that_is_not_one_raises(raw: bytes) -> None:
    """(The last: a varint that never ends, a megabyte long: refused by upb, not walked.)"""
    with pytest.raises(otlp.BadValue):
        otlp.value(raw)


def test_a_span_with_a_bad_read_value_is_rejected_alone() -> None:
    request = build(
        [
            ({**SEMCONV, "user.id": "u1", "http.body": "b1"}, 16, 8, NOW, NOW + 1),
            ({**SEMCONV, "user.id": "u2"}, 16, 8, NOW, NOW + 1),
            ({**SEMCONV, "user.id": "u3"}, 16, 8, NOW, NOW + 1),
        ]
    )
    body = bytearray(request.SerializeToString())
    marker = bytes(AnyValue(string_value="u2").SerializeToString())
    assert body.count(marker) == 1
    body[body.index(marker) : body.index(marker) + len(marker)] = b"\x0a\x02\xff\xfe"
    # An attribute the mapping never reads, broken too: never decoded, its span is kept.
    unread = bytes(AnyValue(string_value="b1").SerializeToString())
    body[body.index(unread) : body.index(unread) + len(unread)] = b"\x0a\x02\xff\xfe"
    result = map_request(otlp.parse(bytes(body)), Pricer())
    assert [row[3] for row in result.rows] == ["01" * 8, "03" * 8]
    assert result.rejected == 1
    assert result.errors == [f"span {'02' * 8}: attribute 'user.id': a string value is not UTF-8"]
    # The official schema refuses the whole request for that value.
    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(bytes(body))


def test_events_and_links_are_not_read() -> None:
    """A span's events (prompts, often) are not decoded: one that is not valid OTLP does not
    cost its span, and an attribute name that is not UTF-8 still refuses the request."""
    request = build([(SEMCONV, 16, 8, NOW, NOW + 1)])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.events.add(name="gen_ai.content.prompt", time_unix_nano=NOW).attributes.add(
        key="gen_ai.prompt", value=AnyValue(string_value="p" * 100_000)
    )
    span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    body = request.SerializeToString()
    # An event whose name is not UTF-8 (the official schema refuses it).
    broken = body.replace(b"gen_ai.content.prompt", b"gen_ai.content.promp\xff")
    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(broken)
    for raw in (body, broken):
        result = map_request(otlp.parse(raw), Pricer())
        assert (len(result.rows), result.rejected) == (1, 0)
    with pytest.raises(DecodeError):
        otlp.parse(body.replace(b"gen_ai.usage.input_tokens", b"gen_ai.usage.input_token\xff"))


def test_an_official_request_maps_as_its_bytes_do() -> None:
    request = sdk_request([SEMCONV, {**SEMCONV, "tenant.id": "acme"}], resource={"service.version": "1.2"})
    official = map_request(request, Pricer(), token="t")
    parsed = map_request(otlp.parse(request.SerializeToString()), Pricer(), token="t")
    assert official.rows == parsed.rows and len(parsed.rows) == 2
    assert span_count(request) == span_count(otlp.parse(request.SerializeToString())) == 2


def test_the_copy_declares_every_official_field_but_events_and_links() -> None:
    lite = otlp.Request.DESCRIPTOR.fields_by_name["resource_spans"].message_type
    lite_span = lite.fields_by_name["scope_spans"].message_type.fields_by_name["spans"].message_type
    official = {f.name: f.number for f in Span.DESCRIPTOR.fields}
    assert {f.name: f.number for f in lite_span.fields} == {
        k: n for k, n in official.items() if k not in ("events", "links")
    }
    assert lite_span.fields_by_name["attributes"].message_type.GetOptions().map_entry


def test_decoded_values_are_remembered_and_bounded(monkeypatch) -> None:
    """Values repeat across spans, so their decoding is remembered: never in place of another
    value, and never more than the bound."""
    monkeypatch.setattr(rows, "_MAX_KNOWN", 8)
    rows._KNOWN.clear()
    users = [f"u{i}" for i in range(40)] + [True, 1, 1.0, "1"]
    request = build([({**SEMCONV, "user.id": u}, 16, 8, NOW + i, NOW + i + 1) for i, u in enumerate(users)])
    for _ in range(2):  # decoded, then remembered
        result = map_request(otlp.parse(request.SerializeToString()), Pricer())
        # (an integer user id is a user; a boolean or a float is not)
        assert [row[USER] for row in result.rows] == [f"u{i}" for i in range(40)] + ["", "1", "", "1"]
        assert 0 < len(rows._KNOWN) <= 8
    # A value longer than what is remembered is decoded each time.
    rows._KNOWN.clear()
    map_request(build([({**SEMCONV, "user.id": "u" * 100}, 16, 8, NOW, NOW + 1)]), Pricer())
    assert AnyValue(string_value="u" * 100).SerializeToString() not in rows._KNOWN


@pytest.mark.parametrize(("name", "rejected"), [("tenant.id", 2), ("process.command", 0)])
def test_a_bad_resource_value_rejects_its_calls_only_when_read(name: str, rejected: int) -> None:
    """A tenant on the resource that cannot be read must not leave its calls stored without a
    tenant: they are rejected, named. A resource value the mapping never reads is not decoded."""
    request = build(
        [(SEMCONV, 16, 8, NOW, NOW + 1), (SEMCONV, 16, 8, NOW, NOW + 1)],
        resource={"service.name": "svc", name: "zz-marker"},
    )
    body = request.SerializeToString()
    marker = AnyValue(string_value="zz-marker").SerializeToString()
    result = map_request(otlp.parse(body.replace(marker, b"\x0a\x09\xff" + b"z" * 8)), Pricer())
    assert (result.rejected, len(result.rows)) == (rejected, 2 - rejected)
    if rejected:
        assert result.errors == [
            f"span {s}: resource attribute {name!r}: a string value is not UTF-8" for s in ("01" * 8, "02" * 8)
        ]
    else:
        assert [row[COLUMNS.index("service")] for row in result.rows] == ["svc", "svc"]
