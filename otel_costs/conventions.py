"""Attribute names of every GenAI telemetry convention we read (the reader is
:mod:`usage`), and the names otel_costs writes.

One table per convention, in one place: the processor (SDK side) and the collector's
span→row mapping both read usage through :func:`usage.read_usage`, so a span is understood
the same way whichever side prices it.

The hard part is cached input tokens. Conventions disagree on whether the input count
includes cache reads and writes:

* OTel GenAI semconv: ``gen_ai.usage.input_tokens`` SHOULD include cached tokens, and
  ``cache_read`` / ``cache_creation`` are parts of it.
* Provider APIs disagree: OpenAI's ``prompt_tokens`` include cached tokens, Anthropic's
  ``input_tokens`` does not (cache reads and writes are reported beside it).
* Instrumentations copy one or the other.

Each table therefore says how its input count relates to its cache counts
(:class:`InputCache`). We normalise to the semconv meaning (input *includes* cache), which
is also what genai-prices' ``Usage.input_tokens`` expects, so every token is priced once at
its own rate. Where a table says "inclusive" but the cache parts exceed the input, the only
consistent reading is "exclusive"; we use it and say so in ``usage.TokenUsage.input_semantics``.

Pure functions over a ``Mapping[str, value]``; no I/O, thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

__all__ = [
    "AGGREGATE_MARKS",
    "CONVENTIONS",
    "Convention",
    "InputCache",
    "MAX_TOKENS",
    "MAX_WEB_SEARCHES",
    "RESPONSE_ID_NAMES",
    "SERVICE_TIER_NAMES",
    "USAGE_SERVICE_TIER",
    "USAGE_ATTRIBUTE_NAMES",
    "USAGE_BATCH",
    "USAGE_CACHE_WRITE_1H",
    "USAGE_EXTRA_NAMES",
    "PROVIDER_COST",
    "USAGE_WEB_SEARCHES",
    "detect",
    "exclusive_provider",
    "is_aggregate",
    "response_id",
]

#: A token count above this is treated as corrupt, not billed (10^10 tokens would cost
#: tens of thousands of dollars in one call; real calls are below 10^7).
MAX_TOKENS = 10_000_000_000
#: Web searches above this in one call are taken for corrupt (at $10 a thousand, 10^10 would
#: bill $10^8; a call runs a handful).
MAX_WEB_SEARCHES = 10_000

#: The service tier the provider served, as instrumentations name it (first wins): GenAI
#: semconv, its earlier name, and ours (Anthropic's ``usage.service_tier``, ``record_usage``).
SERVICE_TIER_NAMES: tuple[str, ...] = (
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
    "otel_costs.usage.service_tier",
    "anthropic.response.service_tier",  # the anthropic SDK's own tracing (2.x)
)
#: Ours, of the names above: what the SDK writes for a tier it read elsewhere.
USAGE_SERVICE_TIER = SERVICE_TIER_NAMES[2]
#: True on a call made through the provider's batch API (``record_usage(batch=True)``).
USAGE_BATCH = "otel_costs.usage.batch"
#: Web searches run for the call (Anthropic ``server_tool_use.web_search_requests``, OpenAI
#: Responses ``web_search_call`` items).
USAGE_WEB_SEARCHES = "otel_costs.usage.web_searches"
#: One-hour cache writes (Anthropic ``cache_creation.ephemeral_1h_input_tokens``): a part of
#: the cache writes, priced at their own rate.
USAGE_CACHE_WRITE_1H = "otel_costs.usage.cache_write_1h_tokens"
#: Per-modality usage (GenAI semconv): parts of the input and output tokens.
USAGE_AUDIO_INPUT = "gen_ai.usage.audio.input_tokens"
USAGE_IMAGE_INPUT = "gen_ai.usage.image.input_tokens"
USAGE_AUDIO_OUTPUT = "gen_ai.usage.audio.output_tokens"
#: The cost the provider reported for the call, USD as an exact decimal string (OpenRouter's
#: ``usage.cost``); spans from elsewhere carry it as the PR #443 triple with source provider.
PROVIDER_COST = "otel_costs.cost.provider"
#: The PR #443 proposal's names, beside gen_ai.usage.cost: the amount (a double), its
#: currency, and whether we computed it ("local") or the provider reported it ("provider").
COST_AMOUNT = "gen_ai.usage.cost.amount"
COST_AMOUNT_CURRENCY = "gen_ai.usage.cost.currency"
COST_AMOUNT_SOURCE = "gen_ai.usage.cost.source"
#: Every name above: what a span may carry beside its convention's token counts.
USAGE_EXTRA_NAMES = frozenset(
    (
        *SERVICE_TIER_NAMES,
        USAGE_BATCH,
        USAGE_WEB_SEARCHES,
        USAGE_CACHE_WRITE_1H,
        USAGE_AUDIO_INPUT,
        USAGE_IMAGE_INPUT,
        USAGE_AUDIO_OUTPUT,
        PROVIDER_COST,
        COST_AMOUNT,
        COST_AMOUNT_CURRENCY,
        COST_AMOUNT_SOURCE,
    )
)


class InputCache(Enum):
    """How a convention's input-token count relates to its cache-token counts."""

    INCLUSIVE = "inclusive"  # input already counts cache reads/writes (semconv, OpenAI)
    EXCLUSIVE = "exclusive"  # cache reads/writes are reported beside input (Anthropic API)
    BY_PROVIDER = "by_provider"  # copied from the provider's API: see _EXCLUSIVE_PROVIDERS


