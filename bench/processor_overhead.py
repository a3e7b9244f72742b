"""Per-span cost of CostSpanProcessor against the bare OTel SDK, measured side by side.

Configurations, each its own TracerProvider exporting through a BatchSpanProcessor (the
usual production shape) to an exporter that reads every attribute but sends nothing:

* bare      — the SDK alone
* baggage   — plus opentelemetry-processor-baggage's BaggageSpanProcessor (copy all baggage)
* cost      — CostSpanProcessor(forward="all") wrapping the same BatchSpanProcessor
* cost-def  — CostSpanProcessor with its default forward="genai" (non-GenAI spans dropped)

Workloads: a non-GenAI span (3 attributes) and a GenAI span (8 semconv attributes incl.
cached tokens), all inside ``attribute_to(user, tenant, feature)`` (3 baggage entries).
Rounds interleave the configurations in shuffled order. Each round times the app thread
making the spans (nothing is exported meanwhile), then the flush that exports them, so
two figures are reported: "app", the hot path the targets are about, and "total", which
adds the exporter thread's work (CostSpanProcessor prices lazily, when the exporter reads
the span, so its pricing shows up there). Medians over rounds, with ratios to bare. Targets: cost ≤ 1.10×
bare (non-GenAI),
≤ 1.25× bare (GenAI).

    python bench/processor_overhead.py [--rounds 30] [--spans 2000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from typing import Sequence

from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_costs import CostSpanProcessor, attribute_to


class ReadingExporter(SpanExporter):
    """Reads every attribute of every span, as an encoding exporter would, so work a
    processor defers to export time is still counted (on the exporter thread)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            for _key, _value in span.attributes.items():
                pass
        return SpanExportResult.SUCCESS


def _bsp() -> BatchSpanProcessor:
    # Batches larger than a round and a long delay: nothing is exported while a round's
    # spans are made, so the app-thread time is measured alone; the export follows in a
    # separately timed flush.
    return BatchSpanProcessor(
        ReadingExporter(), max_queue_size=1 << 16, max_export_batch_size=1 << 14, schedule_delay_millis=3_600_000
    )


def build() -> dict[str, TracerProvider]:
    providers = {name: TracerProvider() for name in ("bare", "baggage", "cost", "cost-def")}
    providers["bare"].add_span_processor(_bsp())
    providers["baggage"].add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    providers["baggage"].add_span_processor(_bsp())
    providers["cost"].add_span_processor(CostSpanProcessor(_bsp(), forward="all"))
    providers["cost-def"].add_span_processor(CostSpanProcessor(_bsp()))
    return providers


GENAI_ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "server.address": "api.openai.com",
}
PLAIN_ATTRS = {"http.request.method": "GET", "url.path": "/api/items", "http.response.status_code": 200}


def run(provider: TracerProvider, attrs: dict, n: int) -> tuple[float, float]:
    """(app-thread seconds per span, export seconds per span) for n spans."""
    start_span = provider.get_tracer("bench").start_as_current_span
    t0 = time.perf_counter()
    for _ in range(n):
        with start_span("span") as span:
            span.set_attributes(attrs)
    t1 = time.perf_counter()
    provider.force_flush()
    t2 = time.perf_counter()
    return (t1 - t0) / n, (t2 - t1) / n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--spans", type=int, default=2000)
    args = ap.parse_args(argv)
    providers = build()
    tracers = providers
    workloads: dict[str, dict] = {"non-GenAI": PLAIN_ATTRS, "GenAI": GENAI_ATTRS}
    results: dict[tuple[str, str, str], list[float]] = {}
    rng = random.Random(7)
    with attribute_to(user_id="u_123", tenant_id="acme", feature="chat"):
        for tracer in tracers.values():  # warm up caches and code paths
            for attrs in workloads.values():
                run(tracer, attrs, 200)
        gc.disable()
        try:
            for _ in range(args.rounds):
                jobs = [(c, w) for c in tracers for w in workloads]
                rng.shuffle(jobs)
                for config, workload in jobs:
                    app, export = run(tracers[config], workloads[workload], args.spans)
                    results.setdefault((config, workload, "app"), []).append(app)
                    results.setdefault((config, workload, "total"), []).append(app + export)
                gc.collect()
        finally:
            gc.enable()
    for p in providers.values():
        p.shutdown()
    print(f"rounds={args.rounds} spans/round={args.spans}; median µs per span (ratio to bare)")
    print("app = the app's thread (the hot path); total = app + the exporter thread's work")
    cols = [(w, m) for w in workloads for m in ("app", "total")]
    print(f"{'config':<10}" + "".join(f"{w + ' ' + m:>20}" for w, m in cols))
    for config in tracers:
        row = f"{config:<10}"
        for workload, measure in cols:
            med = statistics.median(results[(config, workload, measure)])
            bare = statistics.median(results[("bare", workload, measure)])
            row += f"{med * 1e6:>11.1f} ({med / bare:4.2f}×)"
        print(row)


if __name__ == "__main__":
    main()
