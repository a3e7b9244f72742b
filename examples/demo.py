"""The whole spine on one machine: app → OTLP/gRPC → collector → embedded ClickHouse → SQL.

1. starts ``otel-costs collector`` on the embedded default (``./otel-costs-data``);
2. an "app" (this process) with ``CostSpanProcessor`` makes attributed GenAI calls for a
   few tenants, users and features over the past days, exported over OTLP/gRPC;
3. stops the collector (SIGTERM: it flushes), then reads the stored rows with SQL and
   prints cost by tenant and by feature, exact to the last digit.

    python examples/demo.py [--storage DIR] [--calls N]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request

GRPC_PORT = int(os.environ.get("OTEL_COSTS_GRPC_PORT", "4317"))
HTTP_PORT = int(os.environ.get("OTEL_COSTS_HTTP_PORT", "4318"))

TENANTS = {"acme": "pro", "globex": "free", "initech": "pro", "umbrella": "free"}
FEATURES = ["chat", "summarize", "search", "agent"]
MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"),
          ("anthropic", "claude-3-5-haiku-latest"), ("google", "gemini-2.5-flash")]


def wait_healthy(proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"collector exited with {proc.returncode}; is port {GRPC_PORT} or {HTTP_PORT} in use?")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("collector did not become healthy")


def send(calls: int) -> None:
    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{GRPC_PORT}")
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from otel_costs import CostSpanProcessor, attribute_to, record_usage

    provider = TracerProvider(resource=Resource.create({"service.name": "demo-app"}))
    provider.add_span_processor(CostSpanProcessor())
    rng = random.Random(7)
    now = time.time_ns()
    for _ in range(calls):
        tenant = rng.choice(list(TENANTS))
        prov, model = rng.choice(MODELS)
        inp = rng.randint(200, 30_000)
        start = now - rng.randint(0, 7 * 24 * 3600) * 1_000_000_000  # spread over a week
        with attribute_to(user_id=f"u_{rng.randint(1, 12)}", tenant_id=tenant,
                          feature=rng.choice(FEATURES), plan=TENANTS[tenant]):
            record_usage(provider=prov, model=model, input_tokens=inp, output_tokens=rng.randint(20, 2_000),
                         cache_read_tokens=rng.choice([0, 0, inp // 2]), tracer_provider=provider,
                         start_time=start, end_time=start + rng.randint(300, 9_000) * 1_000_000,
                         error="rate_limited" if rng.random() < 0.03 else None)
    provider.shutdown()  # flush to the collector


def report(storage: str) -> None:
    import clickhouse_connect

    client = clickhouse_connect.get_client(interface="chdb", path=os.path.abspath(storage))
    for title, column in (("tenant", "tenant_id"), ("feature", "feature")):
        rows = client.query(
            f"SELECT {column}, count(), sum(cost_total), countIf(pricing_status NOT IN ('priced','overridden')) "
            f"FROM otel_costs.genai_spans GROUP BY {column} ORDER BY sum(cost_total) DESC").result_rows
        print(f"\ncost by {title}:")
        for key, calls, cost, unpriced in rows:
            print(f"  {key:<10} {calls:>5} calls  ${format(cost.normalize(), 'f'):>14}  unpriced: {unpriced}")
    total = client.query("SELECT sum(cost_total), sum(calls) FROM otel_costs.genai_costs_hourly").result_rows[0]
    print(f"\nall time (hourly rollups): ${format(total[0].normalize(), 'f')} over {total[1]} calls")
    client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--storage", default="./otel-costs-data")
    ap.add_argument("--calls", type=int, default=400)
    args = ap.parse_args()
    collector = subprocess.Popen([sys.executable, "-m", "collector.cli", "collector", "--storage", args.storage,
                                  "--grpc-port", str(GRPC_PORT), "--http-port", str(HTTP_PORT),
                                  "--log-format", "text"])
    try:
        wait_healthy(collector)
        print(f"collector up (gRPC {GRPC_PORT}, HTTP {HTTP_PORT}); sending {args.calls} attributed LLM calls…")
        send(args.calls)
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
    report(args.storage)


if __name__ == "__main__":
    main()
