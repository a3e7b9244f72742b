"""A price an otel-costs SDK already put on a span: kept when it is well formed and its parts
add up, so a span is never priced twice; anything else is priced again by the collector."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from otel_costs import conventions as cv
from otel_costs.pricing import PricingStatus
from otel_costs_collector.mapping.read import text_of

__all__ = ["MIN_EXPONENT", "sdk_cost", "too_fine"]

# Storage is Decimal(38, 18): finer amounts would be rounded by ClickHouse.
MIN_EXPONENT = -18


_QUANTUM = Decimal(1).scaleb(MIN_EXPONENT)


def too_fine(amount: Decimal) -> bool:
    exponent = amount.as_tuple().exponent
    return isinstance(exponent, int) and exponent < MIN_EXPONENT and amount != amount.quantize(_QUANTUM)


_ADJUSTMENT = cv.COST_PARTS.index(cv.COST_ADJUSTMENT)
_SDK_STATUSES = {s.value: s for s in PricingStatus if s is not PricingStatus.COUNTED_ELSEWHERE}
_ZEROS = (Decimal(0),) * len(cv.COST_PARTS)


def sdk_cost(attrs: dict[str, Any]) -> tuple[tuple[Decimal, ...], PricingStatus, str, str, str, str] | None:
    """The price an otel-costs SDK already put on the span, if it is well-formed."""
    status = _SDK_STATUSES.get(attrs.get(cv.PRICING_STATUS))  # type: ignore[arg-type]
    if status is None:
        return None
    if status in (PricingStatus.PRICED, PricingStatus.OVERRIDDEN):
        parts: list[Decimal] = []
        for i, raw in enumerate(attrs.get(name, "0") for name in cv.COST_PARTS):
            if type(raw) is not str or len(raw) > 60:
                return None  # malformed: price it here instead
            try:
                amount = Decimal(raw)
            except InvalidOperation:
                return None
            if not amount.is_finite() or (amount < 0 and i != _ADJUSTMENT):  # a bill below the estimate
                return None
            # Plain strings with <= 18 decimals fit Decimal(38, 18); check the rest exactly.
            dot = raw.find(".")
            if ("E" in raw or "e" in raw or (dot >= 0 and len(raw) - dot - 1 > 18)) and too_fine(amount):
                return None
            parts.append(amount)
        # The parts must add up: a total that does not is not the SDK's (price it here).
        if sum(parts[:-1]) != parts[-1]:
            return None
        costs = tuple(parts)
    else:
        costs = _ZEROS
    return (
        costs,
        status,
        text_of(attrs.get(cv.PRICING_SOURCE)),
        text_of(attrs.get(cv.PRICING_MODEL)),
        text_of(attrs.get(cv.PRICING_ERROR)),
        text_of(attrs.get(cv.PRICING_TIER))[:64] or "standard",
    )
