"""Memory of a collector under a flood of large requests: does it stay bounded in bytes?

Starts ``otel-costs collector`` as its own process on a fresh chDB directory, measures its
resident memory (the process and its mapping workers, from /proc) once it is idle, then
has ``--senders`` threads send one-span requests of ``--mib`` MiB each (a GenAI span whose
``gen_ai.input.messages`` holds the bulk, every request distinct) over OTLP/HTTP or gRPC as
fast as the collector answers, for ``--seconds``. Prints the idle and peak resident memory,
the answers by status, and the collector's ``otel_costs_request_bytes_in_flight`` limit.

    python bench/request_flood.py [--senders 32] [--mib 8] [--seconds 20] [--grpc]
        [--max-inflight-mib N]  # passed to the collector (default: its own default)

Linux only (/proc).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import threading
import time

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collector_ingest import memory_of, start_collector  # noqa: E402


def request(n: int, size: int) -> bytes:
    """One GenAI span with ``size`` bytes of prompt; ``n`` makes its ids distinct."""
    now = time.time_ns()
    attrs = [
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o-mini"),
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.input.messages", "x" * size),
    ]
    span = trace_pb2.Span(
        trace_id=n.to_bytes(16, "big"),
        span_id=(n + 1).to_bytes(8, "big"),
        name="chat",
        start_time_unix_nano=now - 1_000_000,
        end_time_unix_nano=now,
    )
    for key, value in attrs:
        span.attributes.add(key=key, value=common_pb2.AnyValue(string_value=value))
    for key, value in (("gen_ai.usage.input_tokens", 1000), ("gen_ai.usage.output_tokens", 10)):
        span.attributes.add(key=key, value=common_pb2.AnyValue(int_value=value))
    body = trace_service_pb2.ExportTraceServiceRequest()
    body.resource_spans.add().scope_spans.add().spans.append(span)
    return body.SerializeToString()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--senders", type=int, default=32)
    ap.add_argument("--mib", type=float, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--grpc", action="store_true")
    ap.add_argument("--max-inflight-mib", type=int)
    args = ap.parse_args(argv)
    size = int(args.mib * (1 << 20))

    env = dict(os.environ)
    if args.max_inflight_mib is not None:
        env["OTEL_COSTS_MAX_INFLIGHT_BYTES"] = str(args.max_inflight_mib << 20)
    collector, grpc_port, http_port, data = start_collector("otel-costs-flood-", env)
    answers: collections.Counter[str] = collections.Counter()
    try:
        time.sleep(3)  # mapping workers up, engine warm
        idle_own, idle_workers = memory_of(collector.pid) or (0, 0)
        idle = idle_own + idle_workers
        stop = time.monotonic() + args.seconds
        lock = threading.Lock()

        def send(k: int) -> None:
            n = k << 32
            if args.grpc:
                channel = grpc.insecure_channel(
                    f"127.0.0.1:{grpc_port}", options=[("grpc.max_send_message_length", 64 << 20)]
                )
                export = trace_service_pb2_grpc.TraceServiceStub(channel).Export
            else:
                client = httpx.Client(timeout=120)
            while time.monotonic() < stop:
                n += 2
                body = request(n, size)
                try:
                    if args.grpc:
                        export(trace_service_pb2.ExportTraceServiceRequest.FromString(body), timeout=120)
                        answer = "OK"
                    else:
                        answer = str(
                            client.post(
                                f"http://127.0.0.1:{http_port}/v1/traces",
                                content=body,
                                headers={"Content-Type": "application/x-protobuf"},
                            ).status_code
                        )
                except grpc.RpcError as exc:
                    answer = exc.code().name
                    time.sleep(0.2)
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                    time.sleep(0.2)
                if answer in ("503", "UNAVAILABLE", "RESOURCE_EXHAUSTED"):
                    time.sleep(0.2)  # as an exporter backs off
                with lock:
                    answers[answer] += 1

        threads = [threading.Thread(target=send, args=(k,), daemon=True) for k in range(args.senders)]
        for thread in threads:
            thread.start()
        peak = idle
        peak_own, peak_workers = idle_own, idle_workers
        while any(t.is_alive() for t in threads):
            own, workers = memory_of(collector.pid) or (0, 0)
            peak, peak_own, peak_workers = max(peak, own + workers), max(peak_own, own), max(peak_workers, workers)
            time.sleep(0.05)
        metrics = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=10).text
        limit = next(
            (line.split()[1] for line in metrics.splitlines() if line.startswith("otel_costs_request_bytes_limit ")),
            "not reported",
        )
    finally:
        collector.send_signal(2)
        try:
            collector.wait(60)
        except subprocess.TimeoutExpired:
            collector.kill()
        shutil.rmtree(data, ignore_errors=True)
    mib = 1 << 20
    print(
        f"{args.senders} senders of {args.mib:g} MiB one-span requests over {'gRPC' if args.grpc else 'HTTP'}, "
        f"{args.seconds:g} s"
    )
    print(
        f"resident memory: idle {idle / mib:,.0f} MiB, peak {peak / mib:,.0f} MiB "
        f"(+{(peak - idle) / mib:,.0f} MiB); request-bytes limit {limit}"
    )
    print(
        f"  collector process: idle {idle_own / mib:,.0f}, peak {peak_own / mib:,.0f} MiB; mapping workers: "
        f"idle {idle_workers / mib:,.0f}, peak {peak_workers / mib:,.0f} MiB"
    )
    print("answers: " + ", ".join(f"{k} × {v}" for k, v in sorted(answers.items())))


if __name__ == "__main__":
    main()
