"""Spans from other languages priced as the provider served them: the tier (and batch API),
web searches and one-hour cache writes, in raw rows and rollups, against calc_price."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import pytest
from genai_prices import Usage, calc_price

from otel_costs import attribute_to
from otel_costs_collector.receive.otlp_http import parse_otlp_json

from ..spans import SEMCONV, otlp_json, sdk_request
from .test_mapping import rows_of

# (span attributes beside the tokens, genai-prices' price_context, its extra Usage fields)
SERVED = [
    (
        {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5", "openai.response.service_tier": "flex"},
        {"service_tier": "flex"},
        {},
        "flex",
    ),
    (
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-5",
            "gen_ai.openai.response.service_tier": "priority",
        },
        {"service_tier": "priority"},
        {},
        "priority",
    ),
    (
        {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5", "otel_costs.usage.batch": True},
        {"processing": "batch"},
        {},
        "batch",
    ),
    (
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "otel_costs.usage.service_tier": "standard",
            "otel_costs.usage.web_searches": 3,
            "gen_ai.usage.cache_creation.input_tokens": 400,
            "otel_costs.usage.cache_write_1h_tokens": 150,
        },
        None,
        {"web_searches": 3, "cache_write_tokens": 400, "cache_write_1h_tokens": 150},
        "standard",
    ),
]
SERVED.append(
    (
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-audio",
            "gen_ai.usage.audio.input_tokens": 500,
            "gen_ai.usage.audio.output_tokens": 100,
        },
        None,
        {"input_audio_tokens": 500, "output_audio_tokens": 100},
        "standard",
    )
)
IDS = ["openai-flex", "openai-priority-legacy-name", "batch-api", "anthropic-searches-1h-cache", "audio-tokens"]


def expected(attrs, context, usage) -> Decimal:
    return calc_price(
        Usage(input_tokens=2000, output_tokens=300, **usage),
        attrs["gen_ai.request.model"],
        provider_id=attrs["gen_ai.provider.name"],
        price_context=context,
    ).total_price


@pytest.mark.parametrize("attrs, context, usage, tier", SERVED, ids=IDS)
def test_unpriced_spans_are_priced_as_served(attrs, context, usage, tier):
    doc = otlp_json([{"gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 300, **attrs}])
    (row,), _ = rows_of(parse_otlp_json(json.dumps(doc).encode()))
    assert row["cost_total"] == expected(attrs, context, usage) > 0
    assert row["service_tier"] == tier and row["priced_by"] == "collector" and row["pricing_error"] == ""
    assert row["web_searches"] == usage.get("web_searches", 0)
    assert row["cache_write_1h_tokens"] == usage.get("cache_write_1h_tokens", 0)
    assert row["cost_web_search"] == Decimal("0.01") * usage.get("web_searches", 0)
    parts = ("cost_input", "cost_output", "cost_cache_read", "cost_cache_write", "cost_web_search")
    assert sum(row[p] for p in parts) == row["cost_total"]


def test_an_sdk_priced_span_keeps_its_web_search_cost_and_tier():
    with attribute_to(tenant_id="acme"):
        request = sdk_request(
            [
                {
                    **SEMCONV,
                    "gen_ai.request.model": "gpt-5",
                    "openai.response.service_tier": "priority",
                    "otel_costs.usage.web_searches": 2,
                }
            ]
        )
    (row,), _ = rows_of(request)
    assert row["priced_by"] == "sdk" and row["service_tier"] == "priority"
    assert row["cost_web_search"] == Decimal("0.02")
    assert (
        row["cost_total"]
        == calc_price(
            Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, web_searches=2),
            "gpt-5",
            provider_id="openai",
            price_context={"service_tier": "priority"},
        ).total_price
    )


def test_tiers_searches_and_rollups_through_the_collector(collector):
    """Raw rows and both rollups hold the same web-search cost and totals."""
    spans = [{"gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 300, **attrs} for attrs, *_ in SERVED]
    doc = otlp_json(spans)
    r = httpx.post(f"{collector.http_url}/v1/traces", json=doc, timeout=30)
    assert r.status_code == 200, r.text
    total = sum(expected(attrs, context, usage) for attrs, context, usage, _ in SERVED)
    deadline = time.monotonic() + 30
    while collector.query("SELECT count() FROM {db}.genai_spans") != [(len(SERVED),)] and time.monotonic() < deadline:
        time.sleep(0.1)
    for table in ("genai_spans", "genai_costs_hourly", "genai_costs_daily"):
        assert collector.query(
            f"SELECT sum(cost_total), sum(cost_web_search), sum(web_searches) FROM {{db}}.{table}"
        ) == [(total, Decimal("0.03"), 3)], table
    assert sorted(collector.query("SELECT service_tier FROM {db}.genai_spans")) == sorted((t,) for *_, t in SERVED)


PROVIDER_BILLED = [
    (
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-5",
            "gen_ai.usage.cost.amount": 0.0123,
            "gen_ai.usage.cost.source": "provider",
            "gen_ai.usage.cost.currency": "USD",
        },
        Decimal("0.0123"),
    ),
    (
        {
            "gen_ai.provider.name": "openrouter",
            "gen_ai.request.model": "acme/in-house-7b",
            "otel_costs.cost.provider": "0.000000125",
        },
        Decimal("0.000000125"),
    ),
]


@pytest.mark.parametrize("attrs, billed", PROVIDER_BILLED, ids=["semconv-triple", "no-list-price"])
def test_a_provider_s_billed_cost_is_the_cost_counted(attrs, billed):
    doc = otlp_json([{"gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 300, **attrs}])
    (row,), _ = rows_of(parse_otlp_json(json.dumps(doc).encode()))
    assert row["cost_total"] == billed and row["cost_source"] == "provider"
    assert row["pricing_status"] == "priced" and row["priced_by"] == "collector"
    try:
        estimate = expected(attrs, None, {})
    except LookupError:  # no list price: the bill alone, all of it an adjustment
        estimate = Decimal(0)
        assert "counted the provider's cost" in row["pricing_error"]
    assert row["cost_adjustment"] == billed - estimate
    parts = ("cost_input", "cost_output", "cost_cache_read", "cost_cache_write", "cost_web_search")
    assert sum(row[p] for p in parts) == estimate


def test_the_adjustment_is_reported_through_the_collector(collector):
    spans = [
        {"gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 300, **attrs} for attrs, _ in PROVIDER_BILLED
    ]
    r = httpx.post(f"{collector.http_url}/v1/traces", json=otlp_json(spans), timeout=30)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while collector.query("SELECT count() FROM {db}.genai_spans") != [(2,)] and time.monotonic() < deadline:
        time.sleep(0.1)
    adjustment = sum(billed for _, billed in PROVIDER_BILLED) - expected(PROVIDER_BILLED[0][0], None, {})
    for source in ("raw", "hourly"):
        q = {"since": "1d", "by": "provider"} if source == "hourly" else {"since": "1d", "by": "provider,tag:x"}
        rows = httpx.get(f"{collector.http_url}/v1/costs", params=q, timeout=30).json()
        assert sum(Decimal(x["cost_usd"]) for x in rows) == sum(b for _, b in PROVIDER_BILLED), source
        assert sum(Decimal(x["adjustment_usd"]) for x in rows) == adjustment, source
