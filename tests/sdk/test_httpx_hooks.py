"""LLM calls through plain httpx become costed GenAI spans: real httpx clients, the real
httpx instrumentation and processor, and a loopback server speaking the OpenAI and
Anthropic wire formats (whole bodies and server-sent events)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from genai_prices import Usage, calc_price
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costs import CostSpanProcessor, HttpxHooks, attribute_to, instrument_httpx

CHAT_USAGE = {
    "prompt_tokens": 2000,
    "completion_tokens": 300,
    "total_tokens": 2300,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 100},
}
RESPONSES_USAGE = {
    "input_tokens": 1500,
    "output_tokens": 200,
    "input_tokens_details": {"cached_tokens": 512},
    "output_tokens_details": {"reasoning_tokens": 50},
    "total_tokens": 1700,
}
ANTHROPIC_USAGE = {
    "input_tokens": 100,
    "cache_read_input_tokens": 3000,
    "cache_creation_input_tokens": 500,
    "output_tokens": 250,
}


def _price(provider, model, inp, out, cache_read=0, cache_write=0) -> Decimal:
    return calc_price(
        Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cache_read, cache_write_tokens=cache_write),
        model_ref=model,
        provider_id=provider,
    ).total_price


class LLMServer(BaseHTTPRequestHandler):
    """OpenAI (/v1/chat/completions, /v1/responses, /v1/embeddings) and Anthropic
    (/anthropic/v1/messages). ``x-test`` picks a misbehaviour; ``x-served-tier``,
    ``x-web-searches`` and ``x-cache-1h`` say how the provider served the call, in each API's
    own shape (OpenAI: the response's ``service_tier`` and Responses ``web_search_call``
    items; Anthropic: ``usage.service_tier``, ``server_tool_use``, ``cache_creation``)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        mode = self.headers.get("x-test", "")
        if mode == "error":
            return self._send(429, b'{"error": {"message": "rate limited"}}', "application/json")
        if mode == "garbage":
            return self._send(200, b"<html>not json</html>", "text/html")
        path = self.path
        self.tier = self.headers.get("x-served-tier")
        self.searches = int(self.headers.get("x-web-searches", 0))
        self.hour = int(self.headers.get("x-cache-1h", 0))
        self.billed = self.headers.get("x-billed-cost")  # OpenRouter's usage.cost
        if request.get("stream"):
            return self._stream(path, request, mode)
        if path.endswith("/chat/completions"):
            body = {
                "id": "c1",
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
                "usage": self._chat_usage(),
                **self._openai_tier(),
            }
        elif path.endswith("/responses"):
            body = {
                "id": "r1",
                "object": "response",
                "model": "gpt-4o-2024-08-06",
                "output": [
                    {"type": "web_search_call", "id": f"ws{i}", "status": "completed"} for i in range(self.searches)
                ]
                + [{"type": "message", "content": []}],
                "usage": RESPONSES_USAGE,
                **self._openai_tier(),
            }
        elif path.endswith("/embeddings"):
            body = {
                "object": "list",
                "data": [{"embedding": [0.1] * 1536, "index": i} for i in range(400)],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 800, "total_tokens": 800},
            }
        else:
            body = {
                "id": "m1",
                "type": "message",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "usage": self._anthropic_usage(),
            }
        data = json.dumps(body).encode()
        if mode == "gzip":
            return self._send(200, gzip.compress(data), "application/json", {"content-encoding": "gzip"})
        self._send(200, data, "application/json")

    def _stream(self, path, request, mode):
        if path.endswith("/messages"):
            events = [
                (
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "id": "m1",
                            "model": "claude-sonnet-4-5-20250929",
                            "usage": {**self._anthropic_usage(), "output_tokens": 1, "server_tool_use": None},
                        },
                    },
                ),
                *[("content_block_delta", {"type": "content_block_delta", "delta": {"text": "x" * 20}})] * 30,
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "usage": {"output_tokens": 250, **self._anthropic_usage(only_tools=True)},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ]
            chunks = [f"event: {name}\ndata: {json.dumps(doc)}\n\n".encode() for name, doc in events]
        else:
            include = (request.get("stream_options") or {}).get("include_usage")
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "delta": {"content": "token"}}],
                **self._openai_tier(),
            }
            chunks = [f"data: {json.dumps({**chunk, 'usage': None} if include else chunk)}\n\n".encode()] * 40
            if include:
                chunks.append(f"data: {json.dumps({**chunk, 'choices': [], 'usage': self._chat_usage()})}\n\n".encode())
            chunks.append(b"data: [DONE]\n\n")
        if mode == "truncate":
            chunks = chunks[:-3]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for c in chunks:  # split events across chunks, as networks do
            for part in (c[: len(c) // 2], c[len(c) // 2 :]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")

    def _chat_usage(self):
        field = self.headers.get("x-billed-field", "cost")
        return {**CHAT_USAGE, field: float(self.billed)} if self.billed else CHAT_USAGE

    def _openai_tier(self):
        return {"service_tier": self.tier} if self.tier else {}

    def _anthropic_usage(self, only_tools=False):
        tools = {"server_tool_use": {"web_search_requests": self.searches}} if self.searches else {}
        if only_tools:
            return tools
        usage = {**ANTHROPIC_USAGE, **tools}
        if self.hour:
            write = usage["cache_creation_input_tokens"]
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": write - self.hour,
                "ephemeral_1h_input_tokens": self.hour,
            }
        if self.tier:
            usage["service_tier"] = self.tier
        return usage

    def _send(self, status, data, content_type, headers=None):
        if self.headers.get("x-billed-header"):  # a gateway that reports the bill in a header
            headers = {**(headers or {}), "x-gateway-cost": self.headers["x-billed-header"]}
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that stops reading a stream (on purpose, in these tests) is fine


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler] = LLMServer):
    """A loopback fake of the providers' APIs: its base URL while the block runs."""
    httpd = _Quiet(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server():
    with serving() as url:
        yield url


class Setup:
    def __init__(self, base, async_=False, **hooks):
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(self.memory)))
        self.hooks = HttpxHooks(
            openai_compatible=[base + "/v1"], anthropic_compatible=[base + "/anthropic/v1"], **hooks
        )
        self.client = httpx.AsyncClient(base_url=base) if async_ else httpx.Client(base_url=base)
        HTTPXClientInstrumentor.instrument_client(
            self.client, tracer_provider=self.provider, **self.hooks.client_kwargs(self.client)
        )

    def spans(self):
        return [dict(s.attributes) for s in self.memory.get_finished_spans()]

    def only(self):
        spans = self.spans()
        assert len(spans) == 1, spans
        return spans[0]


