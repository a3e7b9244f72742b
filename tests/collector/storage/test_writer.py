"""The insert (Native columns from the mapping's rows) stores every value exactly: Decimal
money to 18 places, nanosecond timestamps, any string, tags; and spans the collector prices
are stored at genai-prices' price to the last digit."""

from __future__ import annotations

import time
from decimal import Decimal

import grpc
import pytest
from genai_prices import Usage, calc_price
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from otel_costs_collector.storage import native
from otel_costs_collector.storage.client import open_client, parse_storage
from otel_costs_collector.storage.columns import COLUMN_TYPES, COLUMNS
from otel_costs_collector.storage.insert import ClickHouseWriter
from otel_costs_collector.storage.schema import migrate

from ..spans import sdk_request

NOW = time.time_ns() // 1000 * 1000 + 789  # raw rows older than the TTL are not kept
MONEY = (
    "cost_input",
    "cost_output",
    "cost_cache_read",
    "cost_cache_write",
    "cost_web_search",
    "cost_adjustment",
    "cost_total",
)


def row(**values) -> list:
    base = {c: "" for c in COLUMNS}
    base.update(
        timestamp=NOW,
        duration_ns=5,
        input_tokens=1,
        output_tokens=2,
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cache_write_1h_tokens=0,
        web_searches=0,
        tags={},
        **{c: Decimal(0) for c in MONEY},
    )
    base.update(values)
    return [base[c] for c in COLUMNS]


ODD = 'quote " backslash \\ tab \t newline \n nul \x00 é 日本 🙂 \u2028'


