"""How fast embedded ClickHouse itself reads OTLP: the ceiling of a collector that keeps
Python off the per-span path (issue 3's route to ≥ 50k spans/s).

Writes the ingest benchmark's requests (512 SDK-priced spans each) length-delimited to a
file and has chDB parse them with its Protobuf input format (a subset of the OTLP schema
below: field numbers from opentelemetry-proto), flatten resource → scope → span with
ARRAY JOIN, turn each span's attributes into a map and read a cost, a token count and the
tenant from it. Prints spans/s per run, next to Python's map_request on the same requests.

    python bench/clickhouse_parse_ceiling.py [--requests 160] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from collector_ingest import build_requests  # noqa: E402

OTLP_SUBSET = """
syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { repeated Span spans = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3;
                                 double double_value = 4; } }
"""
_KV = "Array(Tuple(key String, value Tuple(string_value String, bool_value Bool, int_value Int64, double_value Float64)))"
STRUCTURE = (f"resource_spans Array(Tuple(resource Tuple(attributes {_KV}), scope_spans Array(Tuple(spans Array(Tuple("
             f"trace_id String, span_id String, parent_span_id String, name String, start_time_unix_nano UInt64, "
             f"end_time_unix_nano UInt64, attributes {_KV}, status Tuple(message String, code Int32)))))))")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=160)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    import chdb
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from collector.mapping import map_request
    from otel_costs.pricing import Pricer

    work = tempfile.mkdtemp(prefix="otel-costs-parse-")
    schema, data = os.path.join(work, "otlp.proto"), os.path.join(work, "requests.bin")
    with open(schema, "w", encoding="utf-8") as f:
        f.write(OTLP_SUBSET)
    requests = build_requests(args.requests, True)
    with open(data, "wb") as f:
        for body in requests:
            f.write(_varint(len(body)) + body)
    spans = args.requests * 512
    query = f"""
        SELECT count(), sum(toDecimal128OrZero(a['otel_costs.cost.total'].string_value, 18)),
               sum(a['gen_ai.usage.input_tokens'].int_value), uniqExact(a['tenant.id'].string_value)
        FROM (SELECT mapFromArrays(span.attributes.key, span.attributes.value) AS a
              FROM file('{data}', 'Protobuf', '{STRUCTURE}')
              ARRAY JOIN resource_spans AS rs ARRAY JOIN rs.scope_spans AS ss ARRAY JOIN ss.spans AS span)
        SETTINGS format_schema = '{schema}:ExportTraceServiceRequest'"""
    session = chdb.session.Session(os.path.join(work, "db"))
    pricer = Pricer()
    for _ in range(args.runs):
        t = time.perf_counter()
        out = str(session.query(query, "CSV")).strip()
        in_clickhouse = spans / (time.perf_counter() - t)
        t = time.perf_counter()
        for body in requests:
            map_request(ExportTraceServiceRequest.FromString(body), pricer)
        in_python = spans / (time.perf_counter() - t)
        print(f"clickhouse {in_clickhouse:>10,.0f} spans/s   python map_request {in_python:>8,.0f} spans/s   ({out})")


if __name__ == "__main__":
    main()
