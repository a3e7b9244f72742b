"""Reading usage from each convention, cached-token semantics, and malformed values."""

from __future__ import annotations

import json
import math

import pytest

from otel_costs import conventions as cv
from otel_costs.usage import Provenance, UsageError, read_usage


def usage_of(attrs):
    u = read_usage(attrs)
    assert u is not None
    return (
        u.convention,
        u.input_tokens,
        u.output_tokens,
        u.cache_read_tokens,
        u.cache_write_tokens,
        u.reasoning_tokens,
        u.input_semantics,
    )


CASES = [
    # Current semconv: input includes cache reads and writes.
    (
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 50,
            "gen_ai.usage.cache_read.input_tokens": 800,
            "gen_ai.usage.reasoning.output_tokens": 20,
        },
        ("gen_ai", 1000, 50, 800, 0, 20, Provenance.INCLUSIVE),
    ),
    # Semconv names, Anthropic, instrumentation that followed the spec (inclusive).
    (
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.usage.input_tokens": 1500,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_creation.input_tokens": 400,
        },
        ("gen_ai", 1500, 10, 1000, 400, 0, Provenance.INCLUSIVE),
    ),
    # Semconv names but Anthropic's raw input (cache beside it): only reading that fits.
    (
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 5000,
        },
        ("gen_ai", 5012, 10, 5000, 0, 0, Provenance.EXCLUSIVE_INFERRED),
    ),
    # Legacy semconv names.
    (
        {"gen_ai.system": "openai", "gen_ai.usage.prompt_tokens": 70, "gen_ai.usage.completion_tokens": 30},
        ("gen_ai_legacy", 70, 30, 0, 0, 0, Provenance.INCLUSIVE),
    ),
    # OpenInference: prompt includes cache details.
    (
        {
            "llm.provider": "anthropic",
            "llm.model_name": "claude-3-5-haiku-latest",
            "llm.token_count.prompt": 900,
            "llm.token_count.completion": 40,
            "llm.token_count.prompt_details.cache_read": 600,
            "llm.token_count.prompt_details.cache_write": 200,
            "llm.token_count.completion_details.reasoning": 5,
        },
        ("openinference", 900, 40, 600, 200, 5, Provenance.INCLUSIVE),
    ),
    # OpenLLMetry: underscore cache names, inclusive input.
    (
        {
            "gen_ai.system": "Anthropic",
            "gen_ai.usage.input_tokens": 300,
            "gen_ai.usage.output_tokens": 9,
            "gen_ai.usage.cache_read_input_tokens": 200,
            "gen_ai.usage.cache_creation_input_tokens": 50,
            "llm.usage.total_tokens": 309,
        },
        ("openllmetry", 300, 9, 200, 50, 0, Provenance.INCLUSIVE),
    ),
    # OpenLIT, OpenAI: input copied from the API, which includes cached tokens.
    (
        {
            "gen_ai.system": "openai",
            "gen_ai.usage.input_tokens": 400,
            "gen_ai.usage.output_tokens": 100,
            "gen_ai.usage.reasoning_tokens": 60,
            "gen_ai.usage.cache_read.input_tokens": 128,
        },
        ("openlit", 400, 100, 128, 0, 60, Provenance.INCLUSIVE),
    ),
    # OpenLIT, Anthropic: input copied from the API, which excludes cached tokens.
    (
        {
            "gen_ai.system": "anthropic",
            "gen_ai.usage.input_tokens": 400,
            "gen_ai.usage.output_tokens": 100,
            "gen_ai.usage.reasoning_tokens": 0,
            "gen_ai.usage.cache_read.input_tokens": 128,
        },
        ("openlit", 528, 100, 128, 0, 0, Provenance.EXCLUSIVE),
    ),
    # Vercel AI SDK v5, OpenAI: inputTokens include cachedInputTokens.
    (
        {
            "ai.model.provider": "openai.chat",
            "ai.model.id": "gpt-4o",
            "ai.usage.inputTokens": 500,
            "ai.usage.outputTokens": 20,
            "ai.usage.cachedInputTokens": 256,
            "ai.usage.reasoningTokens": 0,
        },
        ("vercel_ai", 500, 20, 256, 0, 0, Provenance.INCLUSIVE),
    ),
    # Vercel AI SDK v5, Anthropic: inputTokens exclude cachedInputTokens.
    (
        {
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-sonnet-4-5",
            "ai.usage.inputTokens": 40,
            "ai.usage.outputTokens": 20,
            "ai.usage.cachedInputTokens": 3000,
        },
        ("vercel_ai", 3040, 20, 3000, 0, 0, Provenance.EXCLUSIVE),
    ),
    # Vercel AI SDK v4 names (JS sends doubles: integral floats are fine).
    (
        {"ai.model.provider": "openai.chat", "ai.usage.promptTokens": 11.0, "ai.usage.completionTokens": 7.0},
        ("vercel_ai", 11, 7, 0, 0, 0, Provenance.INCLUSIVE),
    ),
]


