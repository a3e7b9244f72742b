"""Sustained OTLP/gRPC ingest into embedded ClickHouse, against the protobuf-parse ceiling.

Starts ``otel-costs collector`` as its own process on a fresh chDB directory; this process
is the client. It sends requests of 512 GenAI spans (made by the real SDK and
CostSpanProcessor, with attribution, encoded by the real OTLP encoder) with a window of
requests in flight, for a fixed time, and prints:

* sustained spans/s acknowledged (an ack means written: inserts are synchronous);
* the parse-only ceiling: ``ExportTraceServiceRequest.FromString`` on the same bytes;
* freshness p50/p99: a probe span's end → its rows acknowledged (= visible to queries);
* the collector's CPU time a span (all its threads and its mapping workers: receivers,
  mapping, merges). An app adds its exporter's batch delay (500 ms by default) on top.

    python bench/collector_ingest.py [--seconds 20] [--inflight 16] [--unpriced] [--rate N]
                                     [--genai-share 0.01] [--json]

``--rate N`` sends N spans/s (at most ``--inflight`` requests waiting) instead of as fast as
the collector answers: freshness below saturation, where users live.

Every request sent is distinct (a resent one is a retry, which the collector answers
without storing): variants of the SDK-made requests with new trace ids, serialised before
the clock starts, enough for ``--max-rate`` spans/s.

``--unpriced`` sends spans without cost attributes, priced by the collector (as from apps in
other languages). ``--genai-share 0.01``: whole traces, one span in a hundred an LLM call, the
rest HTTP and database spans the collector drops. It also prints the peak RSS of the
collector and its workers; ``--json`` the figures as one line (bench/compare.py reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque

import grpc
import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor, attribute_to

SPANS_PER_REQUEST = 512
MODELS = [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o")]


def build_requests(n: int, priced: bool, genai_share: float = 1.0) -> list[bytes]:
    """``n`` requests of SPANS_PER_REQUEST spans, made by the real SDK: a ``genai_share`` of
    them LLM calls (priced by CostSpanProcessor when ``priced``), the rest the HTTP and
    database spans an app's whole traces hold."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-app"}))
    downstream = SimpleSpanProcessor(memory)
    # forward="all": the app sends its whole traces, as apps in other languages do
    provider.add_span_processor(CostSpanProcessor(downstream, forward="all") if priced else downstream)
    tracer = provider.get_tracer("bench")
    every = max(1, round(1 / genai_share)) if genai_share > 0 else 0
    out = []
    for r in range(n):
        for i in range(SPANS_PER_REQUEST):
            if not every or (r * SPANS_PER_REQUEST + i) % every:
                other_span(tracer, i)
                continue
            provider_name, model = MODELS[i % len(MODELS)]
            with attribute_to(
                user_id=f"u{i % 97}", tenant_id=f"t{i % 13}", feature=("chat", "search")[i % 2], plan="pro"
            ):
                with tracer.start_as_current_span(f"chat {model}") as span:
                    span.set_attributes(
                        {
                            "gen_ai.operation.name": "chat",
                            "gen_ai.provider.name": provider_name,
                            "gen_ai.request.model": model,
                            "gen_ai.usage.input_tokens": 1000 + i,
                            "gen_ai.usage.output_tokens": 50 + r,
                            "gen_ai.usage.cache_read.input_tokens": 512,
                        }
                    )
        out.append(encode_spans(memory.get_finished_spans()).SerializeToString())
        memory.clear()
    provider.shutdown()
    return out