# Providers whose API reports input tokens *without* cache reads/writes.
_EXCLUSIVE_PROVIDERS = frozenset({"anthropic"})


def exclusive_provider(provider: str) -> bool:
    """Whether a provider's API reports input tokens without its cache reads and writes
    ("anthropic", "anthropic.vertex": the family before the first dot)."""
    return provider.strip().lower().split(".", 1)[0] in _EXCLUSIVE_PROVIDERS


@dataclass(frozen=True)
class Convention:
    """Attribute names one instrumentation family writes. Each field lists names, first wins."""

    name: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    input_cache: InputCache
    cache_read: tuple[str, ...] = ()
    cache_write: tuple[str, ...] = ()
    reasoning: tuple[str, ...] = ()
    request_model: tuple[str, ...] = ()
    response_model: tuple[str, ...] = ()
    provider: tuple[str, ...] = ()
    operation: tuple[str, ...] = ()
    #: Names whose presence identifies this convention; defaults to input + output.
    signature: tuple[str, ...] = ()

    def detect_names(self) -> tuple[str, ...]:
        return self.signature or (self.input + self.output)

    def token_names(self) -> tuple[str, ...]:
        return self.input + self.output + self.cache_read + self.cache_write + self.reasoning


# OpenInference (Arize Phoenix): prompt counts include cache reads/writes.
OPENINFERENCE = Convention(
    name="openinference",
    input=("llm.token_count.prompt",),
    output=("llm.token_count.completion",),
    cache_read=("llm.token_count.prompt_details.cache_read",),
    cache_write=("llm.token_count.prompt_details.cache_write",),
    reasoning=("llm.token_count.completion_details.reasoning",),
    input_cache=InputCache.INCLUSIVE,
    request_model=("llm.model_name",),
    response_model=("llm.model_name",),
    provider=("llm.provider", "llm.system"),
    operation=("openinference.span.kind",),
)

