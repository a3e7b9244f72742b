"""A re-price over many stored calls: its speed and its memory, in one process on embedded
ClickHouse (chDB).

Fills ``genai_spans`` with ``--rows`` calls spread over ``--days`` UTC days (an unknown model,
stored unpriced; every 10th call of a known one, priced), through the raw table's insert so
both rollups are filled as at ingest; then times a dry run and a run applied with an overrides
file pricing the unknown model, and checks that the rollups equal the raw rows afterwards.
The calls are stored by a process of their own, so the peak RSS printed (``ru_maxrss``, the
engine's memory included) is the re-price's.

    python bench/reprice.py [--rows 1000000] [--days 10] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

from otel_costs_collector.reprice.plan import RepriceRequest
from otel_costs_collector.reprice.run import SLICE_ROWS, Repricer
from otel_costs_collector.storage.client import open_client, parse_storage
from otel_costs_collector.storage.schema import migrate

_FILL = """
INSERT INTO {db}.genai_spans (timestamp, trace_id, span_id, service, provider, request_model, operation,
    input_tokens, output_tokens, cache_read_tokens, cost_input, cost_output, cost_cache_read, cost_total,
    pricing_status, pricing_source, priced_by, tenant_id, feature, user_id)
SELECT
    toDateTime64('{start}', 9, 'UTC') + toIntervalSecond(intDiv(number * {seconds}, {rows})) AS timestamp,
    lower(hex(MD5(toString(number)))) AS trace_id,
    substring(lower(hex(MD5(concat('s', toString(number))))), 1, 16) AS span_id,
    'bench', 'openai',
    if(number % 10 = 0, 'gpt-4o-mini', 'acme-llm-7b'),
    'chat', 1200, 300, 1000,
    if(number % 10 = 0, toDecimal128('0.00003', 18), toDecimal128(0, 18)),
    if(number % 10 = 0, toDecimal128('0.00018', 18), toDecimal128(0, 18)),
    if(number % 10 = 0, toDecimal128('0.000075', 18), toDecimal128(0, 18)),
    if(number % 10 = 0, toDecimal128('0.000285', 18), toDecimal128(0, 18)),
    if(number % 10 = 0, 'priced', 'unpriced'),
    'genai-prices 0.0.1', 'sdk',
    concat('tenant-', toString(number % 50)), concat('feature-', toString(number % 7)), toString(number % 1000)
FROM numbers({rows})
SETTINGS max_partitions_per_insert_block = 1000
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--data", help="chDB data directory (default: a new temporary one)")
    ap.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)  # the storing process
    args = ap.parse_args()
    data = args.data or tempfile.mkdtemp(prefix="reprice-bench-")
    db = "bench"
    if args.fill:
        client = open_client(parse_storage(data))
        migrate(client, db=db)
        first = time.gmtime(time.time() - (args.days + 1) * 86400)
        start = time.strftime("%Y-%m-%d 00:00:00", first)
        client.command(_FILL.format(db=db, start=start, seconds=args.days * 86400, rows=args.rows))
        return
    began = time.perf_counter()
    fill = [sys.executable, __file__, "--fill", "--rows", str(args.rows), "--days", str(args.days), "--data", data]
    subprocess.run(fill, check=True)
    print(f"stored {args.rows:,} calls over {args.days} days in {time.perf_counter() - began:.1f} s", flush=True)
    client = open_client(parse_storage(data))
    prices = os.path.join(data, "prices.toml")
    with open(prices, "w") as f:
        f.write('[[model]]\nmodel = "acme-llm-7b"\nid = "bench"\ninput_per_mtok = "0.3"\noutput_per_mtok = "1.2"\n')
    rss_open = _rss_mib()

    repricer = Repricer(lambda: client, db, prices)
    since = {"since": f"{args.days + 2}d"}
    for label, dry in (("dry run", True), ("apply", False)):
        began = time.perf_counter()
        doc = repricer.run(RepriceRequest.parse({**since, "dry_run": dry}))
        took = time.perf_counter() - began
        print(
            f"{label}: {doc['rows']:,} calls re-priced, {sum(doc['kept'].values()):,} kept, in {took:.1f} s "
            f"({(doc['rows'] + sum(doc['kept'].values())) / took:,.0f} calls/s); peak RSS {_rss_mib():,.0f} MiB",
            flush=True,
        )
    raw = client.query(
        f"SELECT sum(cost_total) FROM {db}.genai_spans WHERE pricing_status NOT IN ('aggregate', 'counted_elsewhere')"
    ).result_rows[0][0]
    hourly = client.query(f"SELECT sum(cost_total) FROM {db}.genai_costs_hourly").result_rows[0][0]
    daily = client.query(f"SELECT sum(cost_total) FROM {db}.genai_costs_daily").result_rows[0][0]
    print(f"raw ${raw}, hourly ${hourly}, daily ${daily}: {'equal' if raw == hourly == daily else 'DIFFERENT'}")
    print(f"peak RSS {_rss_mib():,.0f} MiB (with the storage opened: {rss_open:,.0f}); slices of {SLICE_ROWS:,} calls")
    sys.exit(0 if raw == hourly == daily else 1)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