@pytest.mark.parametrize(
    "attrs, expected",
    CASES,
    ids=[
        "semconv-openai",
        "semconv-anthropic-inclusive",
        "semconv-anthropic-raw",
        "legacy",
        "openinference",
        "openllmetry",
        "openlit-openai",
        "openlit-anthropic",
        "vercel-openai",
        "vercel-anthropic",
        "vercel-v4",
    ],
)
def test_each_convention_normalises_to_inclusive_input(attrs, expected):
    assert usage_of(attrs) == expected


@pytest.mark.parametrize("index", range(11))
def test_reading_a_priced_span_gives_the_same_usage(traced, index):
    """The collector re-reads spans the SDK priced: our attributes must not change the reading."""
    attrs = CASES[index][0]
    span = traced.span_with(attrs)
    assert "otel_costs.pricing.status" in span.attributes
    assert read_usage(span.attributes)[:7] == read_usage(attrs)[:7]


def test_models_and_provider_are_read():
    u = read_usage(
        {
            "gen_ai.provider.name": " openai ",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 1,
            "gen_ai.usage.output_tokens": 1,
        }
    )
    assert (u.provider, u.request_model, u.response_model, u.operation) == (
        "openai",
        "gpt-4o",
        "gpt-4o-2024-08-06",
        "chat",
    )


@pytest.mark.parametrize(
    ("attrs", "convention", "counts"),
    [
        # a call served wholly from cache: the semconv instrumentations leave the zero input out
        ({"gen_ai.usage.cache_read.input_tokens": 900}, "gen_ai", (900, 0, 900, 0, 0)),
        ({"gen_ai.usage.cache_write.input_tokens": 300}, "gen_ai", (300, 0, 0, 300, 0)),
        ({"gen_ai.usage.reasoning.output_tokens": 40}, "gen_ai", (0, 40, 0, 0, 40)),
        ({"llm.token_count.prompt_details.cache_read": 900}, "openinference", (900, 0, 900, 0, 0)),
        ({"ai.usage.cachedInputTokens": 900}, "vercel_ai", (900, 0, 900, 0, 0)),
        # and the counts it leaves out beside the ones it writes are zero
        ({"gen_ai.usage.output_tokens": 7}, "gen_ai", (0, 7, 0, 0, 0)),
    ],
)
def test_counts_left_out_are_zero(attrs, convention, counts):
    usage = read_usage({"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", **attrs})
    assert usage is not None and usage.convention == convention
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    ) == counts
    assert not cv.USAGE_ATTRIBUTE_NAMES.isdisjoint(attrs)


@pytest.mark.parametrize("attrs", [{}, {"http.request.method": "GET"}, {"gen_ai.request.model": "gpt-4o"}])
def test_spans_without_usage_are_not_genai(attrs):
    assert read_usage(attrs) is None
    assert cv.USAGE_ATTRIBUTE_NAMES.isdisjoint(attrs)


