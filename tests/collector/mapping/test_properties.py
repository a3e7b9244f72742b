"""Property tests: any span attributes and any request body get a clear answer, never a
crash, and the counts always add up."""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal

import grpc
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_costs import conventions as cv
from otel_costs.pricing import Pricer
from otel_costs_collector.mapping.rows import map_request, oldest_ns
from otel_costs_collector.storage.columns import COLUMNS

from ..spans import build

PRICER = Pricer()
KEYS = sorted(cv.USAGE_ATTRIBUTE_NAMES) + [
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "user.id",
    "tenant.id",
    "feature.name",
    "otel_costs.tag.plan",
    "otel_costs.pricing.status",
    "otel_costs.cost.total",
    "otel_costs.cost.input",
    "metadata",
    "enduser.id",
    "traceloop.association.properties.x",
    "error.type",
    "gen_ai.operation.name",
    "ai.operationId",
]
scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.sampled_from(
        [
            "gpt-4o-mini",
            "claude-sonnet-4-5",
            "openai",
            "anthropic",
            "priced",
            "0.001",
            "NaN",
            "-1",
            "{}",
            '{"a": 1}',
            "x" * 2000,
            "invoke_agent",
            "chat",
            "ai.generateText",
            "aggregate",
        ]
    ),
    st.booleans(),
    st.binary(max_size=20),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))


spans = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(KEYS), values, max_size=12),
        st.sampled_from([16, 16, 16, 3, 0]),
        st.sampled_from([8, 8, 8, 5]),
        st.integers(min_value=0, max_value=2**64 - 1),
        st.integers(min_value=0, max_value=2**64 - 1),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(spans)
def test_mapping_never_raises_and_counts_add_up(span_specs):
    result = map_request(build(span_specs), PRICER)
    rows = [dict(zip(COLUMNS, r)) for r in result.rows]
    assert result.received == len(span_specs) == result.non_genai + result.rejected + len(rows)
    for row in rows:
        assert row["pricing_status"] in ("priced", "overridden", "unpriced", "invalid_usage", "aggregate")
        for part in ("cost_input", "cost_output", "cost_cache_read", "cost_cache_write", "cost_total"):
            assert isinstance(row[part], Decimal) and row[part].is_finite() and row[part] >= 0
        if row["pricing_status"] in ("priced", "overridden"):
            assert row["cost_total"] == (
                row["cost_input"] + row["cost_output"] + row["cost_cache_read"] + row["cost_cache_write"]
            )
        else:
            assert row["cost_total"] == 0
        for tokens in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            assert 0 <= row[tokens] <= 2 * cv.MAX_TOKENS
        assert len(row["user_id"]) <= 256 and len(row["tenant_id"]) <= 256


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
def test_http_receiver_answers_any_protobuf_body(collector, body):
    r = httpx.post(collector.http_url + "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code in (200, 400)


json_docs = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "traceId",
                    "spanId",
                    "attributes",
                    "key",
                    "value",
                    "intValue",
                    "stringValue",
                    "startTimeUnixNano",
                ]
            ),
            children,
            max_size=3,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=json_docs)
def test_http_receiver_answers_any_json_body(collector, doc):
    r = httpx.post(
        collector.http_url + "/v1/traces", content=json.dumps(doc), headers={"Content-Type": "application/json"}
    )
    assert r.status_code in (200, 400), r.text
    assert httpx.get(collector.http_url + "/healthz").status_code == 200


def test_nan_and_inf_do_not_reach_storage(collector):
    now = time.time_ns()
    request = build(
        [
            (
                {
                    "gen_ai.usage.input_tokens": math.nan,
                    "gen_ai.usage.output_tokens": math.inf,
                    "gen_ai.request.model": "gpt-4o-mini",
                },
                16,
                8,
                now,
                now + 5,
            )
        ]
    )
    r = httpx.post(
        collector.http_url + "/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status_code == 200
    assert collector.query("SELECT pricing_status, cost_total, input_tokens FROM {db}.genai_spans") == [
        ("invalid_usage", Decimal(0), 0)
    ]


_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
def test_grpc_receiver_answers_any_message_bytes(collector, body):
    with grpc.insecure_channel(collector.grpc_target) as channel:
        export = channel.unary_unary(_EXPORT)  # raw bytes in and out: no client-side encoding
        try:
            ExportTraceServiceResponse.FromString(export(body, timeout=30))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "not an OTLP" in exc.details(), exc
    assert httpx.get(collector.http_url + "/healthz").status_code == 200


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spans)
def test_grpc_receiver_stores_exactly_what_the_mapping_accepts(collector, span_specs):
    request = build(span_specs)
    expected = map_request(request, PRICER, oldest_ns=oldest_ns(collector.collector.config.raw_ttl_days))
    before = collector.query("SELECT count() FROM {db}.genai_spans")[0][0]
    with grpc.insecure_channel(collector.grpc_target) as channel:
        export = channel.unary_unary(_EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        response = export(request.SerializeToString(), timeout=30)
    assert response.partial_success.rejected_spans == expected.rejected
    stored = collector.query("SELECT count() FROM {db}.genai_spans")[0][0] - before
    # A span id seen before (hypothesis reuses small ids) is a retry, stored once.
    assert stored <= len(expected.rows)


EXTRA_KEYS = KEYS + [
    "llm.input_messages.0.message.content",
    "gen_ai.prompt.0.content",
    "server.address",
    "otel_costs.tag.team",
    "traceloop.association.properties.region",
    "gen_ai.usage.cost",
    "otel_costs.cost.currency",
    "http.request.method",
]
wide_spans = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(EXTRA_KEYS), values, max_size=16),
        st.just(16),
        st.just(8),
        st.integers(min_value=1, max_value=2**63),
        st.integers(min_value=1, max_value=2**63),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(wide_spans)
def test_reading_only_the_attributes_the_mapping_uses_changes_nothing(span_specs):
    request = build(span_specs)
    lean, full = map_request(request, PRICER), map_request(request, PRICER, read_all=True)
    assert (lean.received, lean.non_genai, lean.rejected, lean.errors, lean.request_token) == (
        full.received,
        full.non_genai,
        full.rejected,
        full.errors,
        full.request_token,
    )
    assert lean.rows == full.rows