@pytest.fixture
def setup(server):
    s = Setup(server)
    yield s
    s.client.close()


# (path, request body, provider, model priced, input incl. cache, output, cache read, cache write, reasoning)
CASES = [
    (
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": []},
        "openai",
        "gpt-4o-mini-2024-07-18",
        2000,
        300,
        1024,
        0,
        100,
    ),
    ("/v1/responses", {"model": "gpt-4o", "input": "hi"}, "openai", "gpt-4o-2024-08-06", 1500, 200, 512, 0, 50),
    (
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": ["a"] * 400},
        "openai",
        "text-embedding-3-small",
        800,
        0,
        0,
        0,
        0,
    ),
    (
        "/anthropic/v1/messages",
        {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": []},
        "anthropic",
        "claude-sonnet-4-5-20250929",
        3600,
        250,
        3000,
        500,
        0,
    ),
]


@pytest.mark.parametrize("path, body, provider, model, inp, out, cache_read, cache_write, reasoning", CASES)
def test_whole_bodies_are_costed_exactly(
    setup, path, body, provider, model, inp, out, cache_read, cache_write, reasoning
):
    with attribute_to(tenant_id="acme", feature="chat"):
        r = setup.client.post(path, json=body)
    assert r.status_code == 200 and r.json()["model"] == model  # the app reads the body untouched
    span = setup.only()
    assert span["gen_ai.provider.name"] == provider and span["gen_ai.response.model"] == model
    assert span["gen_ai.request.model"] == body["model"] and span["tenant.id"] == "acme"
    assert (span["gen_ai.usage.input_tokens"], span["gen_ai.usage.output_tokens"]) == (inp, out)
    assert span.get("gen_ai.usage.cache_read.input_tokens", 0) == cache_read
    assert span.get("gen_ai.usage.reasoning.output_tokens", 0) == reasoning
    assert span["otel_costs.pricing.status"] == "priced"
    # genai-prices counts input including cache, as the semantic conventions do
    expected = _price(provider, model, inp, out, cache_read, cache_write)
    assert Decimal(span["otel_costs.cost.total"]) == expected > 0


@pytest.mark.parametrize(
    "path, body",
    [
        (
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [], "stream": True, "stream_options": {"include_usage": True}},
        ),
        ("/anthropic/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [], "stream": True}),
    ],
)
def test_streams_are_costed_from_their_final_events_without_changing_a_byte(setup, server, path, body):
    with setup.client.stream("POST", path, json=body) as r:
        received = b"".join(r.iter_raw())
    with httpx.Client(base_url=server) as plain:  # the same stream, uninstrumented
        assert plain.post(path, json=body).content == received
    span = setup.only()
    if "anthropic" in path:
        assert (span["gen_ai.usage.input_tokens"], span["gen_ai.usage.output_tokens"]) == (3600, 250)
        expected = _price("anthropic", "claude-sonnet-4-5-20250929", 3600, 250, 3000, 500)
    else:
        assert (span["gen_ai.usage.input_tokens"], span["gen_ai.usage.output_tokens"]) == (2000, 300)
        expected = _price("openai", "gpt-4o-mini-2024-07-18", 2000, 300, 1024)
    assert Decimal(span["otel_costs.cost.total"]) == expected


CHAT = ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []})
RESPONSES = ("/v1/responses", {"model": "gpt-4o", "input": "hi"})
MESSAGES = ("/anthropic/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": []})


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
@pytest.mark.parametrize(
    "call, served, context, usage",
    [
        (CHAT, {"x-served-tier": "flex"}, {"service_tier": "flex"}, {}),
        (CHAT, {"x-served-tier": "priority"}, {"service_tier": "priority"}, {}),
        (CHAT, {"x-served-tier": "default"}, None, {}),
        (
            RESPONSES,
            {"x-served-tier": "priority", "x-web-searches": "2"},
            {"service_tier": "priority"},
            {"web_searches": 2},
        ),
        (MESSAGES, {"x-served-tier": "priority"}, {"service_tier": "priority"}, {}),
        (MESSAGES, {"x-served-tier": "batch"}, {"processing": "batch"}, {}),
        (MESSAGES, {"x-served-tier": "standard", "x-web-searches": "3"}, None, {"web_searches": 3}),
        (MESSAGES, {"x-cache-1h": "200"}, None, {"cache_write_1h_tokens": 200}),
    ],
    ids=[
        "chat-flex",
        "chat-priority",
        "chat-default",
        "responses-priority-searches",
        "messages-priority",
        "messages-batch",
        "messages-searches",
        "messages-1h-cache",
    ],
)
def test_calls_are_priced_as_the_provider_served_them(setup, call, served, context, usage, stream):
    """The tier the response says was served, web searches and one-hour cache writes, each
    against calc_price with the matching price_context and usage."""
    path, body = call
    if stream and path.endswith("/responses"):
        pytest.skip("the fake streams chat completions and messages")
    body = {**body, "stream": True, "stream_options": {"include_usage": True}} if stream else body
    if stream and "anthropic" in path:
        body.pop("stream_options")
    with setup.client.stream("POST", path, json=body, headers=served) as r:
        r.read()
    span = setup.only()
    if "anthropic" in path:
        provider, model, tokens = (
            "anthropic",
            "claude-sonnet-4-5-20250929",
            dict(input_tokens=3600, output_tokens=250, cache_read_tokens=3000, cache_write_tokens=500),
        )
    elif path.endswith("/responses"):
        provider, model, tokens = (
            "openai",
            "gpt-4o-2024-08-06",
            dict(input_tokens=1500, output_tokens=200, cache_read_tokens=512),
        )
    else:
        provider, model, tokens = (
            "openai",
            "gpt-4o-mini-2024-07-18",
            dict(input_tokens=2000, output_tokens=300, cache_read_tokens=1024),
        )
    expected = calc_price(Usage(**tokens, **usage), model_ref=model, provider_id=provider, price_context=context)
    standard = calc_price(Usage(**tokens, **usage), model_ref=model, provider_id=provider)
    assert Decimal(span["otel_costs.cost.total"]) == expected.total_price
    if context is None:
        assert "otel_costs.pricing.tier" not in span
    else:  # the served tier is named; one the model has no price for is priced standard, and says so
        assert span["otel_costs.pricing.tier"] == served["x-served-tier"]
        if expected.total_price == standard.total_price:
            assert "priced at the standard price" in span["otel_costs.pricing.error"]
        else:
            assert "otel_costs.pricing.error" not in span
    if "web_searches" in usage:
        assert Decimal(span["otel_costs.cost.web_search"]) == Decimal("0.01") * usage["web_searches"]
    assert span["gen_ai.usage.cost.amount"] == float(expected.total_price)
    assert span["gen_ai.usage.cost.source"] == "local" and span["gen_ai.usage.cost.currency"] == "USD"


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_a_gateway_s_billed_cost_is_the_cost_counted_beside_our_estimate(setup, stream):
    """OpenRouter answers with usage.cost: that is what the call cost; the list-price estimate
    stays in the parts and the difference is the adjustment."""
    path, body = CHAT
    if stream:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with setup.client.stream("POST", path, json=body, headers={"x-billed-cost": "0.00031415"}) as r:
        r.read()
    span = setup.only()
    estimate = _price("openai", "gpt-4o-mini-2024-07-18", 2000, 300, 1024)
    assert Decimal(span["otel_costs.cost.total"]) == Decimal("0.00031415") != estimate
    assert Decimal(span["otel_costs.cost.adjustment"]) == Decimal("0.00031415") - estimate
    parts = ("input", "output", "cache_read", "cache_write")
    assert sum(Decimal(span.get(f"otel_costs.cost.{p}", "0")) for p in parts) == estimate
    assert span["gen_ai.usage.cost.source"] == "provider" and span["gen_ai.usage.cost.amount"] == 0.00031415


