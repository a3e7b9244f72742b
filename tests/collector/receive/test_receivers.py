"""Both receivers over real sockets, into real storage."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from ..spans import SEMCONV, otlp_json, sdk_request

COST = Decimal("0.000285")
PROTO = {"Content-Type": "application/x-protobuf"}


def totals(c):
    return c.query("SELECT count(), sum(cost_total) FROM {db}.genai_spans")[0]


def test_grpc_export_stores_spans_and_reports_partial_success(collector):
    request = sdk_request([dict(SEMCONV), dict(SEMCONV), {"http.route": "/x", "_name": "GET"}])
    request.resource_spans[0].scope_spans[0].spans[1].span_id = b"bad"
    with grpc.insecure_channel(collector.grpc_target) as channel:
        response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    assert response.partial_success.rejected_spans == 1
    assert "span_id 8" in response.partial_success.error_message
    assert totals(collector) == (1, COST)  # stored before the answer


def test_http_protobuf_and_gzip(collector):
    body = sdk_request([dict(SEMCONV)]).SerializeToString()
    other = sdk_request([dict(SEMCONV)]).SerializeToString()  # other span ids
    r1 = httpx.post(collector.http_url + "/v1/traces", content=body, headers=PROTO)
    r2 = httpx.post(
        collector.http_url + "/v1/traces", content=gzip.compress(other), headers={**PROTO, "Content-Encoding": "gzip"}
    )
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert r1.headers["content-type"] == "application/x-protobuf"
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(r1.content)
    assert not response.HasField("partial_success")
    assert totals(collector) == (2, 2 * COST)


def test_http_json_without_cost_is_priced_and_stored(collector):
    doc = otlp_json(
        [
            {
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.cache_read.input_tokens": 1000,
                "tenant.id": "globex",
                "user.id": "u-go",
            },
            {"http.method": "GET"},
        ]
    )
    r = httpx.post(
        collector.http_url + "/v1/traces", content=json.dumps(doc), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {}
    rows = collector.query(
        "SELECT tenant_id, user_id, service, priced_by, cost_total, response_model FROM {db}.genai_spans"
    )
    assert rows == [("globex", "u-go", "checkout-node", "collector", COST, "gpt-4o-mini-2024-07-18")]


@pytest.mark.parametrize(
    "body, headers, status, message",
    [
        (b"\xff\xff\xff garbage", PROTO, 400, "not an OTLP protobuf"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "not JSON"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            {"Content-Type": "application/json"},
            400,
            "not hex",
        ),
        (b'{"resourceSpans": 5}', {"Content-Type": "application/json"}, 400, "not an OTLP"),
        # nested past Python's recursion limit: was a 500 with a traceback
        (b"[" * 100_000, {"Content-Type": "application/json"}, 400, "nested too deeply"),
        (
            (
                '{"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": '
                + '{"kvlistValue": {"values": [{"key": "k", "value": ' * 400
                + '{"intValue": "1"}'
                + "}]}}" * 400
                + "}]}}]}"
            ).encode(),
            {"Content-Type": "application/json"},
            400,
            "nested too deeply",
        ),
        (b"hello", {"Content-Type": "text/plain"}, 415, "content type"),
        (b"hello", {**PROTO, "Content-Encoding": "compress"}, 415, "encoding"),
        (b"not gzip", {**PROTO, "Content-Encoding": "gzip"}, 400, "bad gzip"),
    ],
)
def test_http_bad_requests_get_clear_errors(collector, body, headers, status, message):
    r = httpx.post(collector.http_url + "/v1/traces", content=body, headers=headers)
    assert r.status_code == status
    if headers.get("Content-Type") == "application/json":
        assert message in r.json()["message"]
    else:
        from google.rpc import status_pb2

        assert message in status_pb2.Status.FromString(r.content).message
    assert httpx.get(collector.http_url + "/healthz").status_code == 200  # still serving


def test_size_limits(start_collector):
    c = start_collector(max_request_bytes=4096)
    big = sdk_request([{**SEMCONV, "pad": "x" * 8000}]).SerializeToString()
    r = httpx.post(c.http_url + "/v1/traces", content=big, headers=PROTO)
    assert r.status_code == 413
    bomb = gzip.compress(b"\x00" * 1_000_000)
    r = httpx.post(c.http_url + "/v1/traces", content=bomb, headers={**PROTO, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    with grpc.insecure_channel(c.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                trace_service_pb2.ExportTraceServiceRequest.FromString(big), timeout=10
            )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert totals(c) == (0, None) or totals(c)[0] == 0


def test_healthz_and_metrics(collector):
    from otel_costs import __version__

    assert httpx.get(collector.http_url + "/healthz").json() == {
        "status": "ok",
        "service": "otel-costs",
        "version": __version__,
    }
    httpx.post(
        collector.http_url + "/v1/traces",
        headers=PROTO,
        content=sdk_request([dict(SEMCONV), {"x": 1, "_name": "plain"}]).SerializeToString(),
    )
    text = httpx.get(collector.http_url + "/metrics").text
    assert 'otel_costs_spans_received_total{receiver="http"} 2.0' in text
    assert "otel_costs_spans_dropped_non_genai_total 1.0" in text
    assert "otel_costs_spans_written_total 1.0" in text
    assert "otel_costs_batch_write_seconds_count 1.0" in text
    assert "otel_costs_queue_spans" in text
