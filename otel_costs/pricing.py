"""Exact prices for token usage: genai-prices, plus a user overrides file.

``Pricer.price(usage, at_ns)`` returns a :class:`Cost` in ``Decimal`` USD. Model look-ups
go through genai-prices once per (provider, model) and are cached, as is the compiled price
table of each genai-prices ``ModelPrice``; the per-call work is a handful of ``Decimal``
multiplications, because genai-prices' own ``calc_price`` costs ~150 µs a call, too much for
an app's span path. The arithmetic follows genai-prices' rules exactly (tests compare the
two on every model of the major providers):

* ``input_tokens`` includes cache reads and writes; a cache part that has its own price is
  taken out of the input and priced at that price, one without stays in the input. One-hour
  cache writes are a part of the cache writes, at their own price where the model has one.
* Web searches are priced per search, a cost part of their own.
* A call with audio or image tokens is priced by genai-prices itself (its units split each
  modality out of the tokens it is part of).
* The service tier the provider served (``flex``, ``priority``, …) and the batch API select
  genai-prices' price variants (its ``price_context``); a tier it has no price for is priced
  at the standard price, and the cost says so in ``error``.
* When the provider reported what it billed (``TokenUsage.provider_cost``), that is the total;
  the parts stay our list-price estimate and ``adjustment`` is the difference.
* Tiered prices switch on the call's total input tokens (all tokens at the tier's rate).
* Priced units we have no counts for (audio, web searches, …) count zero.

The overrides file (TOML) prices fine-tuned, self-hosted and negotiated models and wins
over genai-prices. Thread-safe: caches are dicts written with atomic assignments.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from decimal import Context, Decimal, getcontext, localcontext
from enum import Enum
from typing import Any, NamedTuple

import genai_prices
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, Provider

from .overrides import PRICES_FILE_ENV, PriceOverrides
from .price_table import PriceTable, by_genai_prices
from .usage import TokenUsage

__all__ = [
    "Cost",
    "Pricer",
    "PricingStatus",
]

#: Look-ups remembered per Pricer (model names come from senders: each cache is bounded).
MAX_CACHED = 4096
#: A model or provider name longer than this matches no price and is not looked up.
MAX_MODEL_NAME = 256
# Money is computed in the thread's decimal context (operators are 2x faster than
# Context methods); an app that lowered its precision below this gets our own context.
_MIN_PREC = 28
_CTX = Context(prec=40)
_GENAI_PRICES_VERSION = genai_prices.__version__

# gen_ai.provider.name values (semconv) → genai-prices provider ids, where its own
# fuzzy provider matching would pick the wrong one ("azure.ai.openai" contains "openai").
_PROVIDER_IDS = {
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "aws.bedrock": "aws",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "mistral_ai": "mistral",
    "together_ai": "together",
}


class PricingStatus(str, Enum):
    """How a span's cost was obtained. Written to ``otel_costs.pricing.status``."""

    PRICED = "priced"  # from genai-prices
    OVERRIDDEN = "overridden"  # from the user's overrides file
    UNPRICED = "unpriced"  # model or provider has no known price: cost unknown, not 0
    INVALID_USAGE = "invalid_usage"  # token attributes unreadable: cost unknown, not 0
    INCOMPLETE = "incomplete"  # the response was not read to its end (or not readable): usage partial, cost unknown
    COUNTED_ELSEWHERE = "counted_elsewhere"  # another span (the call's HTTP span) carries this call's cost
    AGGREGATE = "aggregate"  # an agent, workflow or SDK outer span: its usage is its calls', never billed again


class Cost(NamedTuple):
    """The cost of one call in USD. Parts are ``None`` unless the status is priced or
    overridden. ``input`` is the uncached input; ``output`` includes reasoning.
    ``source`` names the price source and its version ("genai-prices 0.2.3")."""

    status: PricingStatus
    source: str
    provider: str | None = None
    model: str | None = None
    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    total: Decimal | None = None
    error: str | None = None
    currency: str = "USD"
    web_search: Decimal | None = None
    #: The provider's billed cost minus our estimate (``source_of_cost`` "provider"), else None.
    adjustment: Decimal | None = None
    #: "local": priced here from list prices; "provider": the provider's billed cost.
    source_of_cost: str = "local"
    #: The service tier the provider served: "standard", "flex", "priority", "batch", …
    #: Priced at that tier's price, or at the standard one when the model has none (``error``
    #: says so).
    tier: str = "standard"