def test_a_span_waits_for_its_body(setup):
    with setup.client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True}},
    ) as r:
        lines = r.iter_lines()
        next(lines)
        assert setup.spans() == []  # the HTTP span ended with the headers; the usage is still coming
        for _ in lines:
            pass
    assert setup.only()["otel_costs.pricing.status"] == "priced"


@pytest.mark.parametrize(
    "mode, body, reason",
    [
        ("truncate", {"stream": True, "stream_options": {"include_usage": True}}, "before its final event"),
        ("", {"stream": True}, "include_usage"),
        ("garbage", {}, "not JSON"),
    ],
)
def test_unreadable_or_cut_bodies_mark_the_span(setup, mode, body, reason):
    r = setup.client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", **body}, headers={"x-test": mode})
    assert r.status_code == 200
    span = setup.only()
    assert span["otel_costs.pricing.status"] == "incomplete" and reason in span["otel_costs.pricing.error"]
    assert "otel_costs.cost.total" not in span and "otel_costs.http.body" not in span


def test_an_abandoned_stream_is_incomplete_not_wrong(setup):
    with setup.client.stream(
        "POST", "/anthropic/v1/messages", json={"model": "claude-sonnet-4-5", "stream": True}
    ) as r:
        for i, _ in enumerate(r.iter_bytes()):
            if i == 3:
                break  # the app stops reading halfway
    span = setup.only()
    assert span["otel_costs.pricing.status"] == "incomplete" and "closed before" in span["otel_costs.pricing.error"]
    assert span["gen_ai.usage.input_tokens"] == 3600  # message_start was read: what is known is kept
    assert "otel_costs.cost.total" not in span


