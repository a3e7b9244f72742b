"""The FinOps Foundation's FOCUS 1.0 cost and usage format: the counted calls of a range as one
row per UTC day × provider × model × token type × (service, tenant, user, feature), for FinOps
tools to put AI spend beside cloud spend. Rows are streamed from storage (bounded memory).

Money columns (USD, exact decimal strings): ``BilledCost`` is what the call is believed to be
billed — the provider's own cost where it reports one (its difference to our estimate is a
separate ``Adjustment`` row), else our list-price estimate; ``ListCost`` is the list-price
estimate (0 on adjustment rows); ``EffectiveCost`` and ``ContractedCost`` equal ``BilledCost``
(no commitments or amortisation are known here). Every money column of a range sums to the
``cost_usd`` of ``/v1/costs`` for that range. Columns FOCUS has none for are ``x_``-prefixed.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator

from otel_costs_collector.reports.query import money_text
from otel_costs_collector.sql import load

__all__ = ["FOCUS_COLUMNS", "COLUMNS", "focus_rows"]

#: The FOCUS 1.0 columns, in the specification's order of sections.
FOCUS_COLUMNS = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory",
    "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "InvoiceIssuer", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit",
    "Provider", "Publisher", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
)  # fmt: skip
#: Every column of the export: FOCUS's, then ours.
COLUMNS = (*FOCUS_COLUMNS, "x_Calls", "x_TokenType", "x_PricedBy", "x_CostSource", "x_PriceVersion")
# token type → (index of its count and of its cost in the row after the keys, unit)
_PARTS = (("input", 1, 6, "Tokens"), ("output", 2, 7, "Tokens"), ("cache_read", 3, 8, "Tokens"),
          ("cache_write", 4, 9, "Tokens"), ("web_search", 5, 10, "Requests"))  # fmt: skip
_ZERO = Decimal(0)


def focus_rows(client: Any, db: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The FOCUS rows of the calls in ``[start, end)`` (UTC), day by day. Raises on a storage error."""
    text = load(__package__, "focus", db=db)
    params = {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)}
    with client.query_row_block_stream(text, parameters=params) as stream:
        for block in stream:
            for row in block:
                yield from _charges(row, db)


def _charges(row: tuple[Any, ...], db: str) -> Iterator[dict[str, Any]]:
    day, provider, model, service, tenant, user, feature, priced_by, cost_source, price_version = row[:10]
    figures = row[10:]
    calls, adjustment = int(figures[0]), Decimal(figures[11])
    day_start = datetime.combine(day, time(), timezone.utc)
    month = date(day.year, day.month, 1)
    common = {
        "BillingAccountId": f"otel-costs:{db}",
        "BillingAccountName": db,
        "BillingCurrency": "USD",
        "BillingPeriodStart": _iso(datetime.combine(month, time(), timezone.utc)),
        "BillingPeriodEnd": _iso(datetime.combine((month + timedelta(days=32)).replace(day=1), time(), timezone.utc)),
        "ChargePeriodStart": _iso(day_start),
        "ChargePeriodEnd": _iso(day_start + timedelta(days=1)),
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuer": provider or "unknown",
        "Provider": provider or "unknown",
        "Publisher": provider or "unknown",
        "PricingCategory": "Standard",
        "ResourceId": model or None,
        "ResourceName": model or None,
        "ResourceType": "Model" if model else None,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": provider or "unknown",
        "SkuId": model or None,
        "SubAccountId": service or None,
        "SubAccountName": service or None,
        "Tags": json.dumps({k: v for k, v in (("tenant", tenant), ("user", user), ("feature", feature)) if v}),
        "x_PricedBy": priced_by,
        "x_CostSource": cost_source,
        "x_PriceVersion": price_version,
    }
    for n, (token_type, count_at, cost_at, unit) in enumerate(_PARTS):
        cost, quantity = Decimal(figures[cost_at]), int(figures[count_at])
        if n and not cost and not quantity:
            continue  # the input row is always written: it carries the calls
        yield _row(common, token_type, cost, cost, quantity, unit, calls if n == 0 else 0, model, "Usage")
    if adjustment:  # what the provider billed beyond our estimate
        yield _row(common, "adjustment", adjustment, _ZERO, None, None, 0, model, "Adjustment")


def _row(
    common: dict[str, Any],
    token_type: str,
    billed: Decimal,
    listed: Decimal,
    quantity: int | None,
    unit: str | None,
    calls: int,
    model: str,
    category: str,
) -> dict[str, Any]:
    out = dict.fromkeys(COLUMNS)
    out.update(common)
    out.update(
        {
            "BilledCost": money_text(billed),
            "EffectiveCost": money_text(billed),
            "ContractedCost": money_text(billed),
            "ListCost": money_text(listed),
            "ChargeCategory": category,
            "ChargeDescription": f"{model or 'unknown model'} {token_type.replace('_', ' ')}",
            "ConsumedQuantity": quantity,
            "ConsumedUnit": unit,
            "PricingQuantity": quantity,
            "PricingUnit": unit,
            "SkuPriceId": f"{model}:{token_type}" if model else None,
            "x_Calls": calls,
            "x_TokenType": token_type,
        }
    )
    return out


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
