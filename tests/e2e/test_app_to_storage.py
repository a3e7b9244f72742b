"""An app process exports over real gRPC to a collector on loopback writing into real
ClickHouse storage; SQL returns exact Decimal totals by tenant, feature and user."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import warnings
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from genai_prices import Usage, calc_price

APP = Path(__file__).with_name("app.py")
MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("anthropic", "claude-sonnet-4-5"),
    ("google", "gemini-2.5-flash"),
]


def make_calls(n: int) -> list[dict]:
    rng = random.Random(42)
    calls = []
    for _ in range(n):
        provider, model = rng.choice(MODELS)
        inp = rng.randint(10, 50_000)
        calls.append(
            {
                "tenant": rng.choice(["acme", "globex", "initech"]),
                "user": f"u{rng.randint(1, 6)}",
                "feature": rng.choice(["chat", "summarize", "search"]),
                "provider": provider,
                "model": model,
                "input": inp,
                "output": rng.randint(1, 4000),
                "cache_read": rng.choice([0, inp // 2]),
            }
        )
    return calls


def expected_cost(call: dict) -> Decimal:
    """The reference: genai-prices' own calc_price, independent of otel_costs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calc_price(
            Usage(input_tokens=call["input"], output_tokens=call["output"], cache_read_tokens=call["cache_read"]),
            call["model"],
            provider_id=call["provider"],
        ).total_price


def test_app_process_to_storage_exact_totals(collector):
    calls = make_calls(120)
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.grpc_target}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }
    subprocess.run([sys.executable, str(APP), json.dumps(calls)], env=env, check=True, timeout=120)

    for dimension, column in (("tenant", "tenant_id"), ("feature", "feature"), ("user", "user_id")):
        expected: dict[str, Decimal] = defaultdict(Decimal)
        for call in calls:
            expected[call[dimension]] += expected_cost(call)
        raw = dict(collector.query(f"SELECT {column}, sum(cost_total) FROM {{db}}.genai_spans GROUP BY {column}"))
        rollup = dict(
            collector.query(f"SELECT {column}, sum(cost_total) FROM {{db}}.genai_costs_hourly GROUP BY {column}")
        )
        assert raw == dict(expected), dimension
        assert rollup == raw, dimension
    count, services, unpriced = collector.query(
        "SELECT count(), groupUniqArray(service), countIf(pricing_status != 'priced') FROM {db}.genai_spans"
    )[0]
    assert (count, services, unpriced) == (len(calls), ["e2e-app"], 0)
    calls_rolled = collector.query("SELECT sum(calls), sum(input_tokens) FROM {db}.genai_costs_hourly")[0]
    assert calls_rolled == (len(calls), sum(c["input"] for c in calls))