def test_a_response_dropped_unread_still_ends_its_span(setup):
    request = setup.client.build_request("POST", "/v1/chat/completions", json={"model": "gpt-4o-mini"})
    r = setup.client.send(request, stream=True)
    del r
    gc.collect()
    assert setup.only()["otel_costs.pricing.status"] == "incomplete"


def test_gzip_bodies_are_decoded_for_usage_only(setup):
    r = setup.client.post("/v1/chat/completions", json={"model": "gpt-4o-mini"}, headers={"x-test": "gzip"})
    assert r.json()["usage"] == CHAT_USAGE
    assert setup.only()["gen_ai.usage.input_tokens"] == 2000


def test_api_errors_and_other_urls_are_left_alone(setup, server):
    r = setup.client.post("/v1/chat/completions", json={"model": "gpt-4o-mini"}, headers={"x-test": "error"})
    assert r.status_code == 429
    setup.client.post("/v2/other", json={"model": "x"}, headers={"x-test": "error"})
    assert setup.spans() == []  # neither is a GenAI span with usage: not forwarded
    assert setup.memory.get_finished_spans() == ()


def test_async_client(server):
    s = Setup(server, async_=True)

    async def call():
        async with s.client:
            r = await s.client.post("/v1/chat/completions", json={"model": "gpt-4o-mini"})
            async with s.client.stream(
                "POST", "/anthropic/v1/messages", json={"model": "claude-sonnet-4-5", "stream": True}
            ) as streamed:
                async for _ in streamed.aiter_bytes():
                    pass
            return r

    assert asyncio.run(call()).status_code == 200
    costs = sorted(Decimal(span["otel_costs.cost.total"]) for span in s.spans())
    assert costs == sorted(
        [
            _price("openai", "gpt-4o-mini-2024-07-18", 2000, 300, 1024),
            _price("anthropic", "claude-sonnet-4-5-20250929", 3600, 250, 3000, 500),
        ]
    )


