"""The counted row carries every billed fact its call's spans say. Pure: rows in, rows changed.

When two instrumentations trace one call, the rule (otel_costs_collector.mapping.calls)
counts one span and marks the other ``counted_elsewhere``; each may say facts the other
leaves out (OpenInference's Anthropic span has the web searches, the anthropic SDK's own
span inside it does not; OpenLLMetry's OpenAI span has the served tier, OpenInference's
inside it does not). :func:`merge` adds what the spans counted elsewhere say to the row that
counts (otel_costs.usage.with_facts) and prices it once more, when that row is in the same
batch. It runs after the rule on a batch's rows, as decided or as replayed from the decisions
written ahead, so a replay merges the same way.

A span counted on a row of an earlier batch (stored already) cannot add to it: its own row
says so in ``pricing_error`` and :func:`merge` counts it, so the gap is visible, not silent.
A row the SDK priced is never priced again here (the app's price overrides are its own);
``CostSpanProcessor`` merges the facts of the spans it sees before they leave the app.
"""

from __future__ import annotations

from typing import Any, Mapping

from otel_costs.pricing import Pricer, PricingStatus
from otel_costs.usage import Provenance, TokenUsage, fact_attributes, with_facts
from otel_costs_collector.mapping.rows import price_columns
from otel_costs_collector.storage.columns import (
    CACHE_READ,
    CACHE_WRITE,
    CACHE_WRITE_1H,
    COLUMNS,
    COSTS,
    COUNTED_ON,
    INPUT,
    N_COSTS,
    OPERATION,
    OUTPUT,
    PRICED_BY,
    PRICING_SOURCE,
    PROVIDER,
    REASONING,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    SPAN_ID,
    STATUS,
    TIMESTAMP,
    TRACE_ID,
    WEB_SEARCHES,
)

__all__ = ["merge"]

_COUNTED_ELSEWHERE = PricingStatus.COUNTED_ELSEWHERE.value
_PRICING_MODEL = COLUMNS.index("pricing_model")
_PRICING_ERROR = COLUMNS.index("pricing_error")
_TIER = COLUMNS.index("service_tier")
_COST_SOURCE = COLUMNS.index("cost_source")
_MAX_ERROR = 500


def merge(rows: list[list[Any]], facts: Mapping[str, TokenUsage], pricer: Pricer) -> tuple[int, int]:
    """Add the billed facts of this batch's ``counted_elsewhere`` rows (``facts``: their usage
    by trace id + span id, for the rows that say any; MapResult.facts) to the row each is
    counted on, priced again with them. ``rows``: every row of the batch, the rule applied.
    Returns how many counted rows were priced again, and how many rows' facts could not be
    added (their counted row is not in the batch): those rows say so in ``pricing_error``.
    Changes rows in place; never raises for any row."""
    if not facts:
        return 0, 0
    givers = [
        row
        for row in rows
        if row[STATUS] == _COUNTED_ELSEWHERE and row[COUNTED_ON] and row[TRACE_ID] + row[SPAN_ID] in facts
    ]
    if not givers:
        return 0, 0
    by_span = {row[SPAN_ID]: row for row in rows if row[STATUS] != _COUNTED_ELSEWHERE}
    lost = 0
    merged: dict[int, tuple[list[Any], TokenUsage, TokenUsage]] = {}  # id(row) → (row, its usage, merged)
    for giver in givers:
        theirs = facts[giver[TRACE_ID] + giver[SPAN_ID]]
        carrier = by_span.get(giver[COUNTED_ON])
        if carrier is None:
            lost += 1
            said = ", ".join(f"{k}={v}" for k, v in fact_attributes(theirs).items())
            giver[_PRICING_ERROR] = (
                f"billed facts not on the counted span {giver[COUNTED_ON]} (stored before this span came): {said}"
            )[:_MAX_ERROR]
            continue
        if carrier[PRICED_BY] != "collector":
            continue
        entry = merged.get(id(carrier))
        if entry is None:
            mine = facts.get(carrier[TRACE_ID] + carrier[SPAN_ID]) or _usage_of(carrier)
            entry = (carrier, mine, mine)
        merged[id(carrier)] = (carrier, entry[1], with_facts(entry[2], theirs))
    repriced = 0
    for carrier, mine, usage in merged.values():
        if usage is not mine:
            _price(carrier, usage, pricer)
            repriced += 1
    return repriced, lost


def _usage_of(row: list[Any]) -> TokenUsage:
    """The usage of a row that says no billed facts beyond its tokens (the rest of what
    pricing reads: provider and models)."""
    return TokenUsage(
        row[INPUT],
        row[OUTPUT],
        row[CACHE_READ],
        row[CACHE_WRITE],
        row[REASONING],
        "",
        Provenance.INCLUSIVE,
        row[PROVIDER] or None,
        row[REQUEST_MODEL] or None,
        row[RESPONSE_MODEL] or None,
        row[OPERATION] or None,
    )


def _price(row: list[Any], usage: TokenUsage, pricer: Pricer) -> None:
    costs, status, source, model, error, tier, cost_source = price_columns(pricer.price(usage, row[TIMESTAMP]))
    row[COSTS : COSTS + N_COSTS] = costs
    row[STATUS], row[PRICING_SOURCE], row[_PRICING_MODEL] = status.value, source, model
    row[_PRICING_ERROR], row[_TIER], row[_COST_SOURCE] = error[:_MAX_ERROR], tier, cost_source
    row[CACHE_WRITE_1H], row[WEB_SEARCHES] = usage.cache_write_1h_tokens, usage.web_searches
