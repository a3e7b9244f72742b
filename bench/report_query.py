"""Report latency from the hourly rollups against the same report from raw spans.

Loads N spans (default 10M) spread over 30 days into a fresh embedded ClickHouse through
the real schema (the materialized view fills the rollups as it would in production), then
times ``otel-costs report --by feature,day --since 31d`` answered from the daily rollups
(what the report picks), the hourly rollups and the raw rows, interleaved in one run, and
checks the answers are identical.

    python bench/report_query.py [--spans 10000000] [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time

from otel_costs_collector.reports.query import ReportQuery, run_report
from otel_costs_collector.storage.client import open_client, parse_storage
from otel_costs_collector.storage.schema import migrate

DB = "otel_costs"
# Generated inside ClickHouse: Python would take minutes to build 10M rows.
LOAD = """
INSERT INTO `{db}`.genai_spans (timestamp, duration_ns, trace_id, span_id, service, span_name, provider,
    request_model, operation, input_tokens, output_tokens, cache_read_tokens, cost_input, cost_output,
    cost_cache_read, cost_total, pricing_status, pricing_source, pricing_model, priced_by, user_id,
    tenant_id, feature, tags, status_code)
SELECT
    now64(9) - toIntervalSecond(rand(1) % (30 * 86400)) AS timestamp,
    rand(2) % 5000000000,
    hex(rand64(3)), hex(rand64(4)),
    ['chat-api', 'worker'][1 + rand(5) % 2],
    'chat',
    ['openai', 'anthropic', 'gcp.gemini'][1 + m % 3],
    ['gpt-4o-mini', 'claude-sonnet-4-5', 'gemini-2.5-flash'][1 + m % 3],
    'chat',
    inp, outp, cached,
    toDecimal128((inp - cached) * 0.00000015, 18),
    toDecimal128(outp * 0.0000006, 18),
    toDecimal128(cached * 0.000000075, 18),
    toDecimal128((inp - cached) * 0.00000015, 18) + toDecimal128(outp * 0.0000006, 18)
        + toDecimal128(cached * 0.000000075, 18),
    if(rand(6) % 500 = 0, 'unpriced', 'priced'), 'genai-prices 0.2.3', 'gpt-4o-mini', 'sdk',
    concat('u', toString(rand(7) % 5000)),
    concat('t', toString(rand(8) % 300)),
    ['chat', 'summarize', 'search', 'agent'][1 + rand(9) % 4],
    map('plan', ['free', 'pro'][1 + rand(10) % 2]),
    'unset'
FROM (SELECT number, rand(11) % 3 AS m, 100 + rand(12) % 20000 AS inp, 1 + rand(13) % 1000 AS outp,
             if(rand(14) % 3 = 0, intDiv(100 + rand(12) % 20000, 2), 0) AS cached
      FROM numbers({n}))
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args(argv)
    path = tempfile.mkdtemp(prefix="otel-costs-report-bench-")
    client = open_client(parse_storage(path))
    try:
        migrate(client, db=DB, raw_ttl_days=90)
        t0 = time.perf_counter()
        chunk = 1_000_000
        for done in range(0, args.spans, chunk):
            client.command(
                LOAD.format(db=DB, n=min(chunk, args.spans - done)), settings={"max_insert_block_size": 1_048_576}
            )
        load_s = time.perf_counter() - t0
        for table in ("genai_costs_hourly", "genai_costs_daily"):  # as background merges would, over time
            client.command(f"OPTIMIZE TABLE `{DB}`.{table} FINAL")
        spans, rollup_rows = (
            client.command(f"SELECT count() FROM `{DB}`.{t}") for t in ("genai_spans", "genai_costs_hourly")
        )
        daily_rows = client.command(f"SELECT count() FROM `{DB}`.genai_costs_daily")
        query = ReportQuery.parse({"by": "feature,day", "since": "31d"})
        assert query.source == "daily"
        sources = ("daily", "hourly", "raw")
        timings: dict[str, list[float]] = {s: [] for s in sources}
        answers = {}
        for i in range(args.runs + 1):
            order = sources if i % 2 else sources[::-1]
            for source in order:
                t = time.perf_counter()
                answers[source] = run_report(client, DB, query, source)
                if i:  # the first round warms caches
                    timings[source].append(time.perf_counter() - t)
        assert answers["daily"] == answers["hourly"] == answers["raw"], "answers differ"
        med = {s: statistics.median(timings[s]) * 1000 for s in sources}
        print(
            f"loaded {spans:,} spans over 30 days in {load_s:.1f} s; rollup rows: "
            f"{rollup_rows:,} hourly (with user), {daily_rows:,} daily"
        )
        print(
            f"otel-costs report --by feature,day --since 31d: {len(answers['raw'])} rows, "
            f"median of {args.runs}, interleaved:"
        )
        for s in sources:
            print(f"  from {s:<7}: {med[s]:8.1f} ms  ({med[s] / med['daily']:.1f}x daily)")
        print("  answers identical")
    finally:
        client.close()
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
