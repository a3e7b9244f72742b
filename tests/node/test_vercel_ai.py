"""The Vercel AI SDK in Node.js — version 6 (experimental_telemetry) and version 7 with both
@ai-sdk/otel integrations — calling a loopback fake of OpenAI and exporting with the OTel JS
SDK over gRPC, HTTP/protobuf and HTTP/JSON to a real collector. Every call the fake served is
counted exactly once, at genai-prices' price of the usage it returned (OpenAI's prompt
tokens include the cached ones), attributed to the run's tenant, user and feature; the outer
spans (ai.generateText, invoke_agent) are stored as aggregates."""

from __future__ import annotations

import os
import subprocess
import time
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from tests.packages import LATEST

APPS = [("ai6", ""), ("ai7", "otel"), ("ai7", "legacy")]
SCENARIOS = ["generate", "stream", "tools"]
# (protocol, span processor): "simple" sends a request a span, concurrently, so a call and
# its ancestors arrive in separate requests, in any order
EXPORTS = [("grpc", "simple"), ("http/protobuf", "batch"), ("http/json", "simple")]
if LATEST:  # the newest ai releases: how their spans are shaped, through one exporter
    EXPORTS = EXPORTS[:1]


def billed(served: dict) -> Decimal:
    usage = Usage(
        input_tokens=served["prompt_tokens"],
        cache_read_tokens=served["cached_tokens"],
        output_tokens=served["completion_tokens"],
    )
    return calc_price(usage, model_ref=served["model"], provider_id="openai").total_price


@pytest.mark.parametrize("protocol,processor", EXPORTS, ids=[p for p, _ in EXPORTS])
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("app,integration", APPS, ids=["ai6", "ai7-otel", "ai7-legacy"])
def test_every_call_is_counted_once_and_attributed(
    node_apps, fake_openai, node_collector, app, integration, scenario, protocol, processor
):
    running = node_collector
    tenant = f"{app}-{integration or 'builtin'}-{scenario}-{protocol.replace('/', '-')}"
    endpoint = f"http://{running.grpc_target}" if protocol == "grpc" else running.http_url
    fake_openai.served.clear()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "SPAN_PROCESSOR": processor,
        "OPENAI_BASE_URL": fake_openai.url,
        "SCENARIO": scenario,
        "INTEGRATION": integration,
        "TENANT": tenant,
        "USER_ID": "u_42",
        "FEATURE": "support",
    }
    done = subprocess.run(
        ["node", str(node_apps / app / "app.mjs")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    served = list(fake_openai.served)
    assert len(served) == (2 if scenario == "tools" else 1)
    expected = sum((billed(s) for s in served), Decimal(0))

    want_rollup = [(expected, len(served))]
    rollup = "SELECT sum(cost_total), sum(calls) FROM {db}.genai_costs_hourly WHERE tenant_id = {{t:String}}"
    deadline = time.monotonic() + 20
    while running.query(rollup, t=tenant) != want_rollup and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running.query(rollup, t=tenant) == want_rollup

    rows = running.query(
        "SELECT span_name, pricing_status, cost_total, response_id, user_id, feature "
        "FROM {db}.genai_spans WHERE trace_id IN (SELECT trace_id FROM {db}.genai_spans "
        "WHERE tenant_id = {{t:String}}) ORDER BY span_name",
        t=tenant,
    )
    counted = sorted((r for r in rows if r[1] == "priced"), key=lambda r: r[3])
    assert [(r[3], r[2]) for r in counted] == sorted((s["id"], billed(s)) for s in served)
    assert [(r[4], r[5]) for r in counted] == [("u_42", "support")] * len(served), rows
    others = [r for r in rows if r[1] != "priced"]
    assert others and all(r[1] == "aggregate" and r[2] == 0 for r in others)  # the SDK's outer span
    raw = running.query(
        "SELECT sum(cost_total) FROM {db}.genai_spans WHERE tenant_id = {{t:String}} "
        "AND pricing_status NOT IN ('aggregate', 'counted_elsewhere')",
        t=tenant,
    )
    assert raw == [(expected,)]
