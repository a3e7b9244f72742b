"""Reading Stripe against the loopback fake: what a refused key, a rate limit, an outage and a
body of the wrong shape give (one StripeError, the key never in it), and lines a customer's
metadata maps to tenants."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from otel_costs_collector.revenue.stripe import StripeError, fetch_revenue
from tests.fake_stripe import KEY, FakeStripe

SINCE = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture()
def stripe():
    fake = FakeStripe(page=1)
    yield fake
    fake.close()


@pytest.mark.parametrize(
    "key, fail, status, words, retry",
    [
        ("rk_wrong", [], 401, "the key was refused (401): Invalid API Key", None),
        (KEY, [(429, 7)], 429, "rate limited (429)", 7.0),
        (KEY, [503], 503, "HTTP 503", None),
        (KEY, [(403, None)], 403, "read access to customers, products, invoices, credit notes", None),
    ],
)
def test_errors_say_what_and_never_the_key(stripe, key, fail, status, words, retry):
    stripe.fail = fail
    with pytest.raises(StripeError) as caught:
        fetch_revenue(key, stripe.url, SINCE)
    assert (caught.value.status, caught.value.retry_after) == (status, retry)
    assert words in str(caught.value) and key not in str(caught.value)


def test_unreachable_and_wrong_shapes_are_errors_without_a_status(stripe):
    with pytest.raises(StripeError, match="unreachable") as caught:
        fetch_revenue(KEY, "http://127.0.0.1:9", SINCE)
    assert caught.value.status is None
    stripe.customers = ["not an object"]  # type: ignore[list-item]
    with pytest.raises(StripeError, match="no data list"):
        fetch_revenue(KEY, stripe.url, SINCE)


def test_tenants_come_from_the_named_metadata_key_else_the_customer_id(stripe):
    stripe.customers = [
        {"id": "cus_1", "metadata": {"org": "acme"}},
        {"id": "cus_2", "metadata": {"org": " "}},  # blank: the id
        {"id": "cus_3", "metadata": None},
    ]
    made = int(SINCE.timestamp()) + 86400
    period = {"start": made, "end": made + 86400}
    stripe.invoices = [
        {"id": f"in_{i}", "customer": f"cus_{i}", "currency": "usd", "status": "paid", "created": made,
         "lines": [{"id": f"il_{i}", "amount": 1000 * i, "currency": "usd", "period": period}]}
        for i in (1, 2, 3)
    ]  # fmt: skip
    read = fetch_revenue(KEY, stripe.url, SINCE, tenant_key="org")
    assert [(x.tenant, x.amount, x.plan) for x in read.lines] == [
        ("acme", Decimal(10), ""),
        ("cus_2", Decimal(20), ""),
        ("cus_3", Decimal(30), ""),
    ]
    assert read.problems == []
    assert all(
        q.get("created[gte]") == [str(int(SINCE.timestamp()))] for p, q in stripe.requests if p == "/v1/invoices"
    )
