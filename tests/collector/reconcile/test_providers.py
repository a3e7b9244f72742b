"""Reading the providers' cost reports: every page, exact money in USD (Anthropic's cents),
models named by genai-prices' id, and each kind of failure as a ProviderError that names the
provider and the status, never the key."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from otel_costs_collector.reconcile.providers import ProviderError, fetch_billed
from tests.fake_billing import KEYS, FakeBilling

DAY = date(2026, 11, 20)


@pytest.fixture()
def fake():
    fake = FakeBilling(page_days=2)
    yield fake
    fake.close()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_every_page_is_read_and_amounts_are_exact_dollars(fake, provider):
    lines = {
        "openai": [
            ("gpt-4o-mini-2024-07-18, input", None, "0.123456789012"),
            ("gpt-4o-mini-2024-07-18, cached input", None, "0.0375"),
            ("web search tool calls", None, "0.03"),
        ],
        "anthropic": [
            ("Claude Sonnet 4.5 Usage - Output Tokens", "claude-sonnet-4-5-20250929", "1.23456"),
            ("Web Search Usage", None, "0.02"),
        ],
    }[provider]
    for i in range(5):
        fake.billed[provider][DAY + timedelta(days=i)] = lines
    billed, days = fetch_billed(provider, KEYS[provider], fake.bases[provider], DAY, DAY + timedelta(days=5))
    assert days == [DAY + timedelta(days=i) for i in range(5)]
    assert len(fake.requests) == 3  # pages of two days
    for day in days:
        assert [(b.line, b.amount_usd) for b in billed if b.day == day] == [(x[0], Decimal(x[2])) for x in lines]
    models = {b.model for b in billed}
    assert models == ({"gpt-4o-mini", ""} if provider == "openai" else {"claude-sonnet-4-5", ""})


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("failure", "status", "words", "retry_after"),
    [
        (403, 403, "may not read cost reports", None),
        ((429, 7), 429, "rate limited", 7.0),
        (503, 503, "HTTP 503", None),
        ("garbage", None, "unexpected body", None),
    ],
    ids=["forbidden", "rate-limited", "outage", "garbage"],
)
def test_failures_name_the_provider_and_status(fake, provider, failure, status, words, retry_after):
    fake.fail[provider].append(failure)
    with pytest.raises(ProviderError) as caught:
        fetch_billed(provider, KEYS[provider], fake.bases[provider], DAY, DAY + timedelta(days=1))
    error = caught.value
    assert (error.provider, error.status, error.retry_after) == (provider, status, retry_after)
    assert words in str(error) and provider in str(error)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_wrong_key_is_named_and_not_echoed(fake, provider):
    with pytest.raises(ProviderError) as caught:
        fetch_billed(provider, "sk-wrong-key-123", fake.bases[provider], DAY, DAY + timedelta(days=1))
    assert caught.value.status == 401 and "refused" in str(caught.value)
    assert "sk-wrong-key-123" not in str(caught.value)


def test_an_unreachable_provider_is_an_error_not_a_hang():
    with pytest.raises(ProviderError, match="unreachable") as caught:
        fetch_billed("openai", "k", "http://127.0.0.1:9", DAY, DAY + timedelta(days=1))
    assert caught.value.status is None