def other_span(tracer, i: int) -> None:
    """A span of an app's trace that is no LLM call: an HTTP server span or a database query."""
    if i % 2:
        attributes = {
            "http.request.method": "POST",
            "url.path": f"/api/orders/{i}",
            "http.route": "/api/orders/{id}",
            "http.response.status_code": 200,
            "server.address": "shop.internal",
            "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        }
        name = "POST /api/orders/{id}"
    else:
        attributes = {
            "db.system.name": "postgresql",
            "db.namespace": "shop",
            "db.operation.name": "SELECT",
            "db.query.text": "SELECT id, total, status FROM orders WHERE customer_id = $1 ORDER BY created_at DESC",
            "server.address": "db.internal",
        }
        name = "SELECT shop.orders"
    with tracer.start_as_current_span(name, attributes=attributes):
        pass


def variants(bodies: list[bytes], n: int) -> list[bytes]:
    """``n`` distinct requests: the given ones, then copies with new trace ids."""
    out = list(bodies)
    parsed = [trace_service_pb2.ExportTraceServiceRequest.FromString(b) for b in bodies]
    k = 0
    while len(out) < n:
        k += 1
        for request in parsed:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        span.trace_id = k.to_bytes(4, "big") + span.trace_id[4:]
            out.append(request.SerializeToString())
            if len(out) == n:
                break
    return out


def probe(now_ns: int) -> bytes:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(memory)))
    span = provider.get_tracer("probe").start_span("probe", start_time=now_ns - 1000)
    span.set_attributes(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 1,
        }
    )
    span.end(end_time=now_ns)
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def settle(entry: tuple, freshness: list[float]) -> int:
    """Wait for one in-flight request; returns the load spans it acknowledged."""
    kind, sent_ns, future = entry
    future.result()
    if kind == "probe":
        freshness.append((time.time_ns() - sent_ns) / 1e9)
        return 0
    return SPANS_PER_REQUEST