class Pricer:
    """Prices :class:`TokenUsage`. Construct once; ``price`` is thread-safe and does no I/O.

    ``overrides`` is a :class:`PriceOverrides`, a path to one, or None to read the path from
    ``OTEL_COSTS_PRICES_FILE`` (unset: no overrides). Raises PriceOverridesError.
    """

    #: Source label of genai-prices results.
    source = f"genai-prices {_GENAI_PRICES_VERSION}"

    def __init__(self, overrides: PriceOverrides | str | os.PathLike[str] | None = None):
        if overrides is None:
            overrides = os.environ.get(PRICES_FILE_ENV, "").strip() or None
        if overrides is not None and not isinstance(overrides, PriceOverrides):
            overrides = PriceOverrides.load(overrides)
        self.overrides: PriceOverrides | None = overrides
        self._override_source = f"overrides {overrides.version}" if overrides else ""
        self._models: dict[tuple[str | None, str], tuple[Provider, ModelInfo] | str] = {}
        self._tables: dict[int, tuple[ModelPrice, PriceTable]] = {}
        self._override_hits: dict[tuple[str | None, str], tuple[Any, ...]] = {}
        self._by_minute: dict[tuple[int, int, str], tuple[ModelInfo, PriceTable, str | None]] = {}

    def price(self, usage: TokenUsage, at_ns: int | None = None) -> Cost:
        """Cost of ``usage`` (see :meth:`estimate`); when the provider reported what it billed,
        that is the total, our estimate stays in the parts and ``adjustment`` is the rest."""
        cost = self.estimate(usage, at_ns)
        billed = usage.provider_cost
        if billed is None:
            return cost
        if cost.total is None:  # no list price (or unreadable usage): the bill alone
            zero = Decimal(0)
            note = f"{cost.error}; counted the provider's cost" if cost.error else None
            return cost._replace(
                status=PricingStatus.PRICED,
                input=zero,
                output=zero,
                cache_read=zero,
                cache_write=zero,
                web_search=zero,
                adjustment=billed,
                total=billed,
                error=note,
                source_of_cost="provider",
            )
        with localcontext(_CTX):
            adjustment = billed - cost.total
        return cost._replace(total=billed, adjustment=adjustment, source_of_cost="provider")

    def estimate(self, usage: TokenUsage, at_ns: int | None = None) -> Cost:
        """Our list-price cost of ``usage`` at the price in force at ``at_ns`` (ns since epoch;
        None: now), for the service tier the provider served (``usage.service_tier``, ``usage.batch``).

        The response model (often a dated snapshot) is priced before the request model.
        Never raises: problems come back as an UNPRICED or INVALID_USAGE cost with ``error``.
        """
        provider = usage.provider
        error = "no model name on the span"
        for model in (usage.response_model, usage.request_model):
            if not model:
                continue
            if self.overrides is not None:
                hit = self.overrides.entry(self._override(provider, model), at_ns)
                if hit is not None:  # the entry in force at the call's time; its id says which price
                    source = f"{self._override_source} {hit[1]}"
                    return self._cost(hit[0], usage, PricingStatus.OVERRIDDEN, source, model)
            found = self._model(provider, model)
            if isinstance(found, str):
                error = found
                continue
            context, tier = _price_context(usage)
            table, note = self._table(found, at_ns, context, tier)
            return self._cost(table, usage, PricingStatus.PRICED, self.source, found[1].id, tier, note)
        model = usage.response_model or usage.request_model
        return Cost(PricingStatus.UNPRICED, self.source, provider, model, error=error)

    def _cost(
        self,
        table: PriceTable,
        usage: TokenUsage,
        status: PricingStatus,
        source: str,
        model: str,
        tier: str = "standard",
        note: str | None = None,
    ) -> Cost:
        try:
            if getcontext().prec >= _MIN_PREC:
                inp, out, cr, cw, ws = table.cost(usage)
                total = inp + out + cr + cw + ws
            else:
                with localcontext(_CTX):
                    inp, out, cr, cw, ws = table.cost(usage)
                    total = inp + out + cr + cw + ws
            modalities = usage.input_audio_tokens or usage.input_image_tokens or usage.output_audio_tokens
            if modalities and table.model_price is not None:
                with localcontext(_CTX):
                    inp, out, total = by_genai_prices(table.model_price, usage, cr, cw, ws)
        except ValueError as exc:
            return Cost(PricingStatus.INVALID_USAGE, source, usage.provider, model, error=str(exc), tier=tier)
        return Cost(status, source, usage.provider, model, inp, out, cr, cw, total, note, web_search=ws, tier=tier)

    def _override(self, provider: str | None, model: str) -> tuple[Any, ...]:
        """The override entries that match (provider, model), whatever their dates. Cached."""
        key = (provider, model)
        try:
            return self._override_hits[key]
        except KeyError:
            assert self.overrides is not None
            if len(self._override_hits) >= MAX_CACHED:
                self._override_hits.clear()  # names are the senders': memory stays bounded
            hit = self._override_hits[key] = self.overrides.candidates(provider, model)
            return hit

    def _model(self, provider: str | None, model: str) -> tuple[Provider, ModelInfo] | str:
        """The genai-prices provider and model for (provider, model), or why there is none. Cached."""
        key = (provider, model)
        found = self._models.get(key)
        if found is not None:
            return found
        if len(model) > MAX_MODEL_NAME or (provider is not None and len(provider) > MAX_MODEL_NAME):
            return f"model or provider name longer than {MAX_MODEL_NAME} characters: no price matches it"
        if len(self._models) >= MAX_CACHED:
            self._models.clear()  # names are the senders': memory stays bounded
        provider_id = None
        if provider is not None:
            provider_id = _PROVIDER_IDS.get(provider.lower(), provider)
        try:
            found = get_snapshot().find_provider_model(model, None, provider_id, None)
        except LookupError as exc:
            found = str(exc)
        except Exception as exc:  # a price-database bug must not break the app
            found = f"price lookup failed: {type(exc).__name__}: {exc}"
        self._models[key] = found
        return found

    def _table(
        self, found: tuple[Provider, ModelInfo], at_ns: int | None, context: dict[str, str] | None, tier: str
    ) -> tuple[PriceTable, str | None]:
        """The compiled prices in force at ``at_ns`` for the served tier, and a note when the
        model has no price for that tier (the standard one is used)."""
        provider, info = found
        if context is None and isinstance(info.prices, ModelPrice):
            return self._compiled(info.prices), None  # no price history
        # Price history: genai-prices' constraints switch at dates or times of day, all on
        # whole minutes, so the table in force is cached per model, minute and tier.
        if at_ns is None:
            at_ns = time.time_ns()
        key = (id(info), at_ns // 60_000_000_000, tier)
        hit = self._by_minute.get(key)
        if hit is not None and hit[0] is info:
            return hit[1], hit[2]
        at = datetime.fromtimestamp(at_ns / 1e9, timezone.utc)
        note = None
        if context is not None and not _has_variant(provider, info, context, at):
            note = f"no {tier!r} price for {info.id}: priced at the standard price"
            context = None
        if context is None:
            table = self._compiled(info.get_prices(at))
        else:  # a resolved copy each time: compiled once here, cached per minute
            table = PriceTable.of(info.get_prices(at, context))
        if len(self._by_minute) >= MAX_CACHED:
            self._by_minute.clear()
        self._by_minute[key] = (info, table, note)
        return table, note

    def _compiled(self, mp: ModelPrice) -> PriceTable:
        cached = self._tables.get(id(mp))
        if cached is not None and cached[0] is mp:
            return cached[1]
        table = PriceTable.of(mp)
        self._tables[id(mp)] = (mp, table)
        return table


#: Served tiers that are the standard price: OpenAI's ``default`` and ``auto``, Anthropic's
#: ``standard`` (and its request value ``standard_only``).
_STANDARD_TIERS = frozenset({"", "default", "auto", "standard", "standard_only"})


def _price_context(usage: TokenUsage) -> tuple[dict[str, str] | None, str]:
    """genai-prices' ``price_context`` for how the call was served, and the tier's name:
    (None, "standard"); ({"processing": "batch"}, "batch") for the batch API (Anthropic
    reports it as the tier ``batch``); ({"service_tier": t}, t) for any other tier."""
    if usage.batch:
        return {"processing": "batch"}, "batch"
    tier = (usage.service_tier or "")[:64].strip().lower()  # a sender's string: cut before copying
    if tier in _STANDARD_TIERS:
        return None, "standard"
    if tier == "batch":
        return {"processing": "batch"}, "batch"
    return {"service_tier": tier}, tier


def _has_variant(provider: Provider, info: ModelInfo, context: dict[str, str], at: datetime) -> bool:
    """Whether genai-prices prices ``context`` for this model at ``at``: one of its variants
    matches and is in force, and the model is the provider's own (calc_price ignores the
    context for a model found through another provider)."""
    if not any(info is m for m in provider.models):
        return False
    return any(
        all(context.get(k) == v for k, v in variant.when.items())
        and (variant.constraint is None or variant.constraint.active(at))
        for variant in info.price_variants or ()
    )
