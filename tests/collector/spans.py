"""Building OTLP requests for tests: real SDK spans encoded by the real OTLP encoder, or
OTLP/JSON as another language's SDK would send it."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor

SEMCONV = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1000,
}


def sdk_request(
    spans: list[dict[str, Any]],
    *,
    priced: bool = True,
    service: str = "chat-api",
    resource: dict[str, Any] | None = None,
) -> ExportTraceServiceRequest:
    """One request holding a span per dict of attributes, made by the real SDK (priced by
    CostSpanProcessor when ``priced``) and encoded by the real OTLP encoder; ``resource``: more
    resource attributes (service.version, …)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, **(resource or {})}))
    if priced:
        provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(memory), forward="all"))
    else:
        provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    for attrs in spans:
        name = attrs.pop("_name", "chat gpt-4o-mini")
        start = attrs.pop("_start", None)
        start_ns = int(start.timestamp() * 1e9) if start is not None else None
        span = tracer.start_span(name, attributes=attrs, start_time=start_ns)
        span.end(end_time=start_ns + 1_000_000 if start_ns else None)
    request = encode_spans(memory.get_finished_spans())
    provider.shutdown()
    return request


def otlp_json(spans: list[dict[str, Any]], service: str = "checkout-node") -> dict[str, Any]:
    """OTLP/JSON as the Node.js or Go SDK sends it: hex ids, camelCase, intValue strings."""
    now = time.time_ns()

    def json_value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": v}

    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "@opentelemetry/instrumentation-openai"},
                        "spans": [
                            {
                                "traceId": os.urandom(16).hex(),
                                "spanId": os.urandom(8).hex(),
                                "name": s.pop("_name", "chat"),
                                "kind": 3,
                                "startTimeUnixNano": str(now - 2_000_000_000),
                                "endTimeUnixNano": str(now),
                                "attributes": [{"key": k, "value": json_value(v)} for k, v in s.items()],
                                "status": {"code": 0},
                            }
                            for s in spans
                        ],
                    }
                ],
            }
        ]
    }


def any_value(v) -> AnyValue:
    """An OTLP AnyValue for a Python value (lists become arrays)."""
    out = AnyValue()
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, int):
        out.int_value = v
    elif isinstance(v, float):
        out.double_value = v
    elif isinstance(v, str):
        out.string_value = v
    elif isinstance(v, bytes):
        out.bytes_value = v
    else:
        out.array_value.values.extend(any_value(x) for x in v)
    return out


def build(span_specs, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    """One request of hand-made spans: (attributes, trace-id length, span-id length, start,
    end) each, under one resource with ``resource`` attributes (any values, as AnyValue)."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in (resource or {}).items())
    scope = resource_spans.scope_spans.add()
    for i, (attrs, tid_len, sid_len, start, end) in enumerate(span_specs):
        span = scope.spans.add(
            trace_id=bytes([i + 1]) * tid_len,
            span_id=bytes([i + 1]) * sid_len,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            name="s",
        )
        span.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in attrs.items())
    return request
