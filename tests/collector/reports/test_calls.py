"""``GET /v1/calls`` and ``otel-costs calls``: individual calls newest first with every
count and cost part exact (genai-prices' price of each span's usage), keyset pages without
gaps or repeats while calls keep arriving, one trace's calls with its totals, and a tenant's
token that sees only its tenant."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor
from otel_costs_collector.cli.main import main as cli

from ..receive.test_auth import ACME, ADMIN, tokens_file  # noqa: F401 (fixture)
from ..spans import SEMCONV, sdk_request

PROTO = {"Content-Type": "application/x-protobuf"}
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def price(input_tokens: int) -> Decimal:
    usage = Usage(input_tokens=input_tokens, cache_read_tokens=1000, output_tokens=300)
    return calc_price(usage, model_ref="gpt-4o-mini", provider_id="openai").total_price


def post(c, request, token: str | None = None) -> None:
    headers = {**PROTO, **({"Authorization": f"Bearer {token}"} if token else {})}
    r = httpx.post(c.http_url + "/v1/traces", content=request.SerializeToString(), headers=headers, timeout=30)
    assert r.status_code == 200, r.text


def calls_of(c, token: str | None = None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(c.http_url + "/v1/calls", params=params, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def spans(n: int, first: int, tenant: str) -> list[dict]:
    """n calls a minute apart, the newest NOW - first minutes, input tokens 1200 + minute."""
    return [
        {
            **SEMCONV,
            "gen_ai.usage.input_tokens": 1200 + first + i,
            "tenant.id": tenant,
            "user.id": f"u{i % 3}",
            "_start": NOW - timedelta(minutes=first + i),
        }
        for i in range(n)
    ]


def wait_for(c, n: int) -> None:
    deadline = time.monotonic() + 20
    while c.query("SELECT count() FROM {db}.genai_spans")[0][0] < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_pages_hold_every_call_once_newest_first_while_calls_arrive(collector):
    c = collector
    post(c, sdk_request(spans(25, 10, "acme")))
    wait_for(c, 25)
    seen, cursor, pages = [], None, 0
    while True:
        page = calls_of(c, since="24h", limit=7, **({"cursor": cursor} if cursor else {}))
        seen += page["calls"]
        pages += 1
        if pages == 1:  # newer calls arrive while the reader pages back
            post(c, sdk_request(spans(3, 0, "acme")))
            wait_for(c, 28)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and len(seen) == 25
    assert len({(x["trace_id"], x["span_id"]) for x in seen}) == 25
    times = [x["timestamp"] for x in seen]
    assert times == sorted(times, reverse=True)
    for minute, call in enumerate(seen, start=10):
        assert call["input_tokens"] == 1200 + minute and call["cache_read_tokens"] == 1000
        assert Decimal(call["cost_usd"]) == price(1200 + minute)
        parts = ("input_usd", "output_usd", "cache_read_usd", "cache_write_usd", "web_search_usd", "adjustment_usd")
        assert sum(Decimal(call[p]) for p in parts) == Decimal(call["cost_usd"])
        assert (call["tenant"], call["provider"], call["pricing_status"], call["status"]) == (
            "acme",
            "openai",
            "priced",
            "unset",
        )
    # the same calls, filtered as reports are
    assert {x["user"] for x in calls_of(c, since="24h", user="u1", limit=1000)["calls"]} == {"u1"}
    # …and the CLI prints them
    result = CliRunner().invoke(
        cli, ["calls", "--url", c.http_url, "--since", "24h", "--limit", "2", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["calls"] == calls_of(c, since="24h", limit=2)["calls"]


def test_one_trace_is_its_calls_step_by_step_with_its_totals(collector):
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(memory), forward="all"))
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("agent run", attributes={"tenant.id": "acme"}) as run:
        for step in range(3):
            tracer.start_span("chat", attributes={**SEMCONV, "gen_ai.usage.input_tokens": 1300 + step}).end()
    trace_id = f"{run.get_span_context().trace_id:032x}"
    post(collector, encode_spans(memory.get_finished_spans()))
    post(collector, sdk_request(spans(2, 5, "acme")))  # other traces
    wait_for(collector, 5)
    page = calls_of(collector, trace_id=trace_id)
    assert [x["input_tokens"] for x in page["calls"]] == [1302, 1301, 1300]
    assert {x["trace_id"] for x in page["calls"]} == {trace_id}
    trace = page["trace"]
    assert (trace["calls"], trace["unpriced_calls"], trace["error_calls"]) == (3, 0, 0)
    assert Decimal(trace["cost_usd"]) == price(1300) + price(1301) + price(1302)
    result = CliRunner().invoke(cli, ["calls", "--url", collector.http_url, "--trace-id", trace_id])
    assert result.exit_code == 0, result.output
    foot = result.output.strip().splitlines()[-1].split()
    assert foot[0] == "TRACE" and Decimal(foot[-1]) == Decimal(trace["cost_usd"])


def test_a_tenant_token_sees_only_its_tenant(start_collector, tokens_file):  # noqa: F811
    c = start_collector(auth_tokens_file=tokens_file)
    post(c, sdk_request(spans(2, 1, "acme")), ADMIN)
    post(c, sdk_request(spans(3, 1, "globex")), ADMIN)
    wait_for(c, 5)
    assert {x["tenant"] for x in calls_of(c, ACME, since="24h")["calls"]} == {"acme"}
    assert len(calls_of(c, ADMIN, since="24h")["calls"]) == 5
    r = httpx.get(c.http_url + "/v1/calls", params={"tenant": "globex"}, headers={"Authorization": f"Bearer {ACME}"})
    assert r.status_code == 403
    assert httpx.get(c.http_url + "/v1/calls").status_code == 401


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzFlMzAsICJhIiwgImIiXQ"}, "cursor"),  # [1e30, "a", "b"]: not a time
        ({"cursor": "WzEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwLCAiYSIsICJiIl0"}, "cursor"),  # past Int64
        ({"trace_id": "xyz"}, "trace_id"),
        ({"status": "bad"}, "status"),
        ({"since": "3y"}, "since"),
        ({"by": "tenant"}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_named(collector, params, words):
    r = httpx.get(collector.http_url + "/v1/calls", params=params)
    assert r.status_code == 400 and words in r.json()["error"]
