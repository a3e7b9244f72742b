"""Python apps as people build them: the anthropic SDK 2.x's own tracing alone and beside
OpenLLMetry's or OpenInference's Anthropic instrumentation; the openai SDK through OpenLLMetry,
OpenInference, the OTel contrib openai-v2 instrumentation, or two of them at once. All real,
calling loopback fakes of the providers' APIs, exported over OTLP/gRPC to a real collector,
priced by CostSpanProcessor in the app or by the collector for an app without it. Every call
the fake served is stored once, at genai-prices' price of the usage it returned (each
provider's token semantics), attributed to the tenant, user and feature the app set."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from tests.e2e.python_stack_app import CALLS, WHO
from tests.fake_openai import FakeOpenAI
from tests.sdk.test_anthropic_sdk import CALL as ANTHROPIC_CALL
from tests.sdk.test_anthropic_sdk import Messages
from tests.sdk.test_httpx_hooks import serving

pytest.importorskip("anthropic")
pytest.importorskip("openai")

ROOT = Path(__file__).parents[2]


STACKS = [
    "anthropic",
    "anthropic+openllmetry",
    "anthropic+openinference",
    "openai+openllmetry",
    "openai+openinference",
    "openai+openai-v2",
    "openai+openinference+openllmetry",
]


def billed_openai(served: dict) -> Decimal:
    # OpenAI's prompt_tokens include the cached ones, as genai-prices' input does
    usage = Usage(
        input_tokens=served["prompt_tokens"],
        cache_read_tokens=served["cached_tokens"],
        output_tokens=served["completion_tokens"],
    )
    return calc_price(usage, model_ref=served["model"], provider_id="openai").total_price


@pytest.fixture(scope="module")
def fake_anthropic():
    with serving(Messages) as url:
        yield url + "/anthropic"


@pytest.fixture(scope="module")
def fake_openai():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def run_app(
    stack: str,
    priced_by: str,
    stream: bool,
    endpoint: str,
    fake_openai: FakeOpenAI,
    anthropic_url: str,
) -> list[Decimal]:
    """The app, in a process of its own (instrumentations patch the provider SDKs for good);
    returns what each call the fakes served costs."""
    fake_openai.served.clear()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.e2e.python_stack_app",
            stack,
            priced_by,
            str(stream),
            endpoint,
            fake_openai.url,
            anthropic_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if stack.startswith("anthropic"):
        return [ANTHROPIC_CALL] * CALLS
    assert len(fake_openai.served) == CALLS
    return [billed_openai(s) for s in fake_openai.served]


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("priced_by", ["sdk", "collector"])
@pytest.mark.parametrize("stack", STACKS)
def test_every_call_is_stored_once_at_its_price(
    collector, fake_openai, fake_anthropic, stack, priced_by, stream, request
):
    if stack == "openai+openai-v2" and priced_by == "collector":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=(
                    "openai-v2 2.4b0 leaves cached prompt tokens out of its chat spans: without the SDK's "
                    "httpx hooks, cached tokens are priced as input (README)"
                ),
            )
        )
    expected = run_app(stack, priced_by, stream, collector.grpc_target, fake_openai, fake_anthropic)
    counting = (
        "SELECT cost_total, user_id, tenant_id, feature FROM {db}.genai_spans "
        "WHERE pricing_status NOT IN ('aggregate', 'counted_elsewhere') ORDER BY cost_total"
    )
    want = sorted((cost, *WHO) for cost in expected)
    want = [(cost, WHO[0], WHO[1], WHO[2]) for cost, *_ in want]
    deadline = time.monotonic() + 20
    while (rows := collector.query(counting)) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    every = collector.query("SELECT span_name, pricing_status, cost_total, counted_on FROM {db}.genai_spans")
    assert rows == want, every
    # An insert commits the raw part, then each view's: a reader may see the raw rows first.
    rollup = "SELECT sum(cost_total), sum(calls) FROM {db}.genai_costs_hourly WHERE tenant_id = 'acme'"
    want_rollup = [(sum(expected, Decimal(0)), CALLS)]
    while collector.query(rollup) != want_rollup and time.monotonic() < deadline:
        time.sleep(0.1)
    assert collector.query(rollup) == want_rollup
    assert collector.collector.calls is not None and collector.collector.calls.index.suspects == 0, every
