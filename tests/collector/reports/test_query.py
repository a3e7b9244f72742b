"""Reports: parameters, rollups vs raw rows, the HTTP query API, injection attempts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from otel_costs_collector.reports.query import ReportError, ReportQuery, run_report

from ..spans import sdk_request

NOW = datetime.now(timezone.utc)
TENANTS = ["acme", "globex", "initech"]
FEATURES = ["chat", "search"]
MODELS = [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5")]


def load(collector, n=300, seed=1):
    """n SDK-priced spans over the last 3 days, sent over HTTP; returns what was sent."""
    rng = random.Random(seed)
    spans = []
    for _ in range(n):
        provider, model = rng.choice(MODELS)
        inp = rng.randint(100, 20_000)
        spans.append(
            {
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": inp,
                "gen_ai.usage.output_tokens": rng.randint(1, 900),
                "gen_ai.usage.cache_read.input_tokens": rng.choice([0, inp // 3]),
                "tenant.id": rng.choice(TENANTS),
                "user.id": f"u{rng.randint(1, 5)}",
                "feature.name": rng.choice(FEATURES),
                "otel_costs.tag.plan": rng.choice(["free", "pro"]),
                "_start": NOW - timedelta(seconds=rng.randint(0, 3 * 86400)),
            }
        )
    request = sdk_request([dict(s) for s in spans])
    r = httpx.post(
        collector.http_url + "/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=60,
    )
    assert r.status_code == 200
    return spans


QUESTIONS = [
    ({"by": "tenant", "since": "7d"}, "daily"),
    ({"by": "feature,day", "since": "7d"}, "daily"),
    ({"by": "model,provider", "since": "4d", "tenant": "acme"}, "daily"),
    ({"by": "user,tenant,feature", "since": "7d", "feature": "chat"}, "hourly"),
    ({"by": "tenant", "since": "7d", "user": "u1"}, "hourly"),
    ({"by": "hour", "since": "48h"}, "hourly"),
    ({"by": "feature", "since": "71h"}, "hourly"),  # 72h would be whole days in the 23rd hour
    ({"by": "day", "since": "7d", "tz": "America/New_York"}, "hourly"),
    ({"by": "", "since": "7d"}, "daily"),
]


@pytest.mark.parametrize("params, source", QUESTIONS, ids=[q["by"] or "total" for q, _ in QUESTIONS])
def test_rollups_and_raw_rows_give_identical_answers(collector, params, source):
    load(collector)
    query = ReportQuery.parse(params)
    assert query.source == source
    client = collector.collector.client
    answers = {
        s: run_report(client, collector.db, query, s)
        for s in ("raw", "hourly", "daily")[: ("raw", "hourly", "daily").index(source) + 1]
    }
    assert answers["raw"]
    assert all(answer == answers["raw"] for answer in answers.values()), answers.keys()


def test_total_equals_the_exact_sum_of_span_costs(collector):
    load(collector)
    (row,) = run_report(collector.collector.client, collector.db, ReportQuery.parse({"since": "7d"}))
    exact = collector.query("SELECT sum(cost_total), count() FROM {db}.genai_spans")[0]
    assert (Decimal(row["cost_usd"]), row["calls"]) == exact
    assert row["unpriced_calls"] == 0


@pytest.mark.parametrize(
    "params, source",
    [
        ({"by": "tag:plan"}, "raw"),
        ({"by": "tenant", "from": "2026-11-01T10:30", "to": "2026-11-02"}, "raw"),
        ({"by": "day", "tz": "Asia/Kolkata"}, "raw"),
        ({"by": "tenant", "tz": "Asia/Kolkata"}, "raw"),
        ({"by": "tenant", "since": "23h", "tz": "Asia/Kolkata"}, "hourly"),
        ({"by": "day", "from": "2026-11-01", "to": "2026-11-08", "tz": "Europe/Berlin"}, "hourly"),
        ({"by": "day", "from": "2026-11-01", "to": "2026-11-08", "tz": "Europe/London"}, "daily"),
        ({"by": "tenant", "from": "2026-11-01", "to": "2026-11-08"}, "daily"),
        ({"by": "user", "from": "2026-11-01", "to": "2026-11-08"}, "hourly"),
        ({"by": "hour", "from": "2026-11-01", "to": "2026-11-08"}, "hourly"),
    ],
)
def test_source_choice(params, source):
    assert ReportQuery.parse(params).source == source


@pytest.mark.parametrize(
    "params, message",
    [
        ({"by": "tenant;DROP TABLE x"}, "unknown dimension"),
        ({"by": "tag:a'b"}, "unknown dimension"),
        ({"by": "tenant,tenant"}, "repeated"),
        ({"since": "7 days"}, "not like 24h"),
        ({"from": "yesterday"}, "not an ISO date"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "before to"),
        ({"to": "2026-11-05"}, "from: required"),
        ({"since": "7d", "from": "2026-11-01"}, "either since or from/to"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"top": "0"}, "top"),
        ({"top": "many"}, "top"),
        ({"tenant": "x" * 300}, "at most 256"),
        ({"colour": "red"}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ReportError, match=message):
        ReportQuery.parse(params)


def test_query_api_over_http_matches_direct_query(collector):
    load(collector)
    r = httpx.get(collector.http_url + "/v1/costs", params={"by": "tenant,tag:plan", "since": "7d"})
    assert r.status_code == 200 and r.headers["X-Otel-Costs-Source"] == "raw"
    direct = run_report(
        collector.collector.client, collector.db, ReportQuery.parse({"by": "tenant,tag:plan", "since": "7d"})
    )
    assert r.json() == direct
    assert set(r.json()[0]) == {
        "tenant",
        "tag:plan",
        "cost_usd",
        "calls",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "unpriced_calls",
        "web_searches",
        "web_search_usd",
        "adjustment_usd",
        "error_calls",
    }
    assert (
        sum(Decimal(x["cost_usd"]) for x in r.json())
        == collector.query("SELECT sum(cost_total) FROM {db}.genai_spans")[0][0]
    )


@pytest.mark.parametrize("value", ["acme' OR '1'='1", "acme\\' --", "') UNION SELECT 1 --", "{tenant:String}"])
def test_injection_attempts_are_plain_values(collector, value):
    load(collector)
    r = httpx.get(collector.http_url + "/v1/costs", params={"by": "tenant", "tenant": value, "since": "7d"})
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize(
    "query",
    [
        "by=nope",
        "since=forever",
        "tz=Nowhere/Land",
        "top=-1",
        "by=tenant&by=user",
        "x=1",
        # outside what storage holds: was 503 "storage is unavailable"
        "from=0001-01-01&to=2026-01-01",
        "from=2026-01-01&to=9999-12-31T23:59:59",
        "from=0001-01-01&to=0002-01-01&tz=Pacific/Kiritimati",
    ],
)
def test_query_api_bad_parameters_get_400(collector, query):
    r = httpx.get(f"{collector.http_url}/v1/costs?{query}")
    assert r.status_code == 400 and r.json()["error"]


def test_top_and_filters(collector):
    sent = load(collector)
    rows = httpx.get(collector.http_url + "/v1/costs", params={"by": "user", "tenant": "acme", "top": 2}).json()
    assert len(rows) == 2
    assert Decimal(rows[0]["cost_usd"]) >= Decimal(rows[1]["cost_usd"])
    acme_users = {s["user.id"] for s in sent if s["tenant.id"] == "acme"}
    assert {r["user"] for r in rows} <= acme_users


@pytest.mark.parametrize("by, source", [("tenant", "daily"), ("tenant,hour", "hourly"), ("tenant,tag:plan", "raw")])
def test_aggregates_are_stored_but_never_in_totals(collector, by, source):
    """An agent's span and its call, sent bare (as from a Node app): one call, one cost,
    in the rollups and in the raw report alike."""
    import grpc
    from genai_prices import Usage, calc_price
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    from tests.aggregates import SHAPES

    outer, inner = SHAPES["vercel-ai-7-semconv"]
    tags = {"tenant.id": "acme", "otel_costs.tag.plan": "pro"}
    request = sdk_request(
        [{**outer, **tags, "_name": "invoke_agent"}, {**inner, **tags, "_name": "chat"}], priced=False
    )
    with grpc.insecure_channel(collector.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)
    assert sorted(collector.query("SELECT span_name, pricing_status FROM {db}.genai_spans")) == [
        ("chat", "priced"),
        ("invoke_agent", "aggregate"),
    ]
    r = httpx.get(collector.http_url + "/v1/costs", params={"by": by, "since": "1d"})
    assert r.headers["X-Otel-Costs-Source"] == source
    (row,) = r.json()
    call = calc_price(Usage(input_tokens=1800, output_tokens=120), model_ref="gpt-4o-mini", provider_id="openai")
    assert (row["calls"], Decimal(row["cost_usd"]), row["input_tokens"], row["unpriced_calls"]) == (
        1,
        call.total_price,
        1800,
        0,
    )


def test_a_time_series_reads_in_time_order(collector):
    load(collector)
    for by in ("feature,day", "day,feature", "hour"):
        rows = httpx.get(collector.http_url + "/v1/costs", params={"by": by, "since": "7d"}).json()
        time = "day" if "day" in by else "hour"
        assert len({r[time] for r in rows}) > 1
        assert [r[time] for r in rows] == sorted(r[time] for r in rows), by
