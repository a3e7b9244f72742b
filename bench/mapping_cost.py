"""Where a collector's per-span time goes, in one process, on the ingest benchmark's requests.

Stages, each timed over the same spans (µs per span, medians over rounds):

* parse       — ExportTraceServiceRequest.FromString
* attrs-bare  — {kv.key: kv.value} for each span (the floor of any Python mapping: the
                protobuf runtime's wrapper objects)
* attrs-typed — reading each attribute's typed value (what mapping.py does first)
* map         — otel_costs_collector.mapping.rows.map_request, whole           (a mapping worker)
* native      — the rows as the insert's Native block (storage.native)          (a mapping worker)
* send        — pickling the worker's result (rows, links, block)               (a mapping worker)
* receive     — unpickling it                                         (the collector's process)
* decide      — the one-cost-per-call rule (HeldCalls.judge)          (the collector's process)
* wal         — encoding the batch's write-ahead file (a batch file and its header)
* insert      — ClickHouseWriter.write of the block into embedded ClickHouse (raw table + rollups)
* insert-rows — the same rows encoded at the insert (a batch the rule changed)

    python bench/mapping_cost.py [--requests 16] [--rounds 5] [--unpriced] [--genai-share 0.01]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from collector_ingest import build_requests  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from otel_costs.pricing import Pricer  # noqa: E402
from otel_costs_collector.mapping.calls import CallIndex  # noqa: E402
from otel_costs_collector.mapping.rows import map_request  # noqa: E402
from otel_costs_collector.memory import quiet_gc  # noqa: E402
from otel_costs_collector.pipeline import batch_file  # noqa: E402
from otel_costs_collector.pipeline.held import HeldCalls  # noqa: E402
from otel_costs_collector.pipeline.spool import encode  # noqa: E402
from otel_costs_collector.pipeline.types import Batch  # noqa: E402
from otel_costs_collector.storage.insert import ClickHouseWriter  # noqa: E402
from otel_costs_collector.storage.native import native_block  # noqa: E402
from otel_costs_collector.storage.schema import migrate  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=16, help="requests of 512 SDK-priced spans")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--unpriced", action="store_true", help="spans without a cost: priced by the collector")
    ap.add_argument("--genai-share", type=float, default=1.0, help="the share of spans that are LLM calls")
    args = ap.parse_args(argv)
    import clickhouse_connect

    pricer = Pricer()
    quiet_gc()  # as the collector's processes run
    client = clickhouse_connect.get_client(interface="chdb", path=os.path.join(tempfile.mkdtemp(), "data"))
    migrate(client, db="otel_costs")
    writer = ClickHouseWriter(client, "otel_costs")
    held = HeldCalls(CallIndex(), tempfile.mkdtemp(), pricer)
    times: dict[str, list[float]] = {}
    n = 0
    for _ in range(args.rounds):
        raw = build_requests(
            args.requests, not args.unpriced, args.genai_share
        )  # fresh span ids: no insert is deduplicated away
        t = time.perf_counter()
        requests = [ExportTraceServiceRequest.FromString(b) for b in raw]
        times.setdefault("parse", []).append(time.perf_counter() - t)
        spans = [s for r in requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
        n = len(spans)
        t = time.perf_counter()
        for s in spans:
            {kv.key: kv.value for kv in s.attributes}
        times.setdefault("attrs-bare", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        for s in spans:
            out = {}
            for kv in s.attributes:
                v = kv.value
                out[kv.key] = getattr(v, v.WhichOneof("value"))
        times.setdefault("attrs-typed", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        results = [map_request(r, pricer) for r in requests]
        times.setdefault("map", []).append(time.perf_counter() - t)
        rows = results[0].rows
        for result in results[1:]:
            rows.extend(result.rows)
        links = [link for result in results for link in result.links]
        t = time.perf_counter()
        block = native_block(rows)
        times.setdefault("native", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        sent = pickle.dumps((rows, links, block), protocol=pickle.HIGHEST_PROTOCOL)
        times.setdefault("send", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        rows, links, block = pickle.loads(sent)
        times.setdefault("receive", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        batch = Batch.of([batch_file.Record(b, None, batch_file.request_token(b, None)) for b in raw], n)
        encode(batch)
        times.setdefault("wal", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        rows, untouched = held.judge(rows, links, batch.insert_token)
        times.setdefault("decide", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        writer.write(rows, batch.insert_token, block if untouched else None)
        times.setdefault("insert", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        writer.write(rows, batch.insert_token + "/rows")
        times.setdefault("insert-rows", []).append(time.perf_counter() - t)
    client.close()
    print(f"{n} spans per round, {args.rounds} rounds; µs per span (median)")
    for stage, values in times.items():
        per_span = statistics.median(values) / n * 1e6
        print(f"  {stage:<12} {per_span:8.2f} µs   ({1e6 / per_span:>10,.0f} spans/s on one core)")


if __name__ == "__main__":
    main()