# Vercel AI SDK v5 (inputTokens/cachedInputTokens) and <= v4 (promptTokens). Its usage
# object is copied from the provider API, so cache inclusion follows the provider.
VERCEL_AI = Convention(
    name="vercel_ai",
    input=("ai.usage.inputTokens", "ai.usage.promptTokens"),
    output=("ai.usage.outputTokens", "ai.usage.completionTokens"),
    cache_read=("ai.usage.cachedInputTokens",),
    reasoning=("ai.usage.reasoningTokens",),
    input_cache=InputCache.BY_PROVIDER,
    request_model=("gen_ai.request.model", "ai.model.id"),
    response_model=("gen_ai.response.model", "ai.response.model"),
    provider=("gen_ai.system", "ai.model.provider"),
    operation=("ai.operationId",),
)

# OpenLLMetry (Traceloop): underscore cache names and llm.usage.total_tokens; its input
# count includes cache reads/writes.
OPENLLMETRY = Convention(
    name="openllmetry",
    input=("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    output=("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    cache_read=("gen_ai.usage.cache_read_input_tokens",),
    cache_write=("gen_ai.usage.cache_creation_input_tokens",),
    reasoning=("gen_ai.usage.reasoning_tokens",),
    input_cache=InputCache.INCLUSIVE,
    request_model=("gen_ai.request.model",),
    response_model=("gen_ai.response.model",),
    provider=("gen_ai.provider.name", "gen_ai.system"),
    operation=("llm.request.type", "gen_ai.operation.name"),
    signature=(
        "llm.usage.total_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
    ),
)

# OpenLIT: semconv token names plus gen_ai.usage.reasoning_tokens (and its own float
# gen_ai.usage.cost, which we write too, so it must not identify OpenLIT); input counts are
# copied from the provider API.
OPENLIT = Convention(
    name="openlit",
    input=("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    output=("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    cache_read=("gen_ai.usage.cache_read.input_tokens",),
    cache_write=("gen_ai.usage.cache_creation.input_tokens",),
    reasoning=("gen_ai.usage.reasoning_tokens",),
    input_cache=InputCache.BY_PROVIDER,
    request_model=("gen_ai.request.model",),
    response_model=("gen_ai.response.model",),
    provider=("gen_ai.provider.name", "gen_ai.system"),
    operation=("gen_ai.operation.name",),
    signature=("gen_ai.usage.reasoning_tokens",),
)

# Current OTel GenAI semantic conventions (v1.37+): input includes cached tokens. The
# anthropic Python SDK 2.x's own tracing writes these names too, but cache writes as
# gen_ai.usage.cache_write.input_tokens (its input count includes them, as semconv says).
GENAI_SEMCONV = Convention(
    name="gen_ai",
    input=("gen_ai.usage.input_tokens",),
    output=("gen_ai.usage.output_tokens",),
    cache_read=("gen_ai.usage.cache_read.input_tokens",),
    cache_write=("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens"),
    reasoning=("gen_ai.usage.reasoning.output_tokens",),
    input_cache=InputCache.INCLUSIVE,
    request_model=("gen_ai.request.model",),
    response_model=("gen_ai.response.model",),
    provider=("gen_ai.provider.name", "gen_ai.system"),
    operation=("gen_ai.operation.name",),
)

# Older GenAI semconv (before v1.27): prompt/completion names, gen_ai.system.
GENAI_SEMCONV_LEGACY = Convention(
    name="gen_ai_legacy",
    input=("gen_ai.usage.prompt_tokens",),
    output=("gen_ai.usage.completion_tokens",),
    input_cache=InputCache.INCLUSIVE,
    request_model=("gen_ai.request.model",),
    response_model=("gen_ai.response.model",),
    provider=("gen_ai.system", "gen_ai.provider.name"),
    operation=("gen_ai.operation.name",),
)

#: Tried in this order; the first whose identifying names are present reads the span.
CONVENTIONS: tuple[Convention, ...] = (
    OPENINFERENCE,
    VERCEL_AI,
    OPENLLMETRY,
    OPENLIT,
    GENAI_SEMCONV,
    GENAI_SEMCONV_LEGACY,
)

# Identifying name → priority of the first convention it identifies.
_DETECT: dict[str, int] = {}
for _i, _conv in enumerate(CONVENTIONS):
    for _name in _conv.detect_names():
        _DETECT.setdefault(_name, _i)

# Instrumentations write a count only when it is not zero (the semconv instrumentations and
# the anthropic SDK leave cache and reasoning counts out; a call served wholly from cache
# may have no input count): a span with only its cache or reasoning counts still carries
# usage, and every count it leaves out is zero. Looked up only when no name above is present.
_DETECT_PARTS: dict[str, int] = {}
for _i, _conv in enumerate(CONVENTIONS):
    for _name in _conv.cache_read + _conv.cache_write + _conv.reasoning:
        if _name not in _DETECT:
            _DETECT_PARTS[_name] = _i  # the last that has it: semconv's names read as semconv

#: Every attribute name that marks a span as carrying GenAI usage (a cheap pre-check).
USAGE_ATTRIBUTE_NAMES: frozenset[str] = frozenset(_DETECT) | frozenset(_DETECT_PARTS)


def detect(attributes: Mapping[str, Any]) -> Convention | None:
    """The convention a span's attributes follow, or None for a span without GenAI usage."""
    # One pass over the span's keys (usually ~10) beats probing every convention's names.
    best = len(CONVENTIONS)
    for name in attributes:
        i = _DETECT.get(name, best)
        if i < best:
            best = i
    if best == len(CONVENTIONS):
        for name in attributes:
            i = _DETECT_PARTS.get(name, best)
            if i < best:
                best = i
    return CONVENTIONS[best] if best < len(CONVENTIONS) else None


# Spans that are not one provider call by their convention, though they may carry usage
# (the sum of the calls below them): agents, workflows, chains, tools, and the Vercel AI
# SDK's outer spans (its calls are the inner ``….doGenerate`` / ``….doStream`` spans).
# attribute name → the values that mark an aggregate.
AGGREGATE_MARKS: dict[str, frozenset[str]] = {
    # invoke_workflow: semantic-conventions-genai 0.1 (the invoke_agent internal span of a
    # workflow); plan: an agent's planning step.
    "gen_ai.operation.name": frozenset({"invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "plan"}),
    "openinference.span.kind": frozenset({"AGENT", "CHAIN", "TOOL"}),
    "traceloop.span.kind": frozenset({"workflow", "task", "agent", "tool"}),
    "ai.operationId": frozenset({"ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject"}),
}


#: Where instrumentations record the provider's id of a response ("msg_…", "chatcmpl-…"):
#: one call, one id, whichever instrumentations saw it.
RESPONSE_ID_NAMES: tuple[str, ...] = ("gen_ai.response.id", "ai.response.id")


def response_id(attributes: Mapping[str, Any]) -> str:
    """The provider's id of the response a span records ("" when none, or an odd value)."""
    for name in RESPONSE_ID_NAMES:
        value = attributes.get(name)
        if isinstance(value, str) and 0 < len(value) <= 256:
            return value
    return ""


def is_aggregate(attributes: Mapping[str, Any]) -> bool:
    """Whether a span's convention says it stands for more than one provider call (or for
    none of its own): its usage, if any, is the sum of other spans' and is never billed."""
    get = attributes.get
    for name, values in _AGGREGATE_ITEMS:
        value = get(name)
        if value is not None and value in values:
            return True
    return False


_AGGREGATE_ITEMS = tuple(AGGREGATE_MARKS.items())


# What otel_costs writes onto a priced span (documented in docs/sdk.md). Money is written
# as exact decimal strings; gen_ai.usage.cost is the de-facto float others read.
COST_TOTAL_FLOAT = "gen_ai.usage.cost"
COST_TOTAL = "otel_costs.cost.total"
COST_INPUT = "otel_costs.cost.input"
COST_OUTPUT = "otel_costs.cost.output"
COST_CACHE_READ = "otel_costs.cost.cache_read"
COST_CACHE_WRITE = "otel_costs.cost.cache_write"
COST_CURRENCY = "otel_costs.cost.currency"
PRICING_STATUS = "otel_costs.pricing.status"
PRICING_SOURCE = "otel_costs.pricing.source"  # "genai-prices 0.2.3", "overrides sha256:…"
PRICING_MODEL = "otel_costs.pricing.model"  # the price-database model id that was used
PRICING_ERROR = "otel_costs.pricing.error"
# On an HTTP client span whose LLM response body is read after the span ended: "pending"
# until the body is read (never exported with that value).
HTTP_BODY = "otel_costs.http.body"
# On a span whose cost another span carries: that span's id (16 hex digits).
COUNTED_ON = "otel_costs.cost.counted_on"
COST_WEB_SEARCH = "otel_costs.cost.web_search"  # the provider's per-search fee, USD
# The service tier the provider served, as priced: "flex", "priority", "batch", … (absent:
# standard; a tier with no price of its own is priced standard, the reason in PRICING_ERROR).
PRICING_TIER = "otel_costs.pricing.tier"
# With a provider's cost, the difference between it and our list-price estimate (USD, may be
# negative): the cost parts plus this make the total.
COST_ADJUSTMENT = "otel_costs.cost.adjustment"
#: The cost parts written on a priced span, the total last: the parts add up to it (absent
#: parts are zero). The collector keeps them as its cost columns, in this order.
COST_PARTS = (
    COST_INPUT,
    COST_OUTPUT,
    COST_CACHE_READ,
    COST_CACHE_WRITE,
    COST_WEB_SEARCH,
    COST_ADJUSTMENT,
    COST_TOTAL,
)


# Attribution as other tools write it, read by the collector for spans that did not come
# through attribute_to (other languages, Langfuse or OpenLLMetry users). First name wins;
# our own keys come first. Span attributes are read before resource attributes.
ATTRIBUTION_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": (
        "user.id",  # ours and OpenInference
        "enduser.id",  # OTel semconv
        "enduser.pseudo.id",  # OTel semconv: a pseudonymous id
        "langfuse.user.id",
        "traceloop.association.properties.user_id",
        "ai.telemetry.metadata.userId",  # Vercel AI SDK <= 6 telemetry metadata
        "ai.settings.context.userId",  # Vercel AI SDK 7 runtimeContext
    ),
    "tenant_id": (
        "tenant.id",
        "langfuse.trace.metadata.tenant_id",
        "traceloop.association.properties.tenant_id",
        "ai.telemetry.metadata.tenantId",
        "ai.settings.context.tenantId",
    ),
    "feature": (
        "feature.name",
        "langfuse.trace.name",
        "traceloop.association.properties.feature",
        "traceloop.workflow.name",
        "ai.telemetry.metadata.feature",
        "ai.settings.context.feature",
    ),
}
#: What the call is for, as instrumentations name it: the feature when no name in
#: ``ATTRIBUTION_ALIASES["feature"]`` is set on the span or its resource.
FEATURE_FALLBACKS: tuple[str, ...] = (
    "ai.telemetry.functionId",  # Vercel AI SDK <= 6 (and 7's LegacyOpenTelemetry)
    "gen_ai.agent.name",  # GenAI semconv; Vercel AI SDK 7 puts functionId here
)
#: Prefixes whose entries become free tags (prefix stripped), but for ATTRIBUTION_KEYS.
TAG_PREFIXES: tuple[str, ...] = (
    "otel_costs.tag.",
    "traceloop.association.properties.",
    "ai.telemetry.metadata.",
    "ai.settings.context.",
)
#: Keys under a tag prefix that are the attribution (read through ATTRIBUTION_ALIASES), not tags.
ATTRIBUTION_KEYS: frozenset[str] = frozenset({"user_id", "tenant_id", "feature", "userId", "tenantId"})
#: OpenInference keeps free-form metadata as one JSON object string.
METADATA_JSON = "metadata"
