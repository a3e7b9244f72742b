"""One stored call priced again: its row's tokens and time through the one Pricer. Pure, no I/O.

What a re-price may change, and what it leaves alone, is decided here:

* only calls whose price is ours to give: status ``priced``, ``overridden`` or ``unpriced``
  (:data:`STATUSES`), never a cost the provider billed (``cost_source = provider``), never a
  call counted on another span or an aggregate (their rows stay uncounted), never a call whose
  usage was unreadable or partial;
* a call keeps its old version when the new one is the same, when no price is known now
  (still unpriced; and a known cost never becomes unknown), and when the price table it was priced with is the one
  used now yet the cost differs: then the call was priced with facts the table does not store
  (audio or image tokens, the provider's modality split) and pricing its stored tokens would
  be wrong.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from otel_costs.pricing import Pricer, PricingStatus
from otel_costs.usage import Provenance, TokenUsage
from otel_costs_collector.mapping.rows import price_columns

__all__ = ["ONLY", "STATUSES", "Kept", "Stored", "Version", "reprice"]

#: The statuses a re-price considers, by ``--only``.
STATUSES: dict[str, tuple[str, ...]] = {
    "all": (PricingStatus.PRICED.value, PricingStatus.OVERRIDDEN.value, PricingStatus.UNPRICED.value),
    "unpriced": (PricingStatus.UNPRICED.value,),
}
ONLY = tuple(STATUSES)
_KNOWN = (PricingStatus.PRICED, PricingStatus.OVERRIDDEN)


class Version(NamedTuple):
    """A call's cost version: the seven cost columns (input, output, cache read, cache write,
    web search, adjustment, total; USD), status, price source, priced model, error, who
    priced it and the served tier — the columns a re-price writes."""

    costs: tuple[Decimal, ...]
    status: str
    source: str
    model: str
    error: str
    priced_by: str
    tier: str


class Stored(NamedTuple):
    """What a stored row says of a call's usage (normalised as ``TokenUsage``: input includes
    cache reads and writes, output includes reasoning)."""

    at_ns: int
    provider: str
    request_model: str
    response_model: str
    operation: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cache_write_1h_tokens: int
    web_searches: int
    version: Version


class Kept(NamedTuple):
    """Why a call keeps its version (``reason``: "unchanged", "still unpriced", "no price now",
    "facts not stored"; reprice/run.py adds "copies differ")."""

    reason: str


def reprice(pricer: Pricer, stored: Stored) -> Version | Kept:
    """The call's new version, or why it keeps the one it has. Never raises."""
    old = stored.version
    tier = old.tier if old.tier not in ("", "standard") else None
    usage = TokenUsage(
        stored.input_tokens,
        stored.output_tokens,
        stored.cache_read_tokens,
        stored.cache_write_tokens,
        stored.reasoning_tokens,
        "stored",
        Provenance.INCLUSIVE,
        stored.provider or None,
        stored.request_model or None,
        stored.response_model or None,
        stored.operation or None,
        cache_write_1h_tokens=stored.cache_write_1h_tokens,
        web_searches=stored.web_searches,
        service_tier=tier,
        batch=old.tier == "batch",
    )
    cost = pricer.estimate(usage, stored.at_ns)
    costs, status, source, model, error, new_tier, _ = price_columns(cost)
    if status not in _KNOWN:
        return Kept("still unpriced" if old.status == PricingStatus.UNPRICED.value else "no price now")
    new = Version(costs, status.value, source, model, error, "collector", new_tier)
    if new.costs == old.costs and new.status == old.status:  # a newer table, the same money: not touched
        return Kept("unchanged")
    if old.status != PricingStatus.UNPRICED.value and new.source == old.source and new.costs != old.costs:
        return Kept("facts not stored")
    return new
