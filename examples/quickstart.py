"""Quickstart: price a few LLM calls, attributed to tenants, users and features.

Runs with no collector: a CostSpanProcessor prices the spans and an in-memory exporter
collects them, then this script prints what each tenant and feature cost. In an app you
would add ``CostSpanProcessor()`` (OTLP to the collector) to your own TracerProvider.

    python examples/quickstart.py
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor, attribute_to, record_usage

CALLS = [
    # tenant, user, plan, feature, provider, model, input, output, cache read
    ("acme", "u_1", "pro", "chat", "openai", "gpt-4o-mini", 12_000, 800, 8_000),
    ("acme", "u_2", "pro", "summarize", "anthropic", "claude-sonnet-4-5", 40_000, 1_200, 30_000),
    ("globex", "u_7", "free", "chat", "openai", "gpt-4o", 3_000, 400, 0),
    ("globex", "u_7", "free", "search", "google", "gemini-2.5-flash", 9_000, 300, 0),
    ("initech", "u_9", "pro", "agent", "anthropic", "claude-sonnet-4-5", 250_000, 4_000, 200_000),
    ("initech", "u_9", "pro", "agent", "acme-labs", "in-house-llm", 1_000, 100, 0),  # no price
]


def usd(amount: Decimal) -> str:
    """Exact amount without trailing zeros or exponent notation."""
    return format(amount.normalize(), "f")


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(exporter)))
    for tenant, user, plan, feature, prov, model, inp, out, cached in CALLS:
        with attribute_to(user_id=user, tenant_id=tenant, feature=feature, plan=plan):
            record_usage(
                provider=prov,
                model=model,
                input_tokens=inp,
                output_tokens=out,
                cache_read_tokens=cached,
                tracer_provider=provider,
            )
    by_tenant: dict[str, Decimal] = defaultdict(Decimal)
    by_feature: dict[str, Decimal] = defaultdict(Decimal)
    print(f"{'tenant':<8} {'user':<5} {'feature':<10} {'model':<20} {'status':<9} {'cost (USD)':>12}")
    for span in exporter.get_finished_spans():
        a = span.attributes
        cost = Decimal(a.get("otel_costs.cost.total", "0"))
        by_tenant[a["tenant.id"]] += cost
        by_feature[a["feature.name"]] += cost
        shown = usd(Decimal(a["otel_costs.cost.total"])) if "otel_costs.cost.total" in a else "unknown"
        print(
            f"{a['tenant.id']:<8} {a['user.id']:<5} {a['feature.name']:<10} "
            f"{a['gen_ai.request.model']:<20} {a['otel_costs.pricing.status']:<9} {shown:>12}"
        )
    print("\nby tenant:  " + ", ".join(f"{k} ${usd(v)}" for k, v in sorted(by_tenant.items())))
    print("by feature: " + ", ".join(f"{k} ${usd(v)}" for k, v in sorted(by_feature.items())))
    print("(unpriced calls are shown, never counted as $0)")
    provider.shutdown()


if __name__ == "__main__":
    main()