@pytest.mark.parametrize(
    ("billed_cost", "headers", "billed"),
    [
        ("usage.total_cost", {"x-billed-cost": "0.00031415", "x-billed-field": "total_cost"}, "0.00031415"),
        ("usage.total_cost", {"x-billed-cost": "0.00031415"}, None),  # usage.cost is not read then
        ("header:X-Gateway-Cost", {"x-billed-header": "0.000271828"}, "0.000271828"),
        ("header:x-gateway-cost", {"x-billed-header": "lots"}, None),  # not a number: our estimate
        ("header:x-gateway-cost", {"x-billed-header": "-0.01"}, None),
        ("header:x-gateway-cost", {"x-billed-header": "1e9"}, None),  # no call costs that
        ("usage.cost", {"x-billed-cost": "1e9"}, None),  # likewise in the body: the usage still prices it
        ("none", {"x-billed-cost": "0.00031415"}, None),
    ],
    ids=[
        "usage-field",
        "other-field",
        "header",
        "header-not-a-number",
        "header-negative",
        "header-absurd",
        "body-absurd",
        "none",
    ],
)
def test_where_a_gateway_reports_its_bill_is_named_by_the_user(server, billed_cost, headers, billed):
    s = Setup(server, billed_cost=billed_cost)
    s.client.post(CHAT[0], json=CHAT[1], headers=headers)
    s.client.close()
    span = s.only()
    estimate = _price("openai", "gpt-4o-mini-2024-07-18", 2000, 300, 1024)
    assert Decimal(span["otel_costs.cost.total"]) == (estimate if billed is None else Decimal(billed))
    assert span["gen_ai.usage.cost.source"] == ("local" if billed is None else "provider")


def test_base_urls_are_validated():
    with pytest.raises(ValueError, match="http"):
        HttpxHooks(openai_compatible=["gateway:8080/v1"])


@pytest.mark.parametrize("setting", ["cost", "usage.", "usage.a.b", "header:", "header:two words", "body:cost"])
def test_a_billed_cost_source_of_another_form_is_refused(setting, monkeypatch):
    with pytest.raises(ValueError, match="billed_cost must be"):
        HttpxHooks(billed_cost=setting)
    monkeypatch.setenv("OTEL_COSTS_BILLED_COST", setting)
    with pytest.raises(ValueError, match="OTEL_COSTS_BILLED_COST must be"):
        HttpxHooks()


@pytest.mark.parametrize("stream", [False, True])
def test_one_call_two_instrumentations_one_cost(server, stream):
    """The official OpenAI instrumentation and the httpx hooks both see the call: the httpx
    span carries the cost (it has the cached tokens), the OpenAI span points at it."""
    import openai
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    s = Setup(server)
    s.client.close()
    openai_instrumentor = OpenAIInstrumentor()
    openai_instrumentor.instrument(tracer_provider=s.provider)
    instrument_httpx([server + "/v1"], tracer_provider=s.provider)  # httpx and httpx2 (openai 3.x)
    try:
        client = openai.OpenAI(base_url=server + "/v1", api_key="test", max_retries=0)
        kwargs = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
        result = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], **kwargs
        )
        if stream:
            for _ in result:
                pass
        client.close()
    finally:
        from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

        HTTPXClientInstrumentor().uninstrument()
        HTTPX2ClientInstrumentor().uninstrument()
        openai_instrumentor.uninstrument()
    spans = {("http" if "http.request.method" in a or "http.method" in a else "genai"): a for a in s.spans()}
    assert set(spans) == {"http", "genai"}, s.spans()
    costed = [a for a in spans.values() if "otel_costs.cost.total" in a]
    assert costed == [spans["http"]]
    assert Decimal(costed[0]["otel_costs.cost.total"]) == _price("openai", "gpt-4o-mini-2024-07-18", 2000, 300, 1024)
    assert spans["genai"]["otel_costs.pricing.status"] == "counted_elsewhere"
    http_span = next(x for x in s.memory.get_finished_spans() if "otel_costs.cost.total" in x.attributes)
    assert spans["genai"]["otel_costs.cost.counted_on"] == f"{http_span.context.span_id:016x}"


def test_transports_answering_from_memory_are_read_at_once():
    body = json.dumps({"model": "gpt-4o-mini-2024-07-18", "usage": CHAT_USAGE}).encode()
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(SimpleSpanProcessor(memory)))
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)),
        base_url="https://api.openai.com",
    )
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider, **HttpxHooks().client_kwargs(client))
    client.post("/v1/chat/completions", json={"model": "gpt-4o-mini"})
    (span,) = memory.get_finished_spans()
    assert Decimal(span.attributes["otel_costs.cost.total"]) == _price(
        "openai", "gpt-4o-mini-2024-07-18", 2000, 300, 1024
    )