@pytest.mark.parametrize(
    "values",
    [
        {
            "cost_input": Decimal("0.000000000000000001"),
            "cost_output": Decimal("7.5E-8"),
            "cost_total": Decimal("0.000000075000000001"),
        },
        {"cost_total": Decimal("12345678901234567890.123456789012345678")},  # Decimal(38, 18)'s widest
        {"timestamp": NOW // 1_000_000_000 * 1_000_000_000 + 1, "duration_ns": 2**64 - 1},
        {"timestamp": 4_102_444_800_123_456_789},  # 2100: the raw table's TTL is a DateTime (to 2106)
        {"user_id": ODD, "tenant_id": ODD, "span_name": ODD, "tags": {ODD: ODD, "plan": "pro"}},
        {"input_tokens": 10**10, "output_tokens": 0},
    ],
    ids=["tiny-and-exponent", "widest", "one-ns-past-a-second", "year-2100", "odd-strings", "tokens"],
)
# The rows encoded by the insert, or as the Native block a mapping worker makes (storage.native),
# by clickhouse-connect's compiled codec or its Python one.
@pytest.mark.parametrize("encoded", ["at-insert", "compiled-block", "python-block"])
def test_every_value_is_stored_exactly(storage, database, values, encoded, monkeypatch):
    if encoded == "python-block":
        monkeypatch.setattr(native, "_encode", None)
    elif encoded == "compiled-block" and not native.COMPILED:
        pytest.skip("clickhouse-connect[rust] is not installed")
    client = open_client(parse_storage(storage))
    try:
        migrate(client, db=database)
        written = row(**values)
        expected = dict(zip(COLUMNS, written))
        block = None if encoded == "at-insert" else native.native_block([list(written)])
        ClickHouseWriter(client, database).write([list(written)], "token-1", block)
        names = ", ".join("toUnixTimestamp64Nano(timestamp)" if c == "timestamp" else c for c in COLUMNS)
        (stored,) = client.query(f"SELECT {names} FROM `{database}`.genai_spans").result_rows
        got = dict(zip(COLUMNS, stored))
        for column in COLUMNS:
            assert got[column] == expected[column], column
    finally:
        client.close()


SPANS = [  # bare spans, as from apps in other languages: the collector prices them
    (
        "openai",
        "gpt-4o-mini",
        {
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 1000,
        },
        Usage(input_tokens=1200, cache_read_tokens=1000, output_tokens=300),
    ),
    (
        "anthropic",
        "claude-sonnet-4-5",
        {
            "gen_ai.usage.input_tokens": 3600,
            "gen_ai.usage.output_tokens": 250,
            "gen_ai.usage.cache_read.input_tokens": 3000,
            "gen_ai.usage.cache_creation.input_tokens": 500,
        },
        Usage(input_tokens=3600, cache_write_tokens=500, cache_read_tokens=3000, output_tokens=250),
    ),
    (
        "openai",
        "gpt-4o",
        {
            "llm.token_count.prompt": 5000,
            "llm.token_count.completion": 77,
            "llm.token_count.prompt_details.cache_read": 4096,
            "llm.model_name": "gpt-4o",
            "llm.provider": "openai",
        },
        Usage(input_tokens=5000, cache_write_tokens=0, cache_read_tokens=4096, output_tokens=77),
    ),
    (
        "gcp.gemini",
        "gemini-2.5-flash",
        {"gen_ai.usage.input_tokens": 999_999, "gen_ai.usage.output_tokens": 1},
        Usage(input_tokens=999_999, cache_write_tokens=0, cache_read_tokens=0, output_tokens=1),
    ),
]


@pytest.mark.parametrize("provider, model, attributes, usage", SPANS, ids=[s[1] for s in SPANS])
def test_spans_the_collector_prices_are_stored_at_genai_prices_price(collector, provider, model, attributes, usage):
    """Expected money is genai-prices' own (input includes cache, as it takes it)."""
    span = {
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.operation.name": "chat",
        **attributes,
    }
    request = sdk_request([span], priced=False)
    with grpc.insecure_channel(collector.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)
    expected = calc_price(usage, model_ref=model, provider_id=provider.split(".")[-1]).total_price
    (stored,) = collector.query("SELECT cost_total, priced_by, pricing_status FROM {db}.genai_spans")
    assert stored == (expected, "collector", "priced")


def test_a_backfill_over_many_days_is_stored_in_one_request(start_collector):
    """One request with calls on 150 days (record_usage with start_time does this): ClickHouse
    refuses an insert over more than 100 partitions (code 252); the writer splits it by day, and
    every call is stored once, in the raw rows and the rollups."""
    from datetime import datetime, timedelta, timezone

    running = start_collector(raw_ttl_days=400)
    today = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    spans = [
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "tenant.id": "acme",
            "gen_ai.usage.input_tokens": 100 + day,
            "gen_ai.usage.output_tokens": 10,
            "_start": today - timedelta(days=day),
        }
        for day in range(150)
    ]
    expected = sum(
        (
            calc_price(
                Usage(input_tokens=100 + day, output_tokens=10), model_ref="gpt-4o-mini", provider_id="openai"
            ).total_price
            for day in range(150)
        ),
        Decimal(0),
    )
    with grpc.insecure_channel(running.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(sdk_request(spans, priced=False), timeout=60)
    query = "SELECT count(), sum(cost_total), uniqExact(toDate(timestamp)) FROM {db}.genai_spans"
    assert running.query(query) == [(150, expected, 150)]  # acknowledged = written
    for table in ("genai_costs_hourly", "genai_costs_daily"):
        assert running.query(f"SELECT sum(calls), sum(cost_total) FROM {{db}}.{table}") == [(150, expected)]


def test_the_column_types_are_the_tables(storage, database):
    """storage.native encodes each column as COLUMN_TYPES says: the table the migrations make."""
    client = open_client(parse_storage(storage))
    try:
        migrate(client, db=database)
        described = client.query(f"DESCRIBE TABLE `{database}`.genai_spans").result_rows
        types = {name: kind for name, kind, *_ in described}
        assert [types[c] for c in COLUMNS] == list(COLUMN_TYPES)
    finally:
        client.close()
