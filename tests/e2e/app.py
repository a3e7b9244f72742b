"""An app process: CostSpanProcessor with its default OTLP/gRPC exporter (endpoint from
OTEL_EXPORTER_OTLP_ENDPOINT), making attributed GenAI spans. Run by test_app_to_storage."""

from __future__ import annotations

import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_costs import CostSpanProcessor, attribute_to, record_usage


def main() -> None:
    calls = json.loads(sys.argv[1])
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e-app"}))
    provider.add_span_processor(CostSpanProcessor())
    tracer = provider.get_tracer("e2e")
    for call in calls:
        with attribute_to(user_id=call["user"], tenant_id=call["tenant"], feature=call["feature"]):
            with tracer.start_as_current_span("GET /api"):  # a non-GenAI parent, not exported
                record_usage(
                    provider=call["provider"],
                    model=call["model"],
                    input_tokens=call["input"],
                    output_tokens=call["output"],
                    cache_read_tokens=call["cache_read"],
                    tracer_provider=provider,
                )
    provider.shutdown()  # flushes the batch to the collector


if __name__ == "__main__":
    main()
