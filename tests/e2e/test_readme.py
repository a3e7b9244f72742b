"""The README's "Use it in an app" example, run as written: the real openai SDK against a
loopback fake of the OpenAI API, exporting to a real collector over OTLP/gRPC."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from tests.sdk.test_httpx_hooks import CHAT_USAGE, serving

README = Path(__file__).resolve().parents[2] / "README.md"
SET_GLOBAL = "trace.set_tracer_provider(provider)"


def readme_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Use it in an app\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's app section has no python example"
    return match.group(1)


@pytest.fixture(scope="module")
def fake_openai():
    with serving() as url:
        yield url + "/v1"


def run_app(code: str, tmp_path, collector, fake_openai) -> subprocess.CompletedProcess:
    script = tmp_path / "app.py"
    script.write_text(code, encoding="utf-8")
    env = {
        **os.environ,
        "OPENAI_API_KEY": "test",
        "OPENAI_BASE_URL": fake_openai,
        "OTEL_COSTS_OPENAI_COMPATIBLE_URLS": fake_openai,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.grpc_target}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )


def stored(collector) -> list[tuple]:
    return collector.query(
        "SELECT provider, response_model, tenant_id, user_id, feature, cost_total "
        "FROM {db}.genai_spans ORDER BY provider"
    )


def test_the_readme_app_example_runs_as_written_and_its_costs_arrive(tmp_path, collector, fake_openai):
    code = readme_example()
    assert SET_GLOBAL in code
    out = run_app(code, tmp_path, collector, fake_openai)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "hi"  # the fake's answer, printed by the example
    assert "WARNING" not in out.stderr and "set_tracer_provider" not in out.stderr, out.stderr
    deadline = time.monotonic() + 30
    while len(rows := stored(collector)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    # OpenAI's prompt tokens include the cached ones; genai-prices takes input incl. cache.
    details = CHAT_USAGE["prompt_tokens_details"]
    openai_cost = calc_price(
        Usage(
            input_tokens=CHAT_USAGE["prompt_tokens"],
            output_tokens=CHAT_USAGE["completion_tokens"],
            cache_read_tokens=details["cached_tokens"],
        ),
        model_ref="gpt-4o-mini-2024-07-18",
        provider_id="openai",
    ).total_price
    anthropic_cost = calc_price(
        Usage(input_tokens=12_000, output_tokens=800), model_ref="claude-sonnet-4-5", provider_id="anthropic"
    ).total_price
    assert [(p, t, u, f, Decimal(c)) for p, _, t, u, f, c in rows] == [
        ("anthropic", "acme", "", "nightly-report", anthropic_cost),
        ("openai", "acme", "u_123", "chat", openai_cost),
    ]


def test_without_set_tracer_provider_nothing_is_recorded_and_one_warning_says_why(tmp_path, collector, fake_openai):
    code = readme_example()
    out = run_app(code.replace(SET_GLOBAL, "pass"), tmp_path, collector, fake_openai)
    assert out.returncode == 0, out.stderr[-3000:]
    warnings = [line for line in out.stderr.splitlines() if "set_tracer_provider" in line]
    assert len(warnings) == 1, out.stderr
    assert "no-op" in warnings[0]
    time.sleep(1.5)  # the collector's batches flush every 100 ms here
    assert stored(collector) == []
