"""The span → row mapping run by embedded ClickHouse (collector/sql_mapping.py) against the
Python mapping (collector/mapping.py) on the same requests: issue 3's route to ≥ 50k spans/s.

Builds the ingest benchmark's requests (512 SDK-priced spans each), writes them as one
batch file (collector/batch_file.py) and, interleaved per round, times:

* ceiling  — ClickHouse parsing the file and flattening it to spans (``count()``);
* planning — the mapping query over an empty file (ClickHouse plans it per batch);
* sql      — the whole mapping into an in-memory table (every genai_spans column and each
             span's class), planning included;
* python   — ``map_request`` on the same requests (one core).

Prints spans/s per round and the medians; the sql/python ratio is the figure to quote.

    python bench/sql_mapping.py [--requests 160] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from collector_ingest import SPANS_PER_REQUEST, build_requests  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    import clickhouse_connect
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from collector import batch_file, sql_mapping
    from collector.mapping import map_request
    from otel_costs.pricing import Pricer

    work = tempfile.mkdtemp(prefix="otel-costs-sql-mapping-")
    requests = build_requests(args.requests, True)
    path, empty = os.path.join(work, "batch.bin"), os.path.join(work, "empty.bin")
    with open(path, "wb") as f:
        f.write(batch_file.encode([batch_file.Record(r, None, f"t{i}") for i, r in enumerate(requests)]))
    open(empty, "wb").close()
    spans = args.requests * SPANS_PER_REQUEST
    client = clickhouse_connect.get_client(interface="chdb", path=os.path.join(work, "db"))
    query = sql_mapping.mapping_query()
    # In the statements, as the collector runs them: per-call settings cost ~25 ms of SET/restore.
    settings = sql_mapping.settings_clause(sql_mapping.SETTINGS)
    client.command(f"CREATE TABLE stage ENGINE = Memory AS SELECT * FROM ({query}) LIMIT 0",
                   parameters={"batch": empty}, settings=sql_mapping.SETTINGS)
    structure = sql_mapping.STRUCTURE.replace("'", "\\'")
    ceiling_sql = (f"SELECT count() FROM file({{batch:String}}, 'Protobuf', '{structure}') "
                   "ARRAY JOIN resource_spans AS rs ARRAY JOIN rs.scope_spans AS ss ARRAY JOIN ss.spans AS span")
    pricer = Pricer()
    figures: dict[str, list[float]] = {"ceiling": [], "planning_ms": [], "sql": [], "python": []}
    for _ in range(args.rounds):
        t = time.perf_counter()
        client.query(f"{ceiling_sql} {settings}", parameters={"batch": path})
        figures["ceiling"].append(spans / (time.perf_counter() - t))
        t = time.perf_counter()
        client.query(f"SELECT * FROM ({query}) {settings}", parameters={"batch": empty})
        figures["planning_ms"].append((time.perf_counter() - t) * 1000)
        client.command("TRUNCATE TABLE stage")
        t = time.perf_counter()
        client.command(f"INSERT INTO stage SELECT * FROM ({query}) {settings}", parameters={"batch": path})
        figures["sql"].append(spans / (time.perf_counter() - t))
        t = time.perf_counter()
        for body in requests:
            map_request(ExportTraceServiceRequest.FromString(body), pricer)
        figures["python"].append(spans / (time.perf_counter() - t))
        print("  ".join(f"{k} {v[-1]:>9,.0f}" for k, v in figures.items()), flush=True)
    rows = client.query("SELECT class, count() FROM stage GROUP BY class ORDER BY class").result_rows
    med = {k: statistics.median(v) for k, v in figures.items()}
    print(f"medians over {args.rounds} rounds of {spans} spans: ceiling {med['ceiling']:,.0f} spans/s, "
          f"planning {med['planning_ms']:.0f} ms, sql mapping {med['sql']:,.0f} spans/s, "
          f"python mapping {med['python']:,.0f} spans/s, sql/python {med['sql'] / med['python']:.2f}; classes {rows}")


if __name__ == "__main__":
    main()
