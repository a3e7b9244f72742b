"""A loopback fake of OpenAI's Chat Completions API, as the Vercel AI SDK's OpenAI provider
calls it: JSON or a server-sent-event stream (with ``stream_options.include_usage``), and a
tool call when the request offers tools and has no tool result yet. Each response has usage
of its own, recorded in ``served`` so that tests price what the provider billed. Given
``service_tiers``, the responses say in turn which tier served them (``service_tier``, in the
body and in every stream chunk, as OpenAI does)."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_SERVED = "gpt-4o-mini-2024-07-18"


class Served(list):
    """The usage of every response, in order: dicts with id, model, prompt_tokens,
    cached_tokens, completion_tokens, service_tier (None when the response named none)."""


class FakeOpenAI:
    def __init__(self, service_tiers: tuple[str, ...] = ()) -> None:
        self.served = Served()
        self._numbers = itertools.count(1)
        self._tiers = itertools.cycle(service_tiers) if service_tiers else None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                fake._answer(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_port}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        n = next(self._numbers)
        usage = {
            "prompt_tokens": 1000 + 37 * n,
            "completion_tokens": 40 + n,
            "prompt_tokens_details": {"cached_tokens": 512 if n % 2 else 0, "audio_tokens": 0},
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        response_id = f"chatcmpl-fake{n}"
        tier = next(self._tiers) if self._tiers else None
        served_by = {} if tier is None else {"service_tier": tier}
        self.served.append(
            {
                "id": response_id,
                "model": MODEL_SERVED,
                "prompt_tokens": usage["prompt_tokens"],
                "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
                "completion_tokens": usage["completion_tokens"],
                "service_tier": tier,
            }
        )
        messages = body.get("messages", [])
        wants_tool = bool(body.get("tools")) and not any(m.get("role") == "tool" for m in messages)
        if wants_tool:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{n}",
                        "type": "function",
                        "function": {
                            "name": body["tools"][0]["function"]["name"],
                            "arguments": json.dumps({"city": "Paris"}),
                        },
                    }
                ],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": "It is sunny in Paris."}
            finish = "stop"
        if body.get("stream"):
            self._stream(
                handler,
                response_id,
                message,
                finish,
                usage if (body.get("stream_options") or {}).get("include_usage") else None,
                served_by,
            )
            return
        data = json.dumps(
            {
                "id": response_id,
                "object": "chat.completion",
                "created": 1_764_000_000,
                "model": MODEL_SERVED,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
                **served_by,
            }
        ).encode()
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _stream(
        self,
        handler: BaseHTTPRequestHandler,
        response_id: str,
        message: dict[str, Any],
        finish: str,
        usage: dict[str, Any] | None,
        served_by: dict[str, Any],
    ) -> None:
        def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> bytes:
            doc = {
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": 1_764_000_000,
                "model": MODEL_SERVED,
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **served_by,
                **extra,
            }
            return b"data: " + json.dumps(doc).encode() + b"\n\n"

        parts = [chunk({"role": "assistant", "content": ""})]
        if message.get("tool_calls"):
            call = message["tool_calls"][0]
            parts.append(chunk({"tool_calls": [{"index": 0, **call}]}))
        else:
            for word in message["content"].split(" "):
                parts.append(chunk({"content": word + " "}))
        parts.append(chunk({}, finish))
        if usage is not None:
            parts.append(chunk(None, usage=usage))
        parts.append(b"data: [DONE]\n\n")
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.end_headers()
        for part in parts:
            handler.wfile.write(part)
            handler.wfile.flush()
