"""A price an otel-costs SDK already put on a span: kept when it is well formed and its parts
add up, so a span is never priced twice; anything else is priced again by the collector."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from otel_costs import conventions as cv
from otel_costs.pricing import Cost, PricingStatus
from otel_costs_collector.mapping.read import text_of

__all__ = ["MIN_EXPONENT", "sdk_cost", "too_fine"]

# Storage is Decimal(38, 18): finer amounts would be rounded by ClickHouse.
MIN_EXPONENT = -18


_QUANTUM = Decimal(1).scaleb(MIN_EXPONENT)


def too_fine(amount: Decimal) -> bool:
    exponent = amount.as_tuple().exponent
    return isinstance(exponent, int) and exponent < MIN_EXPONENT and amount != amount.quantize(_QUANTUM)


_ADJUSTMENT = cv.COST_PARTS.index(cv.COST_ADJUSTMENT)
assert cv.COST_PARTS == (
    cv.COST_INPUT,
    cv.COST_OUTPUT,
    cv.COST_CACHE_READ,
    cv.COST_CACHE_WRITE,
    cv.COST_WEB_SEARCH,
    cv.COST_ADJUSTMENT,
    cv.COST_TOTAL,
), "sdk_cost unpacks the parts in this order"
assert Cost._fields[:15] == (
    "status",
    "source",
    "provider",
    "model",
    "input",
    "output",
    "cache_read",
    "cache_write",
    "total",
    "error",
    "currency",
    "web_search",
    "adjustment",
    "source_of_cost",
    "tier",
), "sdk_cost builds a Cost positionally (a span's hot path)"
_SDK_STATUSES = {s.value: s for s in PricingStatus if s is not PricingStatus.COUNTED_ELSEWHERE}
_PRICED = (PricingStatus.PRICED, PricingStatus.OVERRIDDEN)
_NONE = (None,) * 7


# A price is one of few amounts (the same model and usage cost the same): each string is
# read once. Decimals are immutable, so sharing them is safe.
_AMOUNTS: dict[str, Decimal] = {}
_MAX_AMOUNTS = 65_536


def _amount(raw: Any) -> Decimal | None:
    """A cost attribute's amount, or None when it is not a finite decimal string that
    storage's Decimal(38, 18) holds exactly."""
    if type(raw) is not str or len(raw) > 60:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    # Plain strings with <= 18 decimals fit Decimal(38, 18); check the rest exactly.
    dot = raw.find(".")
    if ("E" in raw or "e" in raw or (dot >= 0 and len(raw) - dot - 1 > 18)) and too_fine(amount):
        return None
    return amount


def sdk_cost(attrs: dict[str, Any]) -> Cost | None:
    """The price an otel-costs SDK already put on the span, if it is well-formed: its parts
    (all set, the adjustment 0 when there is none) when priced, None parts otherwise."""
    status = _SDK_STATUSES.get(attrs.get(cv.PRICING_STATUS))  # type: ignore[arg-type]
    if status is None:
        return None
    parts: list[Decimal] = []
    if status in _PRICED:
        amounts = _AMOUNTS
        for i, raw in enumerate(attrs.get(name, "0") for name in cv.COST_PARTS):
            amount = amounts.get(raw) if type(raw) is str else None
            if amount is None:
                amount = _amount(raw)
                if amount is None:
                    return None  # malformed: price it here instead
                if len(amounts) >= _MAX_AMOUNTS:
                    amounts.clear()  # the strings are the senders': memory stays bounded
                amounts[raw] = amount
            if amount < 0 and i != _ADJUSTMENT:  # a bill below the estimate may be negative
                return None
            parts.append(amount)
        # The parts must add up: a total that does not is not the SDK's (price it here).
        if sum(parts[:-1]) != parts[-1]:
            return None
    # cv.COST_PARTS order: input, output, cache read, cache write, web search, adjustment, total.
    inp, out, cr, cw, ws, adj, total = parts or _NONE
    return Cost(
        status,
        text_of(attrs.get(cv.PRICING_SOURCE)),
        None,
        text_of(attrs.get(cv.PRICING_MODEL)),
        inp,
        out,
        cr,
        cw,
        total,
        text_of(attrs.get(cv.PRICING_ERROR)),
        "USD",
        ws,
        adj,
        "provider" if attrs.get(cv.COST_AMOUNT_SOURCE) == "provider" else "local",
        text_of(attrs.get(cv.PRICING_TIER))[:64] or "standard",
    )