def batch_figures(metrics: str) -> str:
    """Batch count, mean spans and mean write time, from the collector's /metrics."""
    values = {}
    for line in metrics.splitlines():
        name, _, value = line.partition(" ")
        if name in ("otel_costs_batch_spans_count", "otel_costs_batch_spans_sum", "otel_costs_batch_write_seconds_sum"):
            values[name] = float(value)
    n = values.get("otel_costs_batch_spans_count", 0)
    if not n:
        return "none written"
    return (
        f"{n:.0f} written, {values['otel_costs_batch_spans_sum'] / n:,.0f} spans and "
        f"{values['otel_costs_batch_write_seconds_sum'] / n * 1000:.0f} ms each on average"
    )


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command (index 1: the parent's pid, 11-12: CPU ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started that still run (a collector's mapping workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pid:
            try:
                if int(_stat(int(entry))[1]) == pid:
                    found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds so far of process ``pid`` and the processes it started (its
    mapping workers), all threads, or None where /proc is not there. Per span, it is the
    cost that sets the rate on a saturated machine, less disturbed by neighbours than the
    rate itself."""
    try:
        fields = _stat(pid)
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    for child in _children(pid):
        try:
            fields = _stat(child)
        except OSError:
            continue  # gone meanwhile
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_of(pid: int, field: str = "VmRSS") -> tuple[int, int] | None:
    """Bytes of ``field`` (/proc status: VmRSS resident now, VmHWM its peak) of process ``pid``
    and, summed, of the processes it started (its mapping workers); None where /proc is not
    there."""

    def status(p: int) -> int:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    try:
        own = status(pid)
    except OSError:
        return None
    children = 0
    for child in _children(pid):
        try:
            children += status(child)
        except OSError:
            continue  # gone meanwhile
    return own, children


def peak_rss(pid: int) -> int | None:
    """Peak resident bytes of process ``pid`` plus those of the processes it started."""
    found = memory_of(pid, "VmHWM")
    return None if found is None else sum(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(http_port: int, timeout: float = 60) -> None:
    """Wait until the collector on ``http_port`` answers /healthz; exits when it does not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
        if time.monotonic() > deadline:
            raise SystemExit("collector did not start")


def start_collector(prefix: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int, int, str]:
    """``otel-costs collector`` on a fresh chDB directory and free ports, answering /healthz:
    returns the process, its gRPC port, its HTTP port and its data directory. Stop it with
    SIGINT."""
    data = tempfile.mkdtemp(prefix=prefix)
    grpc_port, http_port = free_port(), free_port()
    collector = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otel_costs_collector.cli",
            "collector",
            "--storage",
            data,
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
            "--log-format",
            "text",
        ],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_healthy(http_port)
    except BaseException:
        collector.kill()
        raise
    return collector, grpc_port, http_port, data


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--requests", type=int, default=40, help="requests the SDK makes (the rest are variants)")
    ap.add_argument("--max-rate", type=int, default=120_000, help="spans/s the prepared requests suffice for")
    ap.add_argument("--unpriced", action="store_true")
    ap.add_argument("--rate", type=float, help="spans/s to send (default: as fast as acknowledged)")
    ap.add_argument(
        "--genai-share", type=float, default=1.0, help="the share of spans that are LLM calls (0.01: whole traces)"
    )
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line (bench/compare.py)")
    args = ap.parse_args(argv)

    bodies = build_requests(args.requests, priced=not args.unpriced, genai_share=args.genai_share)
    payloads = variants(bodies, int(args.seconds * args.max_rate / SPANS_PER_REQUEST) + 1)
    t0 = time.perf_counter()
    reps = 0
    while time.perf_counter() - t0 < 2:
        for body in bodies:
            trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        reps += 1
    parse_rate = reps * len(bodies) * SPANS_PER_REQUEST / (time.perf_counter() - t0)

    collector, grpc_port, http_port, data = start_collector("otel-costs-bench-")
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=[("grpc.max_send_message_length", 64 << 20)])
        export = trace_service_pb2_grpc.TraceServiceStub(channel).Export
        send = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
        )
        window: deque = deque()
        freshness: list[float] = []
        acked = 0
        start = time.perf_counter()
        cpu_start = cpu_seconds(collector.pid)
        next_probe = start
        i = 0
        while time.perf_counter() - start < args.seconds:
            now = time.perf_counter()
            if now >= next_probe:
                sent_ns = time.time_ns()
                window.append(
                    (
                        "probe",
                        sent_ns,
                        export.future(
                            trace_service_pb2.ExportTraceServiceRequest.FromString(probe(sent_ns)), timeout=60
                        ),
                    )
                )
                next_probe = now + 0.25
            if i == len(payloads):
                raise SystemExit(f"ran out of distinct requests at {i}: raise --max-rate")
            if args.rate:  # paced: this request's turn comes at i requests' worth of spans
                turn = start + i * SPANS_PER_REQUEST / args.rate
                while window and window[0][2].done():
                    acked += settle(window.popleft(), freshness)
                if turn > time.perf_counter():
                    time.sleep(min(turn - time.perf_counter(), 0.01))
                    continue
            window.append(("load", 0, send.future(payloads[i], timeout=60)))
            i += 1
            while len(window) >= args.inflight:
                acked += settle(window.popleft(), freshness)
        while window:
            acked += settle(window.popleft(), freshness)
        elapsed = time.perf_counter() - start
        cpu_end = cpu_seconds(collector.pid)
        peak = peak_rss(collector.pid)
        channel.close()
        batches = batch_figures(httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=10).text)
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
    rate = acked / elapsed
    freshness.sort()
    p99 = freshness[min(len(freshness) - 1, int(len(freshness) * 0.99))]
    kind = "unpriced (priced by the collector)" if args.unpriced else "priced by the SDK"
    if args.genai_share < 1:
        kind += f", {args.genai_share:.0%} of them LLM calls"
    print(
        f"spans: {kind}; "
        f"{SPANS_PER_REQUEST}/request, {args.inflight} in flight, "
        f"{f'paced at {args.rate:,.0f} spans/s, ' if args.rate else ''}{elapsed:.1f} s"
    )
    print(f"sustained ingest : {rate:,.0f} spans/s ({acked:,} spans acknowledged = written)")
    print(f"parse-only       : {parse_rate:,.0f} spans/s (ExportTraceServiceRequest.FromString)")
    print(f"ratio            : {rate / parse_rate:.3f} of the parse ceiling")
    print(
        f"freshness        : p50 {statistics.median(freshness) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        f"({len(freshness)} probes; span end → written)"
    )
    print(f"batches          : {batches}")
    cpu_us = None
    if cpu_start is not None and cpu_end is not None and acked:
        used = cpu_end - cpu_start
        cpu_us = used / acked * 1e6
        print(
            f"collector CPU    : {cpu_us:.1f} µs a span ({used:.1f} s over {elapsed:.1f} s: "
            f"{used / elapsed:.0%} of one core)"
        )
    if peak is not None:
        print(f"peak RSS         : {peak / 2**20:,.0f} MiB (the collector and its mapping workers, summed)")
    if args.json:
        figures = {
            "spans_per_s": round(rate),
            "cpu_us_per_span": cpu_us and round(cpu_us, 1),
            "p50_ms": round(statistics.median(freshness) * 1000),
            "p99_ms": round(p99 * 1000),
            "peak_rss_mib": peak and round(peak / 2**20),
        }
        print("json:", json.dumps(figures))
    os.system(f"rm -rf {data}")


if __name__ == "__main__":
    main()
