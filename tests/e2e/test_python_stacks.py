"""Python apps as people build them: the anthropic SDK 2.x's own tracing alone and beside
OpenLLMetry's or OpenInference's Anthropic instrumentation; the openai SDK through OpenLLMetry,
OpenInference, the OTel contrib openai-v2 instrumentation, or two of them at once. All real,
calling loopback fakes of the providers' APIs, exported over OTLP/gRPC to a real collector,
priced by CostSpanProcessor in the app or by the collector for an app without it. Every call
the fake served is stored once, at genai-prices' price of the usage it returned (each
provider's token semantics) as it was served (OpenAI's priority tier; Anthropic's web searches),
attributed to the tenant, user and feature the app set."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from tests.e2e.python_stack_app import ANTHROPIC_SERVED, CALLS, WHO
from tests.fake_openai import FakeOpenAI
from tests.packages import LATEST
from tests.sdk.test_anthropic_sdk import Messages, billed
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


#: The tiers the fake OpenAI API says served its calls, in turn (``default`` is standard).
OPENAI_TIERS = ("priority", "default")


def billed_openai(served: dict) -> Decimal:
    # OpenAI's prompt_tokens include the cached ones, as genai-prices' input does
    usage = Usage(
        input_tokens=served["prompt_tokens"],
        cache_read_tokens=served["cached_tokens"],
        output_tokens=served["completion_tokens"],
    )
    tier = served["service_tier"]
    context = None if tier in (None, "default", "auto") else {"service_tier": tier}
    return calc_price(usage, model_ref=served["model"], provider_id="openai", price_context=context).total_price


# A tier genai-prices has no Anthropic variant for is billed at the standard price.
ANTHROPIC_CALL = billed(
    web_searches=int(ANTHROPIC_SERVED["x-web-searches"]),
    price_context={"service_tier": ANTHROPIC_SERVED["x-served-tier"]},
)


@pytest.fixture(scope="module")
def fake_anthropic():
    with serving(Messages) as url:
        yield url + "/anthropic"


@pytest.fixture(scope="module")
def fake_openai():
    fake = FakeOpenAI(service_tiers=OPENAI_TIERS)
    yield fake
    fake.close()


def run_app(
    stack: str,
    priced_by: str,
    stream: bool | str,
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


#: What cannot be priced exactly from these instrumentations' spans alone — by the collector
#: for an app without CostSpanProcessor, or by CostSpanProcessor without the httpx hooks — by
#: stack and, where it matters, by stream: a fact none of the call's spans says. (A fact one
#: span of the call says is carried to the counted one: mapping/billed_facts.py, processor.py.)
GAPS = {
    ("openai+openai-v2", None): "openai-v2 2.4b0 leaves cached prompt tokens out of its chat spans",
    ("anthropic", None): "the anthropic SDK 2.x's own spans record no web searches",
    ("anthropic+openllmetry", None): "neither the anthropic SDK's spans nor OpenLLMetry's 0.62.4 record web searches",
    ("openai+openinference", None): "OpenInference's OpenAI 0.1.66 records no served tier",
    ("openai+openinference+openllmetry", True): (
        "OpenInference records no served tier, OpenLLMetry's 0.62.4 only for whole responses"
    ),
    ("openai+openllmetry", True): "OpenLLMetry's OpenAI 0.62.4 records the served tier of whole responses only",
}
#: Stacks priced from their spans by CostSpanProcessor without the httpx hooks (``sdk-spans``):
#: those with two instrumentations of one call, whose facts the processor merges.
SPAN_PRICED = ("anthropic+openinference", "openai+openinference+openllmetry")


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(
    ("stack", "priced_by"),
    [
        *((stack, by) for stack in STACKS for by in ("sdk", "collector")),
        *((stack, "sdk-spans") for stack in SPAN_PRICED),
    ],
)
def test_every_call_is_stored_once_at_its_price(
    collector, fake_openai, fake_anthropic, stack, priced_by, stream, request
):
    gap = GAPS.get((stack, None)) or GAPS.get((stack, stream))
    if gap and priced_by != "sdk":
        # Against the newest releases (.ci/latest) a release that records the fact passes.
        reason = gap + " (docs/sdk.md: use the SDK's httpx hooks)"
        request.applymarker(pytest.mark.xfail(strict=not LATEST, reason=reason))
    expected = run_app(stack, priced_by, stream, collector.grpc_target, fake_openai, fake_anthropic)
    counting = (
        "SELECT cost_total, user_id, tenant_id, feature FROM {db}.genai_spans "
        "WHERE pricing_status NOT IN ('aggregate', 'counted_elsewhere') ORDER BY cost_total"
    )
    want = sorted((cost, *WHO) for cost in expected)
    want = [(cost, WHO[0], WHO[1], WHO[2]) for cost, *_ in want]
    deadline = time.monotonic() + 20
    settled = None  # when every call was first seen stored (a known gap never reaches want)
    while (rows := collector.query(counting)) != want and time.monotonic() < deadline:
        if len(rows) == len(want):
            settled = settled or time.monotonic()
            if time.monotonic() - settled > 1.5:
                break
        else:
            settled = None
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


@pytest.mark.parametrize("priced_by", ["sdk", "collector"])
@pytest.mark.parametrize("stack", ["anthropic+openinference", "anthropic+openllmetry"])
def test_the_stream_helper_traced_twice_side_by_side_is_counted_once(
    collector, fake_openai, fake_anthropic, stack, priced_by
):
    """``client.messages.stream`` with no span around it: the anthropic SDK's own span and the
    instrumentation's are each the root of a trace of their own, with the same usage, and
    OpenInference records no response id. One call each, counted once (counting.decide: the
    same call beside another instrumentation's span)."""
    expected = run_app(stack, priced_by, "helper", collector.grpc_target, fake_openai, fake_anthropic)
    counting = (
        "SELECT cost_total, tenant_id FROM {db}.genai_spans "
        "WHERE pricing_status NOT IN ('aggregate', 'counted_elsewhere') ORDER BY cost_total"
    )
    deadline = time.monotonic() + 20
    # (The SDK stores no row for a span it counted elsewhere: CALLS rows at least, either way.)
    while len(collector.query(counting)) < CALLS and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # a double count would be stored by now too
    rows = collector.query(counting)
    every = collector.query("SELECT span_name, scope, pricing_status, cost_total, counted_on FROM {db}.genai_spans")
    assert len(rows) == CALLS, every
    if priced_by == "sdk":  # the httpx hooks read the served tier and web searches from the body
        assert rows == [(cost, WHO[1]) for cost in expected], every
