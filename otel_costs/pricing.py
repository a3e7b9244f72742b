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

import fnmatch
import hashlib
import os
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Context, Decimal, InvalidOperation, getcontext, localcontext
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple, Union, cast

import genai_prices
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, Provider, Tier, TieredPrices

from .usage import TokenUsage

__all__ = [
    "Cost",
    "PriceOverrides",
    "PriceOverridesError",
    "Pricer",
    "PricingStatus",
    "PRICES_FILE_ENV",
]

#: Environment variable naming the price overrides file (TOML).
PRICES_FILE_ENV = "OTEL_COSTS_PRICES_FILE"

_MTOK = Decimal(1_000_000)
_KCOUNT = Decimal(1_000)
_ZERO = Decimal(0)
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

Price = Union[Decimal, TieredPrices, None]


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


class _Table:
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
    def of(cls, mp: ModelPrice) -> "_Table":
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
        cache_read = cache_write = _ZERO
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
        out = _ZERO
        if self.reasoning is not None:
            out_tokens -= u.reasoning_tokens
            out = _times(self.reasoning, u.reasoning_tokens, total_in)
        out = out + _times(self.output, out_tokens, total_in)
        if self.per_request is not None:
            inp = inp + _times(self.per_request, 1, total_in)
        searches = _times(self.web_search, u.web_searches, total_in) if u.web_searches else _ZERO
        return inp, out, cache_read, cache_write, searches


