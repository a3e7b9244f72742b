"""Batch files: each request's bytes plus the collector's fields, read back the same way by
Python and by ClickHouse; a request that forges the collector's fields is recognised."""

from __future__ import annotations

import pytest

from collector import batch_file, sql_mapping

from .spans import SEMCONV, sdk_request


@pytest.mark.parametrize("tenant", [None, "acme", ""])
def test_records_read_back_as_written(tenant):
    request = sdk_request([dict(SEMCONV)])
    data = batch_file.encode([batch_file.Record(request.SerializeToString(), tenant, "tok-1"),
                              batch_file.Record(b"", None, "tok-2")])
    (first, first_tenant, first_token), (empty, _, second_token) = list(batch_file.decode(data))
    assert first.resource_spans[0].scope_spans[0].spans[0].span_id == request.resource_spans[0].scope_spans[0].spans[0].span_id
    assert (first_tenant, first_token, second_token) == (tenant, "tok-1", "tok-2")
    assert not empty.resource_spans


@pytest.mark.parametrize("data", [b"\x05ab", b"\xff", b"\x02\x08\x01"])
def test_damaged_files_are_refused(data):
    with pytest.raises(ValueError):
        list(batch_file.decode(data))


def test_a_request_forging_the_collector_fields_is_recognised(collector, tmp_path):
    """A request may carry fields 1001-1004 itself (a forced tenant, a token). Python would
    let the collector's appended fields win; ClickHouse reads something else, so such a
    request is recognised and must be refused before it is encoded."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    forged = batch_file.encode([batch_file.Record(b"", "evil", "forged")])[1:]  # the tail, unframed
    honest = sdk_request([dict(SEMCONV, **{"tenant.id": "honest"})]).SerializeToString()
    assert not batch_file.forges_collector_fields(ExportTraceServiceRequest.FromString(honest))
    assert batch_file.forges_collector_fields(ExportTraceServiceRequest.FromString(honest + forged))
    data = batch_file.encode([batch_file.Record(honest + forged, None, "real")])
    assert [(t, tok) for _, t, tok in batch_file.decode(data)] == [(None, "real")]
    path = tmp_path / "batch.bin"
    path.write_bytes(data)
    rows = collector.collector.client.query(
        f"SELECT class, tenant_id, request_token FROM ({sql_mapping.mapping_query()})",
        parameters={"batch": str(path)}, settings=sql_mapping.SETTINGS).result_rows
    assert rows != [("row", "honest", "real")]  # why forged requests cannot be encoded
    path.write_bytes(batch_file.encode([batch_file.Record(honest, "acme", "real")]))
    rows = collector.collector.client.query(
        f"SELECT class, tenant_id, request_token FROM ({sql_mapping.mapping_query()})",
        parameters={"batch": str(path)}, settings=sql_mapping.SETTINGS).result_rows
    assert rows == [("row", "acme", "real")]


@pytest.fixture
def collector(collector):
    """Embedded only: ClickHouse's file() reads the collector's own disk."""
    if collector.collector.config.target.kind != "chdb":
        pytest.skip("the SQL mapping reads batch files from the collector's disk: embedded storage only")
    return collector
