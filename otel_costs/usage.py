"""Reading a span's usage: normalised token counts (:class:`TokenUsage`) from the
attributes of any convention in :mod:`conventions`, with what it tells of how the call was
served (tier, batch, web searches, modalities, a provider's billed cost).

The processor (SDK side) and the collector's span→row mapping both read usage through
:func:`read_usage`, so a span is understood the same way whichever side prices it. Input is
normalised to include cached tokens (see :mod:`conventions` for why that is the hard part).

Pure functions over a ``Mapping[str, value]``; no I/O, thread-safe.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Mapping, NamedTuple

from .conventions import (
    COST_AMOUNT,
    COST_AMOUNT_CURRENCY,
    COST_AMOUNT_SOURCE,
    MAX_TOKENS,
    MAX_WEB_SEARCHES,
    METADATA_JSON,
    PROVIDER_COST,
    SERVICE_TIER_NAMES,
    USAGE_AUDIO_INPUT,
    USAGE_AUDIO_OUTPUT,
    USAGE_BATCH,
    USAGE_CACHE_WRITE_1H,
    USAGE_EXTRA_NAMES,
    USAGE_IMAGE_INPUT,
    USAGE_SERVICE_TIER,
    USAGE_WEB_SEARCHES,
    InputCache,
    detect,
    exclusive_provider,
)

__all__ = [
    "MAX_PROVIDER_COST",
    "Provenance",
    "TokenUsage",
    "UsageError",
    "billed_usd",
    "fact_attributes",
    "has_facts",
    "read_usage",
    "with_facts",
]


class Provenance(Enum):
    """Where a span's input-vs-cache meaning came from."""

    INCLUSIVE = "inclusive"
    EXCLUSIVE = "exclusive"
    EXCLUSIVE_INFERRED = "exclusive_inferred"  # said inclusive, but cache > input


class UsageError(ValueError):
    """A span's usage attributes cannot be read as token counts (wrong type, negative, …)."""