def _by_genai_prices(
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
        return _ZERO
    if type(rate) is TieredPrices:
        applied = rate.base
        for tier in reversed(rate.tiers):
            if total_input > tier.start:
                applied = tier.price
                break
        return applied * count
    return cast(Decimal, rate) * count


class PriceOverridesError(ValueError):
    """The overrides file is unreadable or invalid; the message lists every problem."""


_OVERRIDE_PRICE_KEYS = {
    "input": "input_per_mtok",
    "output": "output_per_mtok",
    "cache_read": "cache_read_per_mtok",
    "cache_write": "cache_write_per_mtok",
    "reasoning": "reasoning_per_mtok",
    "per_kilo_requests": "per_thousand_requests",
}
_OVERRIDE_KEYS = {"provider", "model", *_OVERRIDE_PRICE_KEYS.values()}


@dataclass(frozen=True)
class _Override:
    provider: str  # glob, lower-case; "*" matches any (and no) provider
    model: str  # glob, lower-case
    table: _Table


class PriceOverrides:
    """User prices from a TOML file, one ``[[model]]`` table each::

        [[model]]
        provider = "openai"                  # optional glob; default "*"
        model = "ft:gpt-4o-mini:acme:*"      # glob, case-insensitive
        input_per_mtok = "0.30"              # USD per million tokens (string or number)
        output_per_mtok = "1.20"
        cache_read_per_mtok = "0.15"         # optional; without it cache reads bill as input
        cache_write_per_mtok = "0.375"       # optional
        reasoning_per_mtok = "1.20"          # optional; without it reasoning bills as output
        per_thousand_requests = "0"          # optional flat fee

    The first matching entry wins. Raises :class:`PriceOverridesError` naming every
    problem (unknown keys, negative or non-numeric prices, missing model).
    """

    def __init__(self, entries: list[_Override], version: str, path: str | None = None):
        self._entries = entries
        self.version = version
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "PriceOverrides":
        """Read and validate an overrides file. Raises PriceOverridesError."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise PriceOverridesError(f"{p}: cannot read price overrides: {exc}") from None
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PriceOverridesError(f"{p}: not valid TOML: {exc}") from None
        version = "sha256:" + hashlib.sha256(raw).hexdigest()[:12]
        return cls.from_dict(doc, version=version, origin=str(p))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, version: str = "inline", origin: str = "overrides") -> "PriceOverrides":
        problems: list[str] = []
        unknown_top = set(doc) - {"model"}
        if unknown_top:
            problems.append(f"unknown top-level keys {sorted(unknown_top)} (expected [[model]])")
        models = doc.get("model", [])
        if not isinstance(models, list):
            problems.append("'model' must be an array of tables ([[model]])")
            models = []
        entries: list[_Override] = []
        for i, entry in enumerate(models, 1):
            where = f"[[model]] #{i}"
            if not isinstance(entry, dict):
                problems.append(f"{where}: must be a table")
                continue
            unknown = set(entry) - _OVERRIDE_KEYS
            if unknown:
                problems.append(f"{where}: unknown keys {sorted(unknown)}")
            model = entry.get("model")
            if not isinstance(model, str) or not model.strip():
                problems.append(f"{where}: 'model' must be a non-empty string")
                continue
            where = f"{where} ({model})"
            provider = entry.get("provider", "*")
            if not isinstance(provider, str) or not provider.strip():
                problems.append(f"{where}: 'provider' must be a non-empty string")
                continue
            prices: dict[str, Decimal | None] = {}
            for field, key in _OVERRIDE_PRICE_KEYS.items():
                prices[field] = _override_price(entry.get(key), f"{where}: {key}", problems)
            if prices["input"] is None or prices["output"] is None:
                problems.append(f"{where}: 'input_per_mtok' and 'output_per_mtok' are required")
                continue
            table = _Table(
                prices["input"],
                prices["output"],
                prices["cache_read"],
                prices["cache_write"],
                prices["reasoning"],
                prices["per_kilo_requests"],
            )
            entries.append(_Override(provider.strip().lower(), model.strip().lower(), table))
        if problems:
            raise PriceOverridesError(f"{origin}: invalid price overrides:\n  " + "\n  ".join(problems))
        return cls(entries, version, origin)

    def match(self, provider: str | None, model: str) -> _Table | None:
        prov = (provider or "").lower()
        name = model.lower()
        for entry in self._entries:
            if entry.provider != "*" and not fnmatch.fnmatchcase(prov, entry.provider):
                continue
            if fnmatch.fnmatchcase(name, entry.model):
                return entry.table
        return None


def _override_price(value: Any, where: str, problems: list[str]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        problems.append(f"{where}: must be a number or a decimal string, got {type(value).__name__}")
        return None
    try:
        # str() first: a TOML float 0.3 must mean Decimal("0.3"), not its binary expansion.
        price = Decimal(str(value).strip())
    except InvalidOperation:
        problems.append(f"{where}: {value!r} is not a decimal number")
        return None
    if not price.is_finite() or price < 0:
        problems.append(f"{where}: {value!r} must be a finite, non-negative price")
        return None
    return price


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
        self._tables: dict[int, tuple[ModelPrice, _Table]] = {}
        self._override_hits: dict[tuple[str | None, str], _Table | None] = {}
        self._by_minute: dict[tuple[int, int, str], tuple[ModelInfo, _Table, str | None]] = {}

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
                table = self._override(provider, model)
                if table is not None:
                    return self._cost(table, usage, PricingStatus.OVERRIDDEN, self._override_source, model)
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
        table: _Table,
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
                    inp, out, total = _by_genai_prices(table.model_price, usage, cr, cw, ws)
        except ValueError as exc:
            return Cost(PricingStatus.INVALID_USAGE, source, usage.provider, model, error=str(exc), tier=tier)
        return Cost(status, source, usage.provider, model, inp, out, cr, cw, total, note, web_search=ws, tier=tier)

    def _override(self, provider: str | None, model: str) -> _Table | None:
        key = (provider, model)
        try:
            return self._override_hits[key]
        except KeyError:
            assert self.overrides is not None
            hit = self._override_hits[key] = self.overrides.match(provider, model)
            return hit

    def _model(self, provider: str | None, model: str) -> tuple[Provider, ModelInfo] | str:
        """The genai-prices provider and model for (provider, model), or why there is none. Cached."""
        key = (provider, model)
        found = self._models.get(key)
        if found is not None:
            return found
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
    ) -> tuple[_Table, str | None]:
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
            table = _Table.of(info.get_prices(at, context))
        if len(self._by_minute) > 4096:
            self._by_minute.clear()
        self._by_minute[key] = (info, table, note)
        return table, note

    def _compiled(self, mp: ModelPrice) -> _Table:
        cached = self._tables.get(id(mp))
        if cached is not None and cached[0] is mp:
            return cached[1]
        table = _Table.of(mp)
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
