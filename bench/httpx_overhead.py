"""What the httpx hooks add to an LLM call, against plain httpx instrumentation, side by side.

Two httpx clients over the same in-process transport (httpx.MockTransport, so the network
does not drown the figures), both instrumented with opentelemetry-instrumentation-httpx and
a TracerProvider with CostSpanProcessor over an exporter that reads every attribute:

* plain — the instrumentation alone (the HTTP span is not a GenAI span: dropped)
* hooks — plus otel_costs.HttpxHooks (the span becomes a costed GenAI span)

Workloads: a non-streamed chat completion (JSON body with usage, ~1 KB) and a streamed
one of ``--chunks`` server-sent events plus the usage chunk, read chunk by chunk. Rounds
interleave the clients in shuffled order; medians over rounds. Reported: µs per call
(both), and for the stream the added µs per chunk ((hooks - plain) / chunks).

    python bench/httpx_overhead.py [--rounds 30] [--calls 300] [--chunks 200]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_costs import CostSpanProcessor, HttpxHooks

USAGE = {
    "prompt_tokens": 2000,
    "completion_tokens": 300,
    "total_tokens": 2300,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 100},
}
BODY = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 600}}],
        "usage": USAGE,
    }
).encode()
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "y" * 400}]}


class ReadingExporter(SpanExporter):
    def __init__(self):
        self.costed = 0

    def export(self, spans):
        for span in spans:
            self.costed += "otel_costs.cost.total" in span.attributes
            for _ in span.attributes.items():
                pass
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


def sse(chunks: int) -> list[bytes]:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18",
        "usage": None,
        "choices": [{"index": 0, "delta": {"content": "token"}}],
    }
    events = [f"data: {json.dumps(chunk)}\n\n".encode()] * chunks
    events.append(f"data: {json.dumps({**chunk, 'choices': [], 'usage': USAGE})}\n\n".encode())
    events.append(b"data: [DONE]\n\n")
    return events


def handler(chunks: int):
    events = sse(chunks)

    def handle(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(events))
        return httpx.Response(200, headers={"content-type": "application/json"}, content=BODY)

    return handle


def client(hooks: HttpxHooks | None, chunks: int) -> httpx.Client:
    provider = TracerProvider()
    exporter = ReadingExporter()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(exporter)))
    c = httpx.Client(transport=httpx.MockTransport(handler(chunks)), base_url="https://api.openai.com")
    HTTPXClientInstrumentor.instrument_client(c, tracer_provider=provider, **(hooks.client_kwargs(c) if hooks else {}))
    c.exporter = exporter  # type: ignore[attr-defined]
    return c


def calls(c: httpx.Client, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        c.post("/v1/chat/completions", json=REQUEST).read()
    return (time.perf_counter() - start) / n


def stream(c: httpx.Client, n: int) -> float:
    body = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    for _ in range(n):
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            for _ in r.iter_raw():
                pass
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--chunks", type=int, default=200)
    args = ap.parse_args(argv)
    clients = {"plain": client(None, args.chunks), "hooks": client(HttpxHooks(), args.chunks)}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        order = list(clients)
        random.shuffle(order)
        for name in order:
            results.setdefault((name, "call"), []).append(calls(clients[name], args.calls))
            results.setdefault((name, "stream"), []).append(stream(clients[name], max(1, args.calls // 10)))
    costed = {name: c.exporter.costed for name, c in clients.items()}  # type: ignore[attr-defined]
    assert costed["plain"] == 0 and costed["hooks"] > 0, costed
    med = {k: statistics.median(v) * 1e6 for k, v in results.items()}
    print(
        f"non-streamed call : plain {med['plain', 'call']:.1f} µs, hooks {med['hooks', 'call']:.1f} µs "
        f"(+{med['hooks', 'call'] - med['plain', 'call']:.1f} µs, {med['hooks', 'call'] / med['plain', 'call']:.2f}x)"
    )
    per_chunk = (med["hooks", "stream"] - med["plain", "stream"]) / (args.chunks + 2)
    print(
        f"streamed call     : plain {med['plain', 'stream']:.1f} µs, hooks {med['hooks', 'stream']:.1f} µs "
        f"for {args.chunks + 2} events (+{per_chunk:.2f} µs per chunk)"
    )
    print(f"costed spans      : plain {costed['plain']}, hooks {costed['hooks']}")


if __name__ == "__main__":
    main()
