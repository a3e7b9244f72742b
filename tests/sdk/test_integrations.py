"""Real neighbours: the official openai-v2 instrumentation against a fake OpenAI endpoint,
and attribution crossing a real local HTTP hop in the W3C ``baggage`` header."""

from __future__ import annotations

import json
import threading
import urllib.request
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import context, propagate

from otel_costs import attribute_to, current_attribution


class _Server:
    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _json(handler: BaseHTTPRequestHandler, body: dict) -> None:
    data = json.dumps(body).encode()
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions like OpenAI, with the usage the test sets."""

    usage = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _json(
            self,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": request["model"] + "-2024-07-18",
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hello"}}
                ],
                "usage": self.usage,
            },
        )

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_openai():
    server = _Server(FakeOpenAI)
    yield server
    server.close()


@pytest.fixture
def instrumented(traced):
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=traced.provider)
    yield traced
    instrumentor.uninstrument()


def test_official_openai_instrumentation_spans_are_costed(instrumented, fake_openai):
    import openai

    client = openai.OpenAI(base_url=fake_openai.url + "/v1", api_key="test", max_retries=0)
    with attribute_to(user_id="u_123", tenant_id="acme", feature="chat", plan="pro"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    client.close()
    span = instrumented.only()
    attrs = span.attributes
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    # 1200 × $0.15/M + 300 × $0.60/M (this instrumentation does not record cached tokens)
    assert Decimal(attrs["otel_costs.cost.total"]) == Decimal("0.00036")
    assert attrs["otel_costs.pricing.status"] == "priced"
    assert (attrs["user.id"], attrs["tenant.id"], attrs["feature.name"], attrs["otel_costs.tag.plan"]) == (
        "u_123",
        "acme",
        "chat",
        "pro",
    )


class Downstream(BaseHTTPRequestHandler):
    """A downstream service: extracts the W3C context and reports the attribution it sees."""

    def do_GET(self):
        ctx = propagate.extract({k.lower(): v for k, v in self.headers.items()})
        token = context.attach(ctx)
        try:
            _json(self, {"attribution": current_attribution(), "baggage": self.headers.get("baggage")})
        finally:
            context.detach(token)

    def log_message(self, *args):
        pass


def test_w3c_baggage_round_trip_across_an_http_hop():
    server = _Server(Downstream)
    try:
        with attribute_to(user_id="u 1,=x", tenant_id="acme", feature="search", plan="free"):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            request = urllib.request.Request(server.url + "/", headers=headers)
            with urllib.request.urlopen(request, timeout=5) as response:
                seen = json.loads(response.read())
    finally:
        server.close()
    assert seen["attribution"] == {
        "user.id": "u 1,=x",  # delimiters survive percent-encoding
        "tenant.id": "acme",
        "feature.name": "search",
        "otel_costs.tag.plan": "free",
    }
    assert "tenant.id=acme" in seen["baggage"]
