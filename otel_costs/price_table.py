"""A compiled price table: one genai-prices ``ModelPrice`` (or an overrides entry) as exact
``Decimal`` USD per token, search and request, and the arithmetic of one call against it,
following genai-prices' rules (collector and SDK alike; otel_costs/pricing.py says which).
Pure; thread-safe."""

from __future__ import annotations

from decimal import Decimal
from typing import Union, cast

import genai_prices
from genai_prices.types import ModelPrice, Tier, TieredPrices

from .usage import TokenUsage

__all__ = ["PriceTable", "by_genai_prices", "Price", "ZERO"]

_MTOK = Decimal(1_000_000)
_KCOUNT = Decimal(1_000)
ZERO = Decimal(0)
Price = Union[Decimal, TieredPrices, None]


class PriceTable:
    """A compiled price table: USD per token (or per request), exact ``Decimal``s.

    Flat prices are divided by their unit once here, so a call costs one multiplication
    per priced part. Tiered prices stay as genai-prices ``TieredPrices``.
    """

    __slots__ = (
        "input",
        "output",
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "reasoning",
        "per_request",
        "web_search",
        "tiered",
        "model_price",
    )

    def __init__(
        self,
        input: Price,
        output: Price,
        cache_read: Price = None,
        cache_write: Price = None,
        reasoning: Price = None,
        per_kilo_requests: Price = None,
        cache_write_1h: Price = None,
        per_kilo_web_searches: Price = None,
    ):
        parts = (input, output, cache_read, cache_write, reasoning, cache_write_1h)
        self.tiered = any(isinstance(p, TieredPrices) for p in (*parts, per_kilo_requests, per_kilo_web_searches))
        self.input, self.output, self.cache_read, self.cache_write, self.reasoning, self.cache_write_1h = (
            _per_unit(p, _MTOK) for p in parts
        )
        self.per_request = _per_unit(per_kilo_requests, _KCOUNT)
        self.web_search = _per_unit(per_kilo_web_searches, _KCOUNT)
        #: genai-prices' own prices, for calls it prices itself (other modalities).
        self.model_price: ModelPrice | None = None

    @classmethod
    def of(cls, mp: ModelPrice) -> "PriceTable":
        get = mp.__dict__.get
        table = cls(
            get("input_mtok"),
            get("output_mtok"),
            get("cache_read_mtok"),
            get("cache_write_mtok"),
            get("output_reasoning_mtok"),
            get("requests_kcount"),
            get("cache_write_1h_mtok"),
            get("web_searches_kcount"),
        )
        table.model_price = mp
        return table

    def cost(self, u: TokenUsage) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        """(input, output, cache_read, cache_write, web_search) in USD for one call.

        Raises ValueError when priced cache parts exceed the input tokens. Uses the
        thread's decimal context, which the caller has checked is precise enough.
        """
        total_in = u.input_tokens if self.tiered else 0
        uncached = u.input_tokens
        cache_read = cache_write = ZERO
        if self.cache_read is not None:
            uncached -= u.cache_read_tokens
            cache_read = _times(self.cache_read, u.cache_read_tokens, total_in)
        hour = u.cache_write_1h_tokens if self.cache_write_1h is not None else 0
        if hour:
            uncached -= hour
            cache_write = _times(self.cache_write_1h, hour, total_in)
        if self.cache_write is not None:
            uncached -= u.cache_write_tokens - hour
            cache_write = cache_write + _times(self.cache_write, u.cache_write_tokens - hour, total_in)
        if uncached < 0:
            raise ValueError(
                f"cache tokens ({u.cache_read_tokens} read + {u.cache_write_tokens} written) "
                f"exceed input tokens ({u.input_tokens})"
            )
        inp = _times(self.input, uncached, total_in)
        out_tokens = u.output_tokens
        out = ZERO
        if self.reasoning is not None:
            out_tokens -= u.reasoning_tokens
            out = _times(self.reasoning, u.reasoning_tokens, total_in)
        out = out + _times(self.output, out_tokens, total_in)
        if self.per_request is not None:
            inp = inp + _times(self.per_request, 1, total_in)
        searches = _times(self.web_search, u.web_searches, total_in) if u.web_searches else ZERO
        return inp, out, cache_read, cache_write, searches


def by_genai_prices(
    mp: ModelPrice, u: TokenUsage, cache_read: Decimal, cache_write: Decimal, web_search: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """(input, output, total) of a call with audio or image tokens, priced by genai-prices
    itself (its units split each modality out of the tokens it is part of). Cache and web
    search parts are the table's; the rest of genai-prices' input is the input part. ~50 µs,
    for the few calls that carry other modalities. Raises ValueError for usage it refuses."""
    usage = genai_prices.Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cache_write_1h_tokens=u.cache_write_1h_tokens,
        output_reasoning_tokens=u.reasoning_tokens,
        web_searches=u.web_searches,
        input_audio_tokens=u.input_audio_tokens,
        input_image_tokens=u.input_image_tokens,
        output_audio_tokens=u.output_audio_tokens,
    )
    price = mp.calc_price(usage)
    return price["input_price"] - cache_read - cache_write, price["output_price"], price["total_price"]


def _per_unit(price: Price, per: Decimal) -> Price:
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        return TieredPrices(base=price.base / per, tiers=[Tier(t.start, t.price / per) for t in price.tiers])
    return price / per  # exact: a division by a power of ten


def _times(rate: Price, count: int, total_input: int) -> Decimal:
    """``rate`` × ``count``; a tiered rate switches on the call's total input tokens."""
    if not count or rate is None:
        return ZERO
    if type(rate) is TieredPrices:
        applied = rate.base
        for tier in reversed(rate.tiers):
            if total_input > tier.start:
                applied = tier.price
                break
        return applied * count
    return cast(Decimal, rate) * count