@pytest.mark.parametrize(
    "value, message",
    [
        ("1200", "got str"),
        (-5, "negative"),
        (math.nan, "expected an integer"),
        (math.inf, "expected an integer"),
        (12.5, "expected an integer"),
        (True, "boolean"),
        (cv.MAX_TOKENS + 1, "exceeds"),
        (2**70, "exceeds"),
        ((1, 2), "got tuple"),
    ],
)
def test_malformed_counts_raise_usage_error(value, message):
    with pytest.raises(UsageError, match=message):
        read_usage({"gen_ai.usage.input_tokens": value, "gen_ai.usage.output_tokens": 1})


def test_every_detect_name_belongs_to_a_convention_table():
    names = {n for c in cv.CONVENTIONS for n in c.detect_names()}
    parts = {n for c in cv.CONVENTIONS for n in c.cache_read + c.cache_write + c.reasoning}
    assert names | parts == cv.USAGE_ATTRIBUTE_NAMES
    for conv in cv.CONVENTIONS:
        assert set(conv.detect_names()) <= set(conv.token_names()) | {"gen_ai.usage.cost", "llm.usage.total_tokens"}


OPENINFERENCE = {"llm.provider": "anthropic", "llm.token_count.prompt": 3600, "llm.token_count.completion": 250}


@pytest.mark.parametrize(
    ("metadata", "searches"),
    [
        # as OpenInference's Anthropic instrumentation writes the response's server tool use
        ('{"server_tool_use": {"web_search_requests": 2}, "tenant": "acme"}', 2),
        ('{"server_tool_use": {"web_fetch_requests": 1}}', 0),
        ('{"tenant": "acme"}', 0),
        ('{"server_tool_use": ', 0),  # cut short: not a count, the tokens still priced
        ('[{"server_tool_use": {"web_search_requests": 2}}]', 0),
        (None, 0),
    ],
)
def test_openinference_metadata_gives_web_searches(metadata, searches):
    attrs = dict(OPENINFERENCE) if metadata is None else {**OPENINFERENCE, cv.METADATA_JSON: metadata}
    usage = read_usage(attrs)
    assert usage is not None and usage.convention == "openinference"
    assert (usage.web_searches, usage.input_tokens) == (searches, 3600)


@pytest.mark.parametrize(
    ("count", "message"),
    [("2", "got str"), (-1, "negative"), (cv.MAX_WEB_SEARCHES + 1, "exceed")],
)
def test_openinference_metadata_with_a_bad_search_count_is_a_usage_error(count, message):
    metadata = '{"server_tool_use": {"web_search_requests": %s}}' % json.dumps(count)
    with pytest.raises(UsageError, match=message):
        read_usage({**OPENINFERENCE, cv.METADATA_JSON: metadata})


BASE = {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5"}
TOKENS = {"gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 100}


@pytest.mark.parametrize(
    ("mine", "theirs", "merged"),
    [
        ({}, {"otel_costs.usage.web_searches": 2}, {"web_searches": 2}),
        ({"otel_costs.usage.web_searches": 1}, {"otel_costs.usage.web_searches": 2}, {}),  # its own stays
        ({}, {"anthropic.response.service_tier": "batch"}, {"service_tier": "batch"}),
        ({}, {"otel_costs.usage.batch": True, "otel_costs.cost.provider": "0.0125"}, {"batch": True}),
        ({}, {"gen_ai.usage.audio.input_tokens": 40}, {"input_audio_tokens": 40}),
        # a fact that does not fit the counted span's tokens is left out
        ({}, {"gen_ai.usage.input_tokens": 2000, "gen_ai.usage.audio.input_tokens": 1500}, {}),
        ({}, {}, {}),
    ],
)
def test_with_facts_adds_what_the_other_span_says_and_fact_attributes_read_back(mine, theirs, merged):
    from otel_costs.usage import fact_attributes, with_facts

    first = read_usage({**BASE, **TOKENS, **mine})
    other = read_usage({**BASE, **TOKENS, **theirs})
    assert first is not None and other is not None
    out = with_facts(first, other)
    assert (out is first) == (not merged)
    assert {name: getattr(out, name) for name in merged} == merged
    assert out[:11] == first[:11]  # token counts and names stay the counted span's
    # what the SDK writes onto the counted span reads back as the merged usage
    assert read_usage({**BASE, **TOKENS, **mine, **fact_attributes(out)}) == out
