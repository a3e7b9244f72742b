"""Fault harness: load while storage goes down and the collector is SIGKILLed, then count.

Runs ``otel-costs collector`` on a fresh embedded ClickHouse (loopback only, bounded in
time). Client threads send OTLP/gRPC requests of SDK-priced GenAI spans and resend each
request until it is acknowledged, as exporters do. Meanwhile a chaos thread, at random
moments, either SIGKILLs the collector and restarts it, or makes storage writes fail for a
while (a failpoint file the collector checks). At the end storage comes back, the spool
drains, the collector stops, and the harness reads the stored rows and prints:

    sent / acknowledged / stored / lost (acknowledged, not stored) / duplicated
    cost of the acknowledged spans against the sums in raw rows and both rollups

When raw rows and rollups disagree, the work directory (the collector's data, spool and
``collector.log`` of every run) is kept, and its path printed (``kept``).

    python bench/fault_harness.py [--seconds 30] [--kills 4] [--outages 3] [--outage-s S]
                                  [--shape sdk|agent] [--poison N] [--json]

An outage is storage refusing every insert while it answers queries (what ClickHouse does
under TOO_MANY_PARTS, as a read-only replica or with a full disk), for a random 0.5-2 s or
``--outage-s`` seconds: acknowledged spans wait in the spool however long it lasts.

``--poison N`` makes N of the requests poison: storage refuses any batch holding one as it
refuses data it can never take (a failpoint). Each must be set aside alone, its batch-mates and
everything after it stored once; it prints how many poison spans were stored (0 is right).

``--shape agent`` sends agent runs as another language's SDK does (the Vercel AI SDK 7):
unpriced ``chat`` spans with no attribution in one request, then the step span that holds
the tenant and the ``invoke_agent`` root (an aggregate) in the next; the collector pairs them
across requests and restarts (otel_costs_collector/mapping/calls.py). It also prints how many calls ended up
without a tenant (their step span was in memory when the collector was killed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal

import grpc
import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor, attribute_to

POISON = "poison-request-marker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    def __init__(self, data: str, failpoint: str):
        self.data, self.failpoint = data, failpoint
        self.grpc_port, self.http_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        # Every run's log, kept with the data directory when the counts disagree.
        self._log = open(os.path.join(os.path.dirname(data), "collector.log"), "ab")

    def start(self) -> None:
        env = {
            **os.environ,
            "OTEL_COSTS_FAILPOINT_STORAGE_DOWN": self.failpoint,
            "OTEL_COSTS_FAILPOINT_POISON": POISON,
            "OTEL_COSTS_BATCH_MAX_AGE_MS": "200",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otel_costs_collector.cli",
                "collector",
                "--storage",
                self.data,
                "--grpc-port",
                str(self.grpc_port),
                "--http-port",
                str(self.http_port),
                "--log-format",
                "text",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("collector did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self._log.close()


class Client(threading.Thread):
    """Sends requests of SDK-priced spans; resends each until acknowledged."""

    def __init__(
        self, name: str, target: Collector, stop: threading.Event, spans_per_request: int, seed: int, shape: str = "sdk"
    ):
        super().__init__(name=name, daemon=True)
        self.target, self.stop_event, self.n, self.rng = target, stop, spans_per_request, random.Random(seed)
        self.shape = shape
        self.poison_left = 0  # requests still to make poison
        self.poisoned: set[str] = set()  # span ids of poison requests
        self.sent = 0
        self.attempts = 0
        self.acked: dict[str, Decimal] = {}  # span id → cost

    def _request(self):
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": self.name}))
        provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(memory)))
        tracer = provider.get_tracer("harness")
        for _ in range(self.n):
            with attribute_to(tenant_id=self.rng.choice(["acme", "globex"]), feature="chat"):
                with tracer.start_as_current_span("chat") as span:
                    span.set_attributes(
                        {
                            "gen_ai.provider.name": "openai",
                            "gen_ai.request.model": "gpt-4o-mini",
                            "gen_ai.usage.input_tokens": self.rng.randint(10, 5000),
                            "gen_ai.usage.output_tokens": self.rng.randint(1, 500),
                        }
                    )
        spans = memory.get_finished_spans()
        costs = {f"{s.context.span_id:016x}": Decimal(s.attributes["otel_costs.cost.total"]) for s in spans}
        return encode_spans(spans), costs

    def _agent_run(self):
        """An agent run's calls (one request), then its step and root spans (the next)."""
        from genai_prices import Usage, calc_price

        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": self.name}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("harness")
        tenant = self.rng.choice(["acme", "globex"])
        usages = [(self.rng.randint(10, 5000), self.rng.randint(1, 500)) for _ in range(self.n)]
        model = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
        with tracer.start_as_current_span(
            "invoke_agent",
            attributes={
                **model,
                "gen_ai.operation.name": "invoke_agent",
                "ai.settings.context.tenantId": tenant,
                "gen_ai.usage.input_tokens": sum(u[0] for u in usages),
                "gen_ai.usage.output_tokens": sum(u[1] for u in usages),
            },
        ):
            with tracer.start_as_current_span("step", attributes={"ai.settings.context.tenantId": tenant}):
                for inp, out in usages:
                    with tracer.start_as_current_span(
                        "chat",
                        attributes={
                            **model,
                            "gen_ai.operation.name": "chat",
                            "gen_ai.usage.input_tokens": inp,
                            "gen_ai.usage.output_tokens": out,
                        },
                    ):
                        pass
        spans = memory.get_finished_spans()
        calls = [s for s in spans if s.name == "chat"]
        rest = [s for s in spans if s.name != "chat"]
        costs = {
            f"{s.context.span_id:016x}": calc_price(
                Usage(
                    input_tokens=s.attributes["gen_ai.usage.input_tokens"],
                    output_tokens=s.attributes["gen_ai.usage.output_tokens"],
                ),
                model_ref="gpt-4o-mini",
                provider_id="openai",
            ).total_price
            for s in calls
        }
        root = {f"{s.context.span_id:016x}": Decimal(0) for s in rest if s.name == "invoke_agent"}
        return [(encode_spans(calls), costs), (encode_spans(rest), root)]

    def _poison(self):
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": self.name}))
        provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(memory)))
        with provider.get_tracer("harness").start_as_current_span(POISON) as span:
            span.set_attributes(
                {
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 1,
                }
            )
        spans = memory.get_finished_spans()
        self.poisoned.update(f"{s.context.span_id:016x}" for s in spans)
        return encode_spans(spans), {}

    def run(self) -> None:
        while not self.stop_event.is_set():
            batch = self._agent_run() if self.shape == "agent" else [self._request()]
            if self.poison_left and self.rng.random() < 0.3:
                self.poison_left -= 1
                batch.append(self._poison())
            for request, costs in batch:
                self.sent += len(costs)
                while True:  # an exporter that keeps retrying until acknowledged
                    self.attempts += 1
                    try:
                        with grpc.insecure_channel(f"127.0.0.1:{self.target.grpc_port}") as channel:
                            trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=5)
                        self.acked.update(costs)
                        break
                    except grpc.RpcError:
                        time.sleep(0.2)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--kills", type=int, default=4)
    ap.add_argument("--outages", type=int, default=3)
    ap.add_argument("--outage-s", type=float, default=None, help="each outage's length (default: 0.5-2 s at random)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--spans", type=int, default=50, help="spans per request")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shape", choices=["sdk", "agent"], default="sdk")
    ap.add_argument("--poison", type=int, default=0, help="poison requests to send")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    workdir = tempfile.mkdtemp(prefix="otel-costs-faults-")
    failpoint = os.path.join(workdir, "storage-down")
    collector = Collector(os.path.join(workdir, "data"), failpoint)
    collector.start()
    stop = threading.Event()
    clients = [
        Client(f"client-{i}", collector, stop, args.spans, args.seed + i, args.shape) for i in range(args.clients)
    ]
    for i, c in enumerate(clients):
        c.poison_left = args.poison // len(clients) + (1 if i < args.poison % len(clients) else 0)
        c.start()
    events = ["kill"] * args.kills + ["outage"] * args.outages
    rng.shuffle(events)
    gap = args.seconds / (len(events) + 1)
    log = []
    for event in events:
        time.sleep(gap * rng.uniform(0.5, 1.5))
        if event == "kill":
            collector.kill()
            log.append("SIGKILL")
            collector.start()
        else:
            open(failpoint, "w").close()
            length = rng.uniform(0.5, 2.0)  # drawn either way: the same seed gives the same run
            time.sleep(args.outage_s if args.outage_s is not None else length)
            os.remove(failpoint)
            log.append("storage outage")
    time.sleep(gap)
    stop.set()
    for c in clients:
        c.join(120)
    deadline = time.monotonic() + 60  # let the spool drain
    spool = collector.data + "-spool"
    while any(n.endswith(".batch") for n in os.listdir(spool)) and time.monotonic() < deadline:
        time.sleep(0.2)
    collector.stop()

    import clickhouse_connect

    client = clickhouse_connect.get_client(interface="chdb", path=collector.data)
    per_span = dict(client.query("SELECT span_id, count() FROM otel_costs.genai_spans GROUP BY span_id").result_rows)
    raw, hourly, daily = (
        client.query(f"SELECT sum(cost_total) FROM otel_costs.{t}").result_rows[0][0] or Decimal(0)
        for t in ("genai_spans", "genai_costs_hourly", "genai_costs_daily")
    )
    rollup_calls = [
        client.query(f"SELECT sum(calls) FROM otel_costs.{t}").result_rows[0][0] or 0
        for t in ("genai_costs_hourly", "genai_costs_daily")
    ]
    # The rollups count the calls: aggregates and spans counted on another span are left out.
    counted_rows = client.query(
        "SELECT count() FROM otel_costs.genai_spans WHERE pricing_status NOT IN ('aggregate', 'counted_elsewhere')"
    ).result_rows[0][0]
    unattributed = client.query(
        "SELECT count() FROM otel_costs.genai_spans WHERE tenant_id = '' AND "
        "pricing_status NOT IN ('aggregate', 'counted_elsewhere')"
    ).result_rows[0][0]
    client.close()
    acked: dict[str, Decimal] = {}
    for c in clients:
        acked.update(c.acked)
    result = {
        "events": log,
        "sent": sum(c.sent for c in clients),
        "attempts": sum(c.attempts for c in clients),
        "acknowledged": len(acked),
        "stored": len(per_span),
        "stored_rows": sum(per_span.values()),
        "counted_rows": int(counted_rows),
        "rollup_calls": int(rollup_calls[0]),
        "rollup_calls_daily": int(rollup_calls[1]),
        "lost": len(set(acked) - set(per_span)),
        "unacknowledged_stored": len(set(per_span) - set(acked)),
        "duplicated": sum(n - 1 for n in per_span.values()),
        "unattributed": int(unattributed),
        "set_aside": len([n for n in os.listdir(os.path.join(spool, "rejected")) if n.endswith(".batch")]),
        "poison_sent": sum(len(c.poisoned) for c in clients),
        "poison_stored": len(set().union(*(c.poisoned for c in clients)) & set(per_span)),
        "cost_acknowledged": str(sum(acked.values(), Decimal(0))),
        "cost_raw": str(raw),
        "cost_hourly": str(hourly),
        "cost_daily": str(daily),
    }
    calls = (result["counted_rows"], result["rollup_calls"], result["rollup_calls_daily"])
    consistent = len(set(calls)) == 1 and raw == hourly == daily
    if consistent:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        result["kept"] = workdir  # the evidence: the data directory and the collector's logs
    if args.json:
        print(json.dumps(result))
    else:
        print("events      : " + ", ".join(log))
        print(
            f"sent {result['sent']} spans in {result['attempts']} request attempts; "
            f"acknowledged {result['acknowledged']}; stored {result['stored']} "
            f"({result['stored_rows']} rows, {result['counted_rows']} of them calls, "
            f"{result['rollup_calls']} in rollups)"
        )
        print(
            f"lost {result['lost']}, duplicated {result['duplicated']}, "
            f"calls left without a tenant {result['unattributed']}"
        )
        if "kept" in result:
            print(f"counts disagree; kept {result['kept']}")
        print(
            f"cost: acknowledged {Decimal(result['cost_acknowledged']).normalize()} | raw {raw.normalize()} | "
            f"hourly {hourly.normalize()} | daily {daily.normalize()}"
        )
    return result


if __name__ == "__main__":
    main()
