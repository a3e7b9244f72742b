"""Which LLM API a request URL calls (the providers' own bases, and the bases users name), and
the usage read from a response body, held against genai-prices' own ``extract_usage``."""

from __future__ import annotations

import pytest
from genai_prices import extract_usage

from otel_costs.llm_wire import Endpoint, match_endpoint, usage_attributes
from otel_costs.usage import read_usage

GATEWAY = "http://gateway:8080/anthropic"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.anthropic.com/v1/messages", Endpoint("anthropic", "messages")),
        ("https://api.openai.com/v1/chat/completions", Endpoint("openai", "chat")),
        ("https://api.openai.com/v1/responses?stream=true", Endpoint("openai", "responses")),
        # the anthropic SDK's base_url leaves /v1 out; a base with it is matched as well
        (GATEWAY + "/v1/messages", Endpoint("anthropic", "messages")),
        ("http://gateway:8080/v1/messages", Endpoint("anthropic", "messages")),
        (GATEWAY + "/v1/messages/count_tokens", None),
        (GATEWAY + "/v2/messages", None),
        ("https://api.anthropic.com/v1/models", None),
        ("https://example.com/v1/chat/completions", None),
    ],
)
def test_a_request_url_names_its_api(url, expected):
    assert match_endpoint(url, anthropic_compatible=[GATEWAY, "http://gateway:8080/v1"]) == expected


CHAT = {
    "model": "gpt-4o-mini-2024-07-18",
    "service_tier": "priority",
    "usage": {
        "prompt_tokens": 2000,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 50, "audio_tokens": 20},
    },
}
RESPONSES = {
    "model": "gpt-4o-2024-08-06",
    "output": [{"type": "web_search_call", "id": "ws1", "status": "completed"}, {"type": "message"}],
    "usage": {
        "input_tokens": 1500,
        "output_tokens": 200,
        "input_tokens_details": {"cached_tokens": 500},
        "output_tokens_details": {"reasoning_tokens": 30},
    },
}
EMBEDDINGS = {"model": "text-embedding-3-small", "usage": {"prompt_tokens": 800, "total_tokens": 800}}
MESSAGES = {
    "model": "claude-sonnet-4-5-20250929",
    "usage": {
        "input_tokens": 100,
        "cache_read_input_tokens": 3000,
        "cache_creation_input_tokens": 500,
        "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 200},
        "output_tokens": 250,
        "server_tool_use": {"web_search_requests": 3},
        "service_tier": "priority",
    },
}


@pytest.mark.parametrize(
    ("endpoint", "flavor", "body", "only_ours"),
    [
        (Endpoint("openai", "chat"), "chat", CHAT, {"service_tier": "priority"}),
        (Endpoint("openai", "responses"), "responses", RESPONSES, {"web_searches": 1}),
        (Endpoint("openai", "embeddings"), "embeddings", EMBEDDINGS, {}),
        (Endpoint("anthropic", "messages"), "default", MESSAGES, {"service_tier": "priority"}),
    ],
    ids=["chat", "responses", "embeddings", "messages"],
)
def test_the_usage_read_from_a_body_is_genai_prices_own_reading(endpoint, flavor, body, only_ours):
    """Every count genai-prices' extract_usage reads, ours reads the same. It is not used in
    the hooks: it needs the API flavour, raises LookupError for a model it does not know, does
    not read the served tier, Responses' web_search_call items or a gateway's cost, and is lax
    about counts that are not counts; what only ours reads is listed per case."""
    theirs = extract_usage(body, provider_id=endpoint.provider, api_flavor=flavor).usage
    ours = read_usage(usage_attributes(endpoint, body))
    assert ours is not None
    assert (
        ours.input_tokens,
        ours.output_tokens,
        ours.cache_read_tokens,
        ours.cache_write_tokens,
        ours.cache_write_1h_tokens,
        ours.reasoning_tokens,
        ours.input_audio_tokens,
        ours.output_audio_tokens,
    ) == (
        theirs.input_tokens,
        theirs.output_tokens or 0,
        theirs.cache_read_tokens or 0,
        theirs.cache_write_tokens or 0,
        theirs.cache_write_1h_tokens or 0,
        theirs.output_reasoning_tokens or 0,
        theirs.input_audio_tokens or 0,
        theirs.output_audio_tokens or 0,
    )
    assert ours.web_searches == only_ours.get("web_searches", theirs.web_searches or 0)
    assert ours.service_tier == only_ours.get("service_tier")
