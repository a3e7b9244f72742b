"""LLM HTTP APIs on the wire: which requests are LLM calls, and their usage.

Pure functions over URLs and bodies (no I/O, no OTel): the httpx hooks feed them what an
app sends and receives. Recognised: OpenAI chat completions, responses and embeddings
(on api.openai.com and on any OpenAI-compatible base URL the user lists) and the
Anthropic messages API. Usage becomes current GenAI semantic-convention attributes, so
input tokens *include* cached ones (Anthropic reports them apart; they are added).
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any, Iterable, NamedTuple

from . import conventions as cv
from .usage import UsageError, billed_usd

__all__ = [
    "Endpoint",
    "match_endpoint",
    "request_attributes",
    "usage_attributes",
    "find_usage",
    "BodyReader",
    "StreamUsage",
    "BodyError",
    "BILLED_COST_FIELD",
    "billed_cost",
]

OPENAI_BASE = "https://api.openai.com/v1"
ANTHROPIC_BASE = "https://api.anthropic.com/v1"
#: A non-streamed body up to this size is parsed whole; past it, only its last part
#: (where OpenAI and Anthropic put usage) is kept, so memory stays bounded.
MAX_BODY_BYTES = 4 << 20
_TAIL_BYTES = 64 << 10
_MAX_EVENT_BYTES = 1 << 20

_OPENAI_PATHS = {"/chat/completions": "chat", "/responses": "responses", "/embeddings": "embeddings"}


#: The field of an OpenAI-compatible response's ``usage`` that holds what the call was billed,
#: in USD, when a gateway reports it (OpenRouter's ``usage.cost``).
BILLED_COST_FIELD = "cost"


class Endpoint(NamedTuple):
    provider: str  # gen_ai.provider.name
    api: str  # "chat", "responses", "embeddings", "messages"
    billed_cost: str = BILLED_COST_FIELD  # the usage field with the billed cost ("" for none)


class BodyError(ValueError):
    """A body that is not what the API sends (not JSON, wrong shape, bad counts)."""


def _normalise_base(url: str) -> str:
    return url.rstrip("/").lower()


#: The Messages API under an Anthropic base URL, with or without its version.
_ANTHROPIC_PATHS = frozenset({"/messages", "/v1/messages"})


def match_endpoint(
    url: str, openai_compatible: Iterable[str] = (), anthropic_compatible: Iterable[str] = ()
) -> Endpoint | None:
    """The LLM API a request URL calls, or None. ``*_compatible``: base URLs (up to and
    including the version path, e.g. ``http://gateway:8080/v1``) that speak that API; an
    Anthropic base may also be the anthropic SDK's ``base_url``, which leaves ``/v1`` out."""
    lowered = url.split("?", 1)[0].rstrip("/").lower()
    for base in (ANTHROPIC_BASE, *anthropic_compatible):
        base = _normalise_base(base)
        if lowered.startswith(base) and lowered[len(base) :] in _ANTHROPIC_PATHS:
            return Endpoint("anthropic", "messages")
    for base in (OPENAI_BASE, *openai_compatible):
        base = _normalise_base(base)
        if lowered.startswith(base):
            api = _OPENAI_PATHS.get(lowered[len(base) :])
            if api:
                return Endpoint("openai", api)
    return None


def request_attributes(endpoint: Endpoint, body: bytes | None) -> tuple[dict[str, Any], bool]:
    """GenAI attributes from a request body, and whether the response will be streamed.
    A body that cannot be read gives no attributes (the response may still have usage)."""
    operation = {"chat": "chat", "responses": "chat", "messages": "chat", "embeddings": "embeddings"}[endpoint.api]
    attrs: dict[str, Any] = {"gen_ai.provider.name": endpoint.provider, "gen_ai.operation.name": operation}
    stream = False
    if body:
        try:
            doc = json.loads(body)
        except ValueError:
            return attrs, False
        if isinstance(doc, dict):
            model = doc.get("model")
            if isinstance(model, str) and model:
                attrs["gen_ai.request.model"] = model[:256]
            stream = doc.get("stream") is True
    return attrs, stream


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise BodyError(f"usage {name} is {value!r}, not a non-negative integer")
    return value


def find_usage(doc: Any) -> tuple[Any, str | None]:
    """(usage object, model) in a response body or stream event; usage is None if absent."""
    usage, model, _ = _find(doc)
    return usage, model


def _find(doc: Any) -> tuple[Any, str | None, dict[str, Any]]:
    """:func:`find_usage`, and the object that holds the usage (the response)."""
    if not isinstance(doc, dict):
        return None, None, {}
    for inner in ("response", "message"):  # responses API events; Anthropic message_start
        if "usage" not in doc and isinstance(doc.get(inner), dict):
            doc = doc[inner]
    model = doc.get("model")
    return doc.get("usage"), model if isinstance(model, str) and model else None, doc


def _served_attributes(endpoint: Endpoint, response: dict[str, Any]) -> dict[str, Any]:
    """How an OpenAI call was served, from the object that holds its usage: the service tier
    it says it served (the response's ``service_tier``) and the web searches it ran (the
    Responses API's ``web_search_call`` output items). Anthropic reports both in its usage."""
    out: dict[str, Any] = {}
    if endpoint.provider == "anthropic":
        return out
    tier = response.get("service_tier")
    if isinstance(tier, str) and tier:
        out[cv.SERVICE_TIER_NAMES[0]] = tier[:64]
    items = response.get("output")
    if isinstance(items, list):
        searches = sum(1 for item in items if isinstance(item, dict) and item.get("type") == "web_search_call")
        if searches:
            out[cv.USAGE_WEB_SEARCHES] = searches
    return out


def usage_attributes(endpoint: Endpoint, doc: Any) -> dict[str, Any]:
    """GenAI usage (and response model, service tier, web searches) from a parsed response
    body. Returns {} when it carries no usage; raises BodyError for usage of the wrong shape."""
    usage, model, response = _find(doc)
    return {**_usage(endpoint, usage, model), **_served_attributes(endpoint, response)} if usage is not None else {}


def _usage(endpoint: Endpoint, usage: Any, model: str | None) -> dict[str, Any]:
    if not isinstance(usage, dict):
        raise BodyError(f"usage is {type(usage).__name__}, not an object")
    out: dict[str, Any] = {}
    if model:
        out["gen_ai.response.model"] = model[:256]
    if endpoint.provider == "anthropic":
        cache_read = _count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens")
        cache_write = _count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
        if "input_tokens" in usage:
            out["gen_ai.usage.input_tokens"] = _count(usage["input_tokens"], "input_tokens") + cache_read + cache_write
        if "output_tokens" in usage:
            out["gen_ai.usage.output_tokens"] = _count(usage["output_tokens"], "output_tokens")
        ttl = usage.get("cache_creation")
        if isinstance(ttl, dict):
            hour = _count(ttl.get("ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens")
            if hour:
                out[cv.USAGE_CACHE_WRITE_1H] = hour
        tools = usage.get("server_tool_use")
        if isinstance(tools, dict):
            searches = _count(tools.get("web_search_requests"), "web_search_requests")
            if searches:
                out[cv.USAGE_WEB_SEARCHES] = searches
        tier = usage.get("service_tier")
        if isinstance(tier, str) and tier:
            out[cv.USAGE_SERVICE_TIER] = tier[:64]
    else:
        if "prompt_tokens" in usage or endpoint.api == "embeddings":  # chat completions, embeddings
            input_name, output_name = "prompt_tokens", "completion_tokens"
            input_details, output_details = "prompt_tokens_details", "completion_tokens_details"
        else:  # responses API
            input_name, output_name = "input_tokens", "output_tokens"
            input_details, output_details = "input_tokens_details", "output_tokens_details"
        out["gen_ai.usage.input_tokens"] = _count(usage.get(input_name), input_name)
        out["gen_ai.usage.output_tokens"] = _count(usage.get(output_name), output_name)
        details = usage.get(input_details) or {}
        cache_read = _count(details.get("cached_tokens"), "cached_tokens") if isinstance(details, dict) else 0
        cache_write = 0
        if isinstance(details, dict):
            for name, attribute in (("audio_tokens", cv.USAGE_AUDIO_INPUT), ("image_tokens", cv.USAGE_IMAGE_INPUT)):
                if details.get(name):
                    out[attribute] = _count(details[name], name)
        details = usage.get(output_details) or {}
        if isinstance(details, dict) and details.get("reasoning_tokens"):
            out["gen_ai.usage.reasoning.output_tokens"] = _count(details["reasoning_tokens"], "reasoning_tokens")
        if isinstance(details, dict) and details.get("audio_tokens"):
            out[cv.USAGE_AUDIO_OUTPUT] = _count(details["audio_tokens"], "audio_tokens")
        billed = usage.get(endpoint.billed_cost) if endpoint.billed_cost else None
        text = billed_cost(billed, f"usage.{endpoint.billed_cost}") if billed is not None else None
        if text is not None:
            out[cv.PROVIDER_COST] = text
    if cache_read:
        out["gen_ai.usage.cache_read.input_tokens"] = cache_read
    if cache_write:
        out["gen_ai.usage.cache_creation.input_tokens"] = cache_write
    return out


def billed_cost(value: Any, where: str) -> str | None:
    """A billed cost in USD (a JSON number, or a header's text) as the exact decimal text the
    provider wrote (:func:`usage.billed_usd` decides what is one), or None for anything else:
    the call is then priced from its usage, as if no bill were reported."""
    try:
        billed_usd(value, where)
    except UsageError:
        return None
    # A float's shortest repr is the number as the provider wrote it; parsing every float of
    # a body as a Decimal instead tripled the parse of a 2 MB embeddings body on the app's thread.
    return repr(value) if isinstance(value, float) else str(value).strip()


def _decoder(encoding: str) -> Any:
    """A decompressor with ``decompress(bytes)`` for a Content-Encoding, as httpx decodes it."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        raise BodyError(f"content-encoding {encoding!r} is not supported")
    coding = codings[0]
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Deflate()
    if coding == "br":
        try:
            import brotli  # httpx asks for br only when this is installed
        except ImportError:
            raise BodyError("content-encoding br needs the brotli package") from None
        return brotli.Decompressor() if hasattr(brotli, "Decompressor") else None
    if coding == "zstd":
        try:
            import zstandard
        except ImportError:
            raise BodyError("content-encoding zstd needs the zstandard package") from None
        return zstandard.ZstdDecompressor().decompressobj()
    raise BodyError(f"content-encoding {coding!r} is not supported")


class _Deflate:
    """deflate as servers send it: zlib-wrapped, or raw (httpx accepts both)."""

    def __init__(self) -> None:
        self._first = True
        self._obj = zlib.decompressobj()

    def decompress(self, data: bytes) -> bytes:
        if self._first:
            self._first = False
            try:
                return self._obj.decompress(data)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._obj.decompress(data)


class BodyReader:
    """Collects a non-streamed response body (bounded) and reads its usage at the end.

    ``feed`` takes the raw (possibly compressed) chunks the app reads; ``finish`` returns the
    usage attributes. Raises BodyError (from ``feed`` or ``finish``) for a body it cannot read.
    """

    def __init__(self, endpoint: Endpoint, content_encoding: str = ""):
        self._endpoint = endpoint
        self._decoder = _decoder(content_encoding)
        self._parts: list[bytes] = []
        self._size = 0
        self._truncated = False

    def feed(self, chunk: bytes) -> None:
        if self._decoder is not None:
            chunk = self._decoder.decompress(chunk)
        self._parts.append(chunk)
        self._size += len(chunk)
        if self._size > MAX_BODY_BYTES:
            tail = b"".join(self._parts)[-_TAIL_BYTES:]
            self._parts, self._size, self._truncated = [tail], len(tail), True

    def finish(self) -> dict[str, Any]:
        body = b"".join(self._parts)
        if not self._truncated:
            try:
                doc = json.loads(body)
            except ValueError:
                raise BodyError("response body is not JSON") from None
            return usage_attributes(self._endpoint, doc)
        return usage_attributes(self._endpoint, _object_at_last_key(body, b'"usage"', b'"model"', b'"service_tier"'))


def _object_at_last_key(body: bytes, *keys: bytes) -> dict[str, Any]:
    """{key: value} for the last top-level-looking occurrence of each key in a body tail."""
    decoder = json.JSONDecoder()
    text = body.decode("utf-8", "replace")
    out: dict[str, Any] = {}
    for key in keys:
        name = key.decode().strip('"')
        match = None
        for match in re.finditer(re.escape(key.decode()) + r"\s*:\s*", text):  # noqa: B007 (the last one)
            pass
        if match is None:
            continue
        try:
            out[name] = decoder.raw_decode(text, match.end())[0]
        except ValueError:
            continue
    if "usage" not in out:
        raise BodyError("response body is too large and its end holds no usage")
    return out


_USAGE_MARK = re.compile(rb'"usage"\s*:\s*\{')


class StreamUsage:
    """Usage from a server-sent-event stream, read as the app reads it.

    Only events that can hold usage are parsed as JSON (OpenAI's last chunk with
    ``stream_options.include_usage``, the responses API's ``response.completed``,
    Anthropic's ``message_start`` and ``message_delta``); the rest is split into lines
    and dropped. Memory: one event at a time. ``complete`` says whether the stream's end
    was seen (OpenAI ``[DONE]`` or ``response.completed``; Anthropic ``message_stop``).
    """

    def __init__(self, endpoint: Endpoint, content_encoding: str = ""):
        self._endpoint = endpoint
        self._decoder = _decoder(content_encoding)
        self._pending = b""
        self._data: list[bytes] = []
        self._raw: dict[str, Any] = {}
        self._model: str | None = None
        self._served: dict[str, Any] = {}
        self.complete = False

    @property
    def usage(self) -> dict[str, Any]:
        """GenAI usage attributes seen so far ({} if none). Raises BodyError."""
        return {**_usage(self._endpoint, self._raw, self._model), **self._served} if self._raw else {}

    def feed(self, chunk: bytes) -> None:
        """Raises BodyError for an event it cannot read."""
        if self._decoder is not None:
            chunk = self._decoder.decompress(chunk)
        if self._pending:
            chunk = self._pending + chunk
        lines = chunk.split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > _MAX_EVENT_BYTES:
            raise BodyError("stream line longer than 1 MiB")
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                self._dispatch()
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)

    def _dispatch(self) -> None:
        if not self._data:
            return
        data = b"\n".join(self._data)
        self._data = []
        if data == b"[DONE]":
            self.complete = True
            return
        if self._endpoint.provider == "anthropic":
            if b'"message_stop"' in data:
                self.complete = True
                return
            if b'"message_start"' not in data and b'"message_delta"' not in data:
                return
        elif _USAGE_MARK.search(data) is None:
            return
        try:
            doc = json.loads(data)
        except ValueError:
            raise BodyError("stream event is not JSON") from None
        usage, model, response = _find(doc)
        if isinstance(usage, dict):
            # Anthropic's message_delta repeats counts cumulatively: later values replace
            # earlier ones, and fields it leaves out keep message_start's values.
            self._raw.update(usage)
            self._served.update(_served_attributes(self._endpoint, response))
        elif usage is not None:
            raise BodyError(f"usage is {type(usage).__name__}, not an object")
        self._model = model or self._model
        if isinstance(doc, dict) and doc.get("type") == "response.completed":
            self.complete = True

    def finish(self) -> None:
        """The stream ended: dispatch a last event not followed by a blank line."""
        if self._pending:
            self.feed(b"\n")
        self._dispatch()
