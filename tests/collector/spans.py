"""Building OTLP requests for tests: real SDK spans encoded by the real OTLP encoder, or
OTLP/JSON as another language's SDK would send it."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
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


def sdk_request(spans: list[dict[str, Any]], *, priced: bool = True, service: str = "chat-api") -> ExportTraceServiceRequest:
    """One request holding a span per dict of attributes, made by the real SDK (priced by
    CostSpanProcessor when ``priced``) and encoded by the real OTLP encoder."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
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

    def any_value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": v}

    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "@opentelemetry/instrumentation-openai"}, "spans": [{
            "traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(),
            "name": s.pop("_name", "chat"), "kind": 3,
            "startTimeUnixNano": str(now - 2_000_000_000), "endTimeUnixNano": str(now),
            "attributes": [{"key": k, "value": any_value(v)} for k, v in s.items()],
            "status": {"code": 0},
        } for s in spans]}],
    }]}