class TokenUsage(NamedTuple):
    """Token usage of one call, normalised: ``input_tokens`` includes cache reads/writes,
    ``output_tokens`` includes reasoning. Counts are non-negative ints."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    convention: str
    input_semantics: Provenance
    provider: str | None
    request_model: str | None
    response_model: str | None
    operation: str | None
    #: Cache writes kept for an hour (Anthropic), priced at their own rate: part of ``cache_write_tokens``.
    cache_write_1h_tokens: int = 0
    #: Web searches the provider ran (and bills) for the call.
    web_searches: int = 0
    #: The service tier the provider says it served (``flex``, ``priority``, ``batch``, …), as reported.
    service_tier: str | None = None
    #: Made through the provider's batch API.
    batch: bool = False
    #: What the provider says it billed for the call, in USD (OpenRouter's ``usage.cost``, a
    #: gateway's cost field): the cost counted, beside our list-price estimate.
    provider_cost: Decimal | None = None
    #: Tokens of other modalities, parts of ``input_tokens`` / ``output_tokens``, priced at
    #: their own rates where the model has them.
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_audio_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens


# The names that say a fact beyond the tokens. The PR #443 triple says one only with source
# "provider": every span our SDK priced carries it with source "local".
_EXTRA_TRIGGERS = USAGE_EXTRA_NAMES - {COST_AMOUNT, COST_AMOUNT_CURRENCY, COST_AMOUNT_SOURCE}


def read_usage(attributes: Mapping[str, Any]) -> TokenUsage | None:
    """Read normalised token usage from span attributes.

    Returns None when the span carries no GenAI usage. Raises :class:`UsageError` when it
    does but a count is not a non-negative integer within :data:`MAX_TOKENS` (strings,
    booleans, NaN, fractions, negatives, absurd sizes) or the parts exceed the whole.
    """
    conv = detect(attributes)
    if conv is None:
        return None
    provider = _first_str(attributes, conv.provider)
    # Inlined: this runs once per GenAI span and function calls dominate its cost.
    get = attributes.get
    counts = [0, 0, 0, 0, 0]
    for i, names in enumerate((conv.input, conv.output, conv.cache_read, conv.cache_write, conv.reasoning)):
        for name in names:
            value = get(name)
            if value is not None:
                if type(value) is int and 0 <= value <= MAX_TOKENS:
                    counts[i] = value
                else:
                    counts[i] = _as_count(name, value)
                break
    input_tokens, output_tokens, cache_read, cache_write, reasoning = counts

    cache = cache_read + cache_write
    mode = conv.input_cache
    if mode is InputCache.BY_PROVIDER:
        exclusive = provider is not None and exclusive_provider(provider)
        mode = InputCache.EXCLUSIVE if exclusive else InputCache.INCLUSIVE
    if mode is InputCache.EXCLUSIVE:
        semantics = Provenance.EXCLUSIVE
        input_tokens += cache
    elif cache > input_tokens:
        semantics = Provenance.EXCLUSIVE_INFERRED
        input_tokens += cache
    else:
        semantics = Provenance.INCLUSIVE
    if input_tokens > MAX_TOKENS:
        raise UsageError(f"input tokens {input_tokens} exceed {MAX_TOKENS}")
    if reasoning > output_tokens:
        # Reasoning is part of output in every convention we read; a larger value means
        # the instrumentation reported it beside output (as Gemini's API does).
        output_tokens += reasoning
    # Units beyond tokens, and how the call was served: the same names whichever convention
    # carries the tokens. Absent on most spans, so looked up only when one is there.
    cache_write_1h = web_searches = 0
    tier, batch, provider_cost = None, False, None
    audio_in = image_in = audio_out = 0
    if not _EXTRA_TRIGGERS.isdisjoint(attributes) or attributes.get(COST_AMOUNT_SOURCE) == "provider":
        cache_write_1h = _count_of(attributes, USAGE_CACHE_WRITE_1H)
        if cache_write_1h > cache_write:
            raise UsageError(
                f"{USAGE_CACHE_WRITE_1H}: {cache_write_1h} one-hour cache writes exceed the {cache_write} cache writes"
            )
        web_searches = _searches(USAGE_WEB_SEARCHES, get(USAGE_WEB_SEARCHES))
        tier = _first_str(attributes, SERVICE_TIER_NAMES)
        flag = get(USAGE_BATCH)
        if flag is not None and not isinstance(flag, bool):
            raise UsageError(f"{USAGE_BATCH}: expected a boolean, got {_short(flag)}")
        batch = bool(flag)
        provider_cost = _provider_cost(attributes)
        audio_in = _count_of(attributes, USAGE_AUDIO_INPUT)
        image_in = _count_of(attributes, USAGE_IMAGE_INPUT)
        audio_out = _count_of(attributes, USAGE_AUDIO_OUTPUT)
        if audio_in + image_in > input_tokens or audio_out > output_tokens:
            raise UsageError(
                f"audio and image tokens ({audio_in} + {image_in} in, {audio_out} out) exceed the "
                f"input ({input_tokens}) or output ({output_tokens}) tokens they are part of"
            )
    if not web_searches and conv.name == "openinference":
        web_searches = _openinference_web_searches(attributes)
    return TokenUsage(
        input_tokens,
        output_tokens,
        cache_read,
        cache_write,
        reasoning,
        conv.name,
        semantics,
        provider,
        _first_str(attributes, conv.request_model),
        _first_str(attributes, conv.response_model),
        _first_str(attributes, conv.operation),
        cache_write_1h,
        web_searches,
        tier,
        batch,
        provider_cost,
        audio_in,
        image_in,
        audio_out,
    )


#: The billed facts of a call beyond its token counts (:class:`TokenUsage` fields), with the
#: value that means "not said".
_FACTS: tuple[tuple[str, Any], ...] = (
    ("cache_write_1h_tokens", 0),
    ("web_searches", 0),
    ("service_tier", None),
    ("batch", False),
    ("provider_cost", None),
    ("input_audio_tokens", 0),
    ("input_image_tokens", 0),
    ("output_audio_tokens", 0),
)


_UNSAID = tuple(unsaid for _, unsaid in _FACTS)
_FIRST_FACT = TokenUsage._fields.index(_FACTS[0][0])
assert TokenUsage._fields[_FIRST_FACT:] == tuple(name for name, _ in _FACTS)


def has_facts(usage: TokenUsage) -> bool:
    """Whether ``usage`` says any billed fact beyond its token counts (:func:`with_facts`)."""
    return usage[_FIRST_FACT:] != _UNSAID


def with_facts(usage: TokenUsage, other: TokenUsage) -> TokenUsage:
    """``usage`` with the billed facts that ``other`` — another span of the same call — says
    and ``usage`` does not: the served tier, the batch API, web searches, one-hour cache
    writes, modalities, the provider's cost. A fact both say keeps ``usage``'s value; token
    counts are ``usage``'s (the spans of one call agree on them). Returns ``usage`` itself
    when ``other`` adds nothing. A fact that would not fit ``usage``'s tokens (more one-hour
    cache writes than cache writes, more audio than input) is left out. Pure."""
    changes = {}
    for name, unsaid in _FACTS:
        mine, theirs = getattr(usage, name), getattr(other, name)
        if mine == unsaid and theirs != unsaid:
            changes[name] = theirs
    if not changes:
        return usage
    merged = usage._replace(**changes)
    if merged.cache_write_1h_tokens > merged.cache_write_tokens:
        merged = merged._replace(cache_write_1h_tokens=usage.cache_write_1h_tokens)
    if merged.input_audio_tokens + merged.input_image_tokens > merged.input_tokens:
        merged = merged._replace(
            input_audio_tokens=usage.input_audio_tokens, input_image_tokens=usage.input_image_tokens
        )
    if merged.output_audio_tokens > merged.output_tokens:
        merged = merged._replace(output_audio_tokens=usage.output_audio_tokens)
    return merged if merged != usage else usage


def fact_attributes(usage: TokenUsage) -> dict[str, Any]:
    """The attributes (the names :func:`read_usage` reads) that say ``usage``'s billed facts
    beyond its token counts: what the SDK adds to the span that carries a call's cost when
    another span of the call said them (``with_facts``). Empty when there are none."""
    out: dict[str, Any] = {}
    if usage.cache_write_1h_tokens:
        out[USAGE_CACHE_WRITE_1H] = usage.cache_write_1h_tokens
    if usage.web_searches:
        out[USAGE_WEB_SEARCHES] = usage.web_searches
    if usage.service_tier is not None:
        out[USAGE_SERVICE_TIER] = usage.service_tier
    if usage.batch:
        out[USAGE_BATCH] = True
    if usage.provider_cost is not None:
        out[PROVIDER_COST] = str(usage.provider_cost)
    if usage.input_audio_tokens:
        out[USAGE_AUDIO_INPUT] = usage.input_audio_tokens
    if usage.input_image_tokens:
        out[USAGE_IMAGE_INPUT] = usage.input_image_tokens
    if usage.output_audio_tokens:
        out[USAGE_AUDIO_OUTPUT] = usage.output_audio_tokens
    return out


#: OpenInference metadata longer than this is not searched for server tool use.
MAX_METADATA_CHARS = 65_536


def _openinference_web_searches(attributes: Mapping[str, Any]) -> int:
    """OpenInference's Anthropic instrumentation keeps the response's ``usage.server_tool_use``
    in the span's metadata JSON (there is no semconv name): its web search requests. Parsed
    only when the text names it. Raises UsageError for a count that is not one."""
    metadata = attributes.get(METADATA_JSON)
    if type(metadata) is not str or len(metadata) > MAX_METADATA_CHARS or '"server_tool_use"' not in metadata:
        return 0
    try:
        parsed = json.loads(metadata)
    except (ValueError, RecursionError):  # deeply nested JSON raises RecursionError
        return 0
    tools = parsed.get("server_tool_use") if isinstance(parsed, dict) else None
    raw = tools.get("web_search_requests") if isinstance(tools, dict) else None
    return _searches(f"{METADATA_JSON}.server_tool_use.web_search_requests", raw)


def _searches(name: str, value: Any) -> int:
    if value is None:
        return 0
    searches = _as_count(name, value)
    if searches > MAX_WEB_SEARCHES:
        raise UsageError(f"{name}: {searches} searches in one call exceed {MAX_WEB_SEARCHES}")
    return searches


#: A provider cost above this for one call is taken for corrupt, not billed.
MAX_PROVIDER_COST = Decimal(100_000)


def _provider_cost(attributes: Mapping[str, Any]) -> Decimal | None:
    """The cost the provider reported, in USD: ``otel_costs.cost.provider`` (exact), or the
    PR #443 triple with ``source = provider``. None when the span carries none, or one in
    another currency (then it is priced here). Raises UsageError for an unreadable amount."""
    raw = attributes.get(PROVIDER_COST)
    name = PROVIDER_COST
    if raw is None:
        if attributes.get(COST_AMOUNT_SOURCE) != "provider":
            return None
        raw, name = attributes.get(COST_AMOUNT), COST_AMOUNT
        if attributes.get(COST_AMOUNT_CURRENCY, "USD") != "USD":
            return None
    return billed_usd(raw, name)


def billed_usd(raw: Any, name: str) -> Decimal:
    """A cost a provider billed, in USD, exactly: an int, a decimal string, or a float read
    as its shortest repr (what the provider wrote; costs have far fewer than 15 significant
    digits). The one reading of a billed amount, for spans, response bodies and headers, and
    ``record_usage``. Raises UsageError for anything but a cost from 0 to MAX_PROVIDER_COST."""
    if (
        isinstance(raw, bool)
        or not isinstance(raw, (int, float, str, Decimal))
        or (isinstance(raw, str) and len(raw) > 60)
    ):
        raise UsageError(f"{name}: expected a number of USD, got {_short(raw)}")
    try:
        amount = Decimal(repr(raw) if isinstance(raw, float) else raw.strip() if isinstance(raw, str) else raw)
    except InvalidOperation:
        raise UsageError(f"{name}: {_short(raw)} is not a number") from None
    if not amount.is_finite() or not 0 <= amount <= MAX_PROVIDER_COST:
        raise UsageError(
            f"{name}: {_short(raw)} is not a cost between 0 and {MAX_PROVIDER_COST} USD (outside what one call costs)"
        )
    return amount


def _count_of(attributes: Mapping[str, Any], name: str) -> int:
    value = attributes.get(name)
    return 0 if value is None else _as_count(name, value)


def _first_str(attributes: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = attributes.get(name)
        if type(value) is str:
            value = value.strip()
            if value:
                return value
    return None


def _as_count(name: str, value: Any) -> int:
    # bool is an int subclass; True tokens is a bug upstream, not a count.
    if isinstance(value, bool):
        raise UsageError(f"{name}: expected an integer token count, got a boolean")
    if isinstance(value, int):
        count = value
    elif isinstance(value, float):
        # JS SDKs send every number as a double; an integral double is a fine count.
        if not math.isfinite(value) or not value.is_integer():
            raise UsageError(f"{name}: expected an integer token count, got {value!r}")
        count = int(value)
    else:
        raise UsageError(f"{name}: expected an integer token count, got {type(value).__name__} {_short(value)}")
    if count < 0:
        raise UsageError(f"{name}: token count {count} is negative")
    if count > MAX_TOKENS:
        raise UsageError(f"{name}: token count {count} exceeds {MAX_TOKENS}")
    return count


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
