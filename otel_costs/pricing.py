"""Exact prices for token usage: genai-prices, plus a user overrides file.

``Pricer.price(usage, at_ns)`` returns a :class:`Cost` in ``Decimal`` USD. Model look-ups
go through genai-prices once per (provider, model) and are cached, as is the compiled price
table of each genai-prices ``ModelPrice``; the per-call work is a handful of ``Decimal``
multiplications, because genai-prices' own ``calc_price`` costs ~150 µs a call, too much for
an app's span path. The arithmetic follows genai-prices' rules exactly (tests compare the
two on every model of the major providers):

* ``input_tokens`` includes cache reads and writes; a cache part that has its own price is
  taken out of the input and priced at that price, one without stays in the input.
* Tiered prices switch on the call's total input tokens (all tokens at the tier's rate).
* Priced units we have no counts for (audio, web searches, …) count zero.

The overrides file (TOML) prices fine-tuned, self-hosted and negotiated models and wins
over genai-prices. Thread-safe: caches are dicts written with atomic assignments.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Context, Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, Union

import genai_prices
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices

from .conventions import TokenUsage

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
# Our own context: an app that lowers decimal precision globally must not round our money.
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


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one call in USD. Parts are ``None`` unless the status is priced or
    overridden. ``input`` is the uncached input; ``output`` includes reasoning."""

    status: PricingStatus
    source: str
    version: str
    provider: str | None = None
    model: str | None = None
    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    total: Decimal | None = None
    error: str | None = None
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class _Table:
    """A compiled price table: price per token-million (or per request-thousand)."""

    input: Price
    output: Price
    cache_read: Price
    cache_write: Price
    reasoning: Price
    per_kilo_requests: Price
    tiered: bool

    @classmethod
    def of(cls, mp: ModelPrice) -> "_Table":
        get = mp.__dict__.get
        prices = (
            get("input_mtok"),
            get("output_mtok"),
            get("cache_read_mtok"),
            get("cache_write_mtok"),
            get("output_reasoning_mtok"),
            get("requests_kcount"),
        )
        return cls(*prices, tiered=any(isinstance(p, TieredPrices) for p in prices))

    def cost(self, u: TokenUsage) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(input, output, cache_read, cache_write) in USD for one call."""
        total_in = u.input_tokens if self.tiered else 0
        uncached = u.input_tokens
        cache_read = cache_write = _ZERO
        if self.cache_read is not None:
            uncached -= u.cache_read_tokens
            cache_read = _unit(self.cache_read, u.cache_read_tokens, total_in, _MTOK)
        if self.cache_write is not None:
            uncached -= u.cache_write_tokens
            cache_write = _unit(self.cache_write, u.cache_write_tokens, total_in, _MTOK)
        if uncached < 0:
            raise ValueError(
                f"cache tokens ({u.cache_read_tokens} read + {u.cache_write_tokens} written) "
                f"exceed input tokens ({u.input_tokens})"
            )
        inp = _unit(self.input, uncached, total_in, _MTOK)
        out_tokens = u.output_tokens
        out = _ZERO
        if self.reasoning is not None:
            out_tokens -= u.reasoning_tokens
            out = _unit(self.reasoning, u.reasoning_tokens, total_in, _MTOK)
        out = _CTX.add(out, _unit(self.output, out_tokens, total_in, _MTOK))
        if self.per_kilo_requests is not None:
            inp = _CTX.add(inp, _unit(self.per_kilo_requests, 1, total_in, _KCOUNT))
        return inp, out, cache_read, cache_write


def _unit(price: Price, count: int, total_input: int, per: Decimal) -> Decimal:
    if price is None or not count:
        return _ZERO
    if isinstance(price, TieredPrices):
        rate = price.base
        for tier in reversed(price.tiers):
            if total_input > tier.start:
                rate = tier.price
                break
        price = rate
    return _CTX.divide(_CTX.multiply(price, count), per)


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
    def from_dict(
        cls, doc: dict[str, Any], *, version: str = "inline", origin: str = "overrides"
    ) -> "PriceOverrides":
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
            table = _Table(**prices, tiered=False)
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

    def __init__(self, overrides: PriceOverrides | str | os.PathLike[str] | None = None):
        if overrides is None:
            env = os.environ.get(PRICES_FILE_ENV, "").strip()
            overrides = env or None
        if overrides is not None and not isinstance(overrides, PriceOverrides):
            overrides = PriceOverrides.load(overrides)
        self.overrides: PriceOverrides | None = overrides
        self._models: dict[tuple[str | None, str], tuple[str, ModelInfo] | str] = {}
        self._tables: dict[int, tuple[ModelPrice, _Table]] = {}
        self._override_hits: dict[tuple[str | None, str], _Table | None] = {}

    def price(self, usage: TokenUsage, at_ns: int | None = None) -> Cost:
        """Cost of ``usage`` at the price in force at ``at_ns`` (ns since epoch; None: now).

        The response model (often a dated snapshot) is priced before the request model.
        Never raises: problems come back as an UNPRICED or INVALID_USAGE cost with ``error``.
        """
        models = [m for m in (usage.response_model, usage.request_model) if m]
        if not models:
            return self._unpriced(usage, None, "no model name on the span")
        if self.overrides is not None:
            for model in models:
                table = self._override(usage.provider, model)
                if table is not None:
                    return self._cost(
                        table, usage, PricingStatus.OVERRIDDEN, "overrides",
                        self.overrides.version, usage.provider, model,
                    )
        error = ""
        for model in models:
            found = self._model(usage.provider, model)
            if isinstance(found, str):
                error = found
                continue
            provider_id, info = found
            table = self._table(info, at_ns)
            return self._cost(
                table, usage, PricingStatus.PRICED, "genai-prices",
                _GENAI_PRICES_VERSION, provider_id, info.id,
            )
        return self._unpriced(usage, models[0], error)

    def _cost(self, table: _Table, usage: TokenUsage, status: PricingStatus,
              source: str, version: str, provider: str | None, model: str) -> Cost:
        try:
            inp, out, cr, cw = table.cost(usage)
        except ValueError as exc:
            return Cost(PricingStatus.INVALID_USAGE, source, version, provider, model, error=str(exc))
        total = _CTX.add(_CTX.add(inp, out), _CTX.add(cr, cw))
        return Cost(status, source, version, provider, model, inp, out, cr, cw, total)

    def _unpriced(self, usage: TokenUsage, model: str | None, error: str) -> Cost:
        return Cost(PricingStatus.UNPRICED, "genai-prices", _GENAI_PRICES_VERSION,
                    usage.provider, model, error=error)

    def _override(self, provider: str | None, model: str) -> _Table | None:
        key = (provider, model)
        try:
            return self._override_hits[key]
        except KeyError:
            assert self.overrides is not None
            hit = self._override_hits[key] = self.overrides.match(provider, model)
            return hit

    def _model(self, provider: str | None, model: str) -> tuple[str, ModelInfo] | str:
        key = (provider, model)
        try:
            return self._models[key]
        except KeyError:
            pass
        provider_id = None
        if provider is not None:
            provider_id = _PROVIDER_IDS.get(provider.lower(), provider)
        try:
            prov, info = get_snapshot().find_provider_model(model, None, provider_id, None)
            found: tuple[str, ModelInfo] | str = (prov.id, info)
        except LookupError as exc:
            found = str(exc)
        except Exception as exc:  # a price-database bug must not break the app
            found = f"price lookup failed: {type(exc).__name__}: {exc}"
        self._models[key] = found
        return found

    def _table(self, info: ModelInfo, at_ns: int | None) -> _Table:
        if isinstance(info.prices, ModelPrice):
            mp = info.prices  # no price history: skip the timestamp conversion
        else:
            at = datetime.now(timezone.utc) if at_ns is None else datetime.fromtimestamp(at_ns / 1e9, timezone.utc)
            mp = info.get_prices(at)
        cached = self._tables.get(id(mp))
        if cached is not None and cached[0] is mp:
            return cached[1]
        table = _Table.of(mp)
        self._tables[id(mp)] = (mp, table)
        return table
