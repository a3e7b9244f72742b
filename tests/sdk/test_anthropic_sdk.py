"""The anthropic Python SDK 2.x traces its own calls: its spans are costed with every billed
part, cache writes included (it names them ``gen_ai.usage.cache_write.input_tokens``),
against a loopback fake of the Anthropic Messages API."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from .test_httpx_hooks import ANTHROPIC_USAGE, LLMServer, serving

anthropic = pytest.importorskip("anthropic")


class Messages(LLMServer):
    """LLMServer, with streams framed event for event as the Messages API sends them (the
    SDK's stream accumulator reads every field); served as LLMServer's headers say."""

    def _stream(self, path, request, mode):
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**self._anthropic_usage(), "output_tokens": 1},
        }
        events = [
            ("message_start", {"type": "message_start", "message": message}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            *[
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}},
                )
            ]
            * 5,
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {
                        "output_tokens": ANTHROPIC_USAGE["output_tokens"],
                        **self._anthropic_usage(only_tools=True),
                    },
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        body = b"".join(f"event: {name}\ndata: {json.dumps(doc)}\n\n".encode() for name, doc in events)
        self._send(200, body, "text/event-stream")


@pytest.fixture(scope="module")
def fake_anthropic():
    with serving(Messages) as url:
        yield url + "/anthropic"


def billed(web_searches: int = 0, price_context: dict | None = None) -> Decimal:
    """What a call the fake serves costs: priced as the response model it answers with.
    Anthropic's input_tokens leave out cache reads and writes; genai-prices' input includes them."""
    return calc_price(
        Usage(
            input_tokens=ANTHROPIC_USAGE["input_tokens"]
            + ANTHROPIC_USAGE["cache_read_input_tokens"]
            + ANTHROPIC_USAGE["cache_creation_input_tokens"],
            cache_read_tokens=ANTHROPIC_USAGE["cache_read_input_tokens"],
            cache_write_tokens=ANTHROPIC_USAGE["cache_creation_input_tokens"],
            output_tokens=ANTHROPIC_USAGE["output_tokens"],
            web_searches=web_searches,
        ),
        model_ref="claude-sonnet-4-5-20250929",
        provider_id="anthropic",
        price_context=price_context,
    ).total_price


CALL = billed()


def call(client, stream: bool) -> None:
    """One Messages call through the real client, read to its end."""
    kwargs = {"model": "claude-haiku-4-5", "max_tokens": 300, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        for _ in client.messages.create(stream=True, **kwargs):
            pass
    else:
        client.messages.create(**kwargs)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_the_sdks_own_spans_are_costed_with_cache_writes(traced, fake_anthropic, stream):
    client = anthropic.Anthropic(
        base_url=fake_anthropic, api_key="test", max_retries=0, open_telemetry={"tracer_provider": traced.provider}
    )
    call(client, stream)
    client.close()
    attrs = traced.only().attributes
    assert attrs["otel_costs.pricing.status"] == "priced"
    assert Decimal(attrs["otel_costs.cost.total"]) == CALL
    assert Decimal(attrs["otel_costs.cost.cache_write"]) > 0  # billed at the cache-write rate
