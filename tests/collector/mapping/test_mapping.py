"""The pure span→row mapping: proto in, columns out."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otel_costs import attribute_to
from otel_costs.pricing import Pricer
from otel_costs_collector.mapping.rows import map_request
from otel_costs_collector.receive.otlp_http import parse_otlp_json
from otel_costs_collector.storage.columns import COLUMNS
from tests.aggregates import SHAPES

from ..spans import SEMCONV, otlp_json, sdk_request

# gpt-4o-mini: 200 uncached × $0.15/M + 1000 cached × $0.075/M + 300 × $0.60/M
COST = Decimal("0.000285")


MONEY = ("cost_input", "cost_output", "cost_cache_read", "cost_cache_write", "cost_total")


def rows_of(request: ExportTraceServiceRequest, pricer: Pricer | None = None) -> tuple[list[dict], object]:
    """The rows as dicts; money is Decimal end to end."""
    result = map_request(request, pricer or Pricer())
    rows = [dict(zip(COLUMNS, values)) for values in result.rows]
    for row in rows:
        assert all(isinstance(row[c], Decimal) for c in MONEY)
    return rows, result


def test_sdk_priced_span_keeps_its_cost_and_attribution():
    with attribute_to(user_id="u1", tenant_id="acme", feature="chat", plan="pro"):
        request = sdk_request([dict(SEMCONV)])
    (row,), result = rows_of(request)
    assert (result.received, result.non_genai, result.rejected) == (1, 0, 0)
    assert row["priced_by"] == "sdk"
    assert row["cost_total"] == COST
    assert (row["cost_input"], row["cost_cache_read"], row["cost_output"]) == (
        Decimal("0.00003"),
        Decimal("0.000075"),
        Decimal("0.00018"),
    )
    assert (row["user_id"], row["tenant_id"], row["feature"], row["tags"]) == ("u1", "acme", "chat", {"plan": "pro"})
    assert (row["service"], row["provider"], row["request_model"], row["operation"]) == (
        "chat-api",
        "openai",
        "gpt-4o-mini",
        "chat",
    )
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"]) == (1200, 300, 1000)
    assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16


def test_unpriced_span_is_priced_here_identically():
    (sdk,), _ = rows_of(sdk_request([dict(SEMCONV)]))
    (bare,), _ = rows_of(sdk_request([dict(SEMCONV)], priced=False))
    assert bare["priced_by"] == "collector"
    for column in (
        "cost_input",
        "cost_output",
        "cost_cache_read",
        "cost_cache_write",
        "cost_total",
        "pricing_status",
        "pricing_source",
        "pricing_model",
        "input_tokens",
    ):
        assert bare[column] == sdk[column], column


def test_non_genai_spans_are_dropped_and_counted():
    (row,), result = rows_of(
        sdk_request(
            [
                {"http.request.method": "GET", "_name": "GET /"},
                dict(SEMCONV),
                {"db.system": "postgresql", "_name": "SELECT"},
            ]
        )
    )
    assert (result.received, result.non_genai, len(result.rows)) == (3, 2, 1)


def test_json_from_another_language_is_priced_with_aliases():
    doc = otlp_json(
        [
            {
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 2000,
                "gen_ai.usage.output_tokens": 300,
                "enduser.id": "u-node",
                "traceloop.association.properties.tenant_id": "globex",
                "traceloop.association.properties.plan": "free",
                "ai.telemetry.functionId": "summarize",
            }
        ]
    )
    (row,), _ = rows_of(parse_otlp_json(json.dumps(doc).encode()))
    assert row["cost_total"] == Decimal(2000 * 3 + 300 * 15) / 1_000_000
    assert (row["user_id"], row["tenant_id"], row["feature"], row["tags"]) == (
        "u-node",
        "globex",
        "summarize",
        {"plan": "free"},
    )
    assert row["service"] == "checkout-node" and row["priced_by"] == "collector"


def test_openinference_metadata_and_langfuse_user():
    doc = otlp_json(
        [
            {
                "llm.provider": "openai",
                "llm.model_name": "gpt-4o",
                "llm.token_count.prompt": 100,
                "llm.token_count.completion": 10,
                "langfuse.user.id": "lf-user",
                "metadata": json.dumps({"tenant": "x", "region": "eu", "nested": {"no": 1}}),
            }
        ]
    )
    (row,), _ = rows_of(parse_otlp_json(json.dumps(doc).encode()))
    assert row["user_id"] == "lf-user"
    assert row["tags"] == {"tenant": "x", "region": "eu"}
    assert row["pricing_status"] == "priced"


@pytest.mark.parametrize(
    "attrs, status, error",
    [
        ({**SEMCONV, "gen_ai.usage.input_tokens": "12"}, "invalid_usage", "got str"),
        ({**SEMCONV, "gen_ai.usage.output_tokens": -3}, "invalid_usage", "negative"),
        ({**SEMCONV, "gen_ai.usage.input_tokens": 2**62}, "invalid_usage", "exceeds"),
        ({**SEMCONV, "gen_ai.request.model": "unheard-of-model"}, "unpriced", "Unable to find model"),
        ({**SEMCONV, "otel_costs.usage.web_searches": 10**9}, "invalid_usage", "searches in one call exceed"),
        ({**SEMCONV, "otel_costs.usage.cache_write_1h_tokens": 5}, "invalid_usage", "exceed the 0 cache writes"),
        ({**SEMCONV, "gen_ai.usage.audio.input_tokens": 10**6}, "invalid_usage", "audio and image tokens"),
        (
            {**SEMCONV, "gen_ai.usage.cost.source": "provider", "gen_ai.usage.cost.amount": "lots"},
            "invalid_usage",
            "not a number",
        ),
        (
            {**SEMCONV, "gen_ai.usage.cost.source": "provider", "gen_ai.usage.cost.amount": 1e12},
            "invalid_usage",
            "not a cost between",
        ),
    ],
)
def test_bad_usage_gives_a_marked_row_not_zero_cost(attrs, status, error):
    (row,), result = rows_of(sdk_request([attrs], priced=False))
    assert result.rejected == 0
    assert row["pricing_status"] == status and error in row["pricing_error"]
    assert row["cost_total"] == 0


def test_malformed_sdk_cost_is_repriced():
    attrs = {
        **SEMCONV,
        "otel_costs.pricing.status": "priced",
        "otel_costs.cost.total": "NaN",
        "otel_costs.cost.input": "x",
    }
    (row,), _ = rows_of(sdk_request([attrs], priced=False))
    assert row["priced_by"] == "collector" and row["cost_total"] == COST


def test_inconsistent_sdk_cost_is_repriced():
    attrs = {
        **SEMCONV,
        "otel_costs.pricing.status": "priced",
        "otel_costs.cost.total": "5",
        "otel_costs.cost.input": "1",
        "otel_costs.cost.output": "1",
    }
    (row,), _ = rows_of(sdk_request([attrs], priced=False))
    assert row["cost_total"] == COST


def test_broken_spans_are_rejected_and_batch_mates_kept():
    request = sdk_request([dict(SEMCONV) for _ in range(4)])
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"short"
    spans[1].start_time_unix_nano = 0
    spans[2].start_time_unix_nano = 1 << 63  # past DateTime's last instant, in 2106
    rows, result = rows_of(request)
    assert (len(rows), result.rejected) == (1, 3)
    assert "trace_id must be 16 bytes" in result.errors[0] and "start_time" in result.errors[1]
    assert "after 2106" in result.errors[2]


def test_oversized_attribution_values_are_not_stored():
    (row,), _ = rows_of(
        sdk_request(
            [{**SEMCONV, "user.id": "x" * 5000, "tenant.id": "ok", "otel_costs.tag.big": "y" * 1_000_000}], priced=False
        )
    )
    assert (row["user_id"], row["tenant_id"], row["tags"]) == ("", "ok", {})


def test_mapping_is_pure():
    request = sdk_request([dict(SEMCONV)])
    before = request.SerializeToString()
    first, _ = rows_of(request)
    second, _ = rows_of(request)
    assert first == second and request.SerializeToString() == before


def test_http_llm_call_statuses_from_the_sdk():
    """An httpx-hook span cut short is a marked row with no cost; a GenAI span whose cost
    its httpx span carries is not stored a second time."""
    incomplete = dict(
        SEMCONV,
        **{
            "otel_costs.pricing.status": "incomplete",
            "otel_costs.pricing.error": "stream ended before its final event",
        },
    )
    elsewhere = dict(
        SEMCONV, **{"otel_costs.pricing.status": "counted_elsewhere", "otel_costs.cost.counted_on": "00000000000000aa"}
    )
    (row,), result = rows_of(sdk_request([incomplete, elsewhere], priced=False))
    assert (result.received, result.non_genai, len(result.rows)) == (2, 1, 1)
    assert (row["pricing_status"], row["cost_total"], row["input_tokens"]) == ("incomplete", 0, 1200)
    assert row["pricing_error"] == "stream ended before its final event"


@pytest.mark.parametrize(
    "span, resource, expected",
    [
        # Vercel AI SDK 7: runtimeContext with includeRuntimeContext.
        (
            {
                "ai.settings.context.userId": "u7",
                "ai.settings.context.tenantId": "acme",
                "ai.settings.context.feature": "chat",
                "ai.settings.context.plan": "pro",
            },
            {},
            ("u7", "acme", "chat", {"plan": "pro"}),
        ),
        # Vercel AI SDK <= 6: telemetry metadata, the same keys.
        (
            {
                "ai.telemetry.metadata.userId": "u6",
                "ai.telemetry.metadata.tenantId": "acme",
                "ai.telemetry.metadata.feature": "search",
                "ai.telemetry.metadata.plan": "free",
            },
            {},
            ("u6", "acme", "search", {"plan": "free"}),
        ),
        # What the call is for stands for the feature when none is set ...
        ({"gen_ai.agent.name": "support-agent", "enduser.pseudo.id": "p-42"}, {}, ("p-42", "", "support-agent", {})),
        ({"ai.telemetry.functionId": "summarise", "gen_ai.agent.name": "agent"}, {}, ("", "", "summarise", {})),
        # ... but never over a feature set anywhere, the resource included.
        ({"gen_ai.agent.name": "support-agent"}, {"feature.name": "helpdesk"}, ("", "", "helpdesk", {})),
    ],
    ids=[
        "vercel-7-context",
        "vercel-6-metadata",
        "agent-name-and-pseudo-id",
        "function-id-first",
        "feature-over-agent-name",
    ],
)
def test_attribution_names_of_other_instrumentations(span, resource, expected):
    request = sdk_request([{**SEMCONV, **span}], priced=False)
    request.resource_spans[0].resource.attributes.extend(
        KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in resource.items()
    )
    (row,), _ = rows_of(request)
    assert (row["user_id"], row["tenant_id"], row["feature"], row["tags"]) == expected


@pytest.mark.parametrize("priced", [True, False], ids=["sdk-priced", "bare"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_an_aggregate_is_stored_without_cost(shape, priced):
    outer, inner = shape
    rows, result = rows_of(sdk_request([{**outer, "_name": "outer"}, {**inner, "_name": "call"}], priced=priced))
    by_name = {r["span_name"]: r for r in rows}
    assert by_name["outer"]["pricing_status"] == "aggregate" and by_name["outer"]["cost_total"] == 0
    assert by_name["outer"]["input_tokens"] == 1800  # kept for context
    assert by_name["call"]["pricing_status"] == "priced" and by_name["call"]["cost_total"] > 0


def test_deeply_nested_metadata_json_on_the_resource_costs_nothing(collector):
    """OpenInference's ``metadata`` is a JSON string; on the resource it is parsed outside the
    per-span guard. Nested a few thousand deep, json.loads raised RecursionError: the request
    was answered 503 and resent forever. Now the metadata is ignored and the span stored."""
    import time

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    from ..spans import SEMCONV, build

    deep = '{"a":' + "[" * 5000 + "]" * 5000 + "}"
    now = time.time_ns()
    request = build(
        [({**SEMCONV, "tenant.id": "acme"}, 16, 8, now - 10**9, now)],
        resource={"service.name": "deep", "metadata": deep},
    )
    with grpc.insecure_channel(collector.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)
    assert collector.query("SELECT service, tenant_id FROM {db}.genai_spans") == [("deep", "acme")]


def test_names_a_sender_chose_are_capped(collector):
    """Model, provider and operation names of 4 MiB were stored and shown whole (the admin
    dashboard grew to 48 MiB): capped at MAX_VALUE_LENGTH, and not priced (no model has such
    a name), so the call is shown as unpriced rather than hidden."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    from otel_costs.attribution import MAX_VALUE_LENGTH

    from ..spans import SEMCONV, sdk_request

    huge = "m" * (4 << 20)
    spans = [
        {
            **SEMCONV,
            "gen_ai.request.model": huge,
            "gen_ai.provider.name": "p" * (4 << 20),
            "gen_ai.operation.name": "o" * (4 << 20),
        }
    ]
    with grpc.insecure_channel(collector.grpc_target, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(sdk_request(spans, priced=False), timeout=60)
    assert collector.query(
        "SELECT length(request_model), length(provider), length(operation), pricing_status FROM {db}.genai_spans"
    ) == [(MAX_VALUE_LENGTH, MAX_VALUE_LENGTH, MAX_VALUE_LENGTH, "unpriced")]
