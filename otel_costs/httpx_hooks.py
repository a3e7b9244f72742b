"""Costed GenAI spans for LLM calls made with plain httpx or httpx2 (and SDKs built on
them: openai 3.x uses httpx2).

``opentelemetry-instrumentation-httpx`` gives every request a client span; these hooks
make the spans of LLM API calls GenAI spans the :class:`CostSpanProcessor` prices:

* the request hook recognises the API from the URL (:mod:`llm_wire`) and sets provider,
  operation and request model from the request body;
* the response hook watches the response body *as the app reads it*, without buffering a
  stream or changing a byte, and takes the usage from it (a streamed response's final
  events; a whole body's ``usage`` object, its end only past 4 MiB);
* the span ends with the response headers, before the body is read, so it is marked
  ``otel_costs.http.body=pending`` and the processor holds it until the body is read,
  then forwards it with the usage. A body the app abandons or that cannot be read gives
  a span marked ``incomplete`` with the reason, not a wrong cost.

Hooks never raise into the app: a failure is logged (rate-limited) and the span marked.
Threading: the sync hooks run on the calling thread; body watching runs wherever the app
reads the body.
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from typing import Any, Iterable, Literal

from . import conventions as cv
from . import deferred as _deferred
from .deferred import incomplete
from .llm_wire import (
    BILLED_COST_FIELD,
    BodyError,
    BodyReader,
    Endpoint,
    StreamUsage,
    billed_cost,
    match_endpoint,
    request_attributes,
)

__all__ = ["HttpxHooks", "instrument_httpx", "OPENAI_COMPATIBLE_ENV", "ANTHROPIC_COMPATIBLE_ENV", "BILLED_COST_ENV"]

_log = logging.getLogger("otel_costs")

#: Comma-separated OpenAI-compatible base URLs (``http://gateway:8080/v1``), used when
#: ``openai_compatible`` is not passed; likewise for Anthropic's messages API.
OPENAI_COMPATIBLE_ENV = "OTEL_COSTS_OPENAI_COMPATIBLE_URLS"
ANTHROPIC_COMPATIBLE_ENV = "OTEL_COSTS_ANTHROPIC_COMPATIBLE_URLS"
#: Where an OpenAI-compatible gateway reports what a call was billed, used when
#: ``billed_cost`` is not passed: ``usage.<field>`` or ``header:<name>``; ``none`` for nowhere.
BILLED_COST_ENV = "OTEL_COSTS_BILLED_COST"
_DEFAULT_BILLED_COST = "usage." + BILLED_COST_FIELD
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
_EXTENSION = "otel_costs.llm"  # request.extensions key: (endpoint, streamed)
_PENDING = "pending"
_MAX_REQUEST_BODY = 8 << 20  # larger request bodies are not parsed for the model
_MAX_LOGGED = 10
_logged = 0


def _log_once(message: str, *args: Any) -> None:
    global _logged
    _logged += 1
    if _logged <= _MAX_LOGGED:
        _log.warning("otel_costs httpx hooks: " + message, *args)


class HttpxHooks:
    """Request and response hooks for ``HTTPXClientInstrumentor`` (sync and async).

    Args:
        openai_compatible: base URLs of OpenAI-compatible APIs (proxies, self-hosted
            gateways), e.g. ``["http://litellm:4000/v1"]``. Default: the comma-separated
            ``OTEL_COSTS_OPENAI_COMPATIBLE_URLS``. api.openai.com is always recognised.
        anthropic_compatible: the same for Anthropic's messages API
            (``OTEL_COSTS_ANTHROPIC_COMPATIBLE_URLS``); api.anthropic.com always.
        billed_cost: where an OpenAI-compatible API reports what the call was billed, in USD:
            ``"usage.cost"`` (OpenRouter; the default), another ``usage.<field>``, a response
            header as ``"header:<name>"`` (e.g. ``header:x-litellm-response-cost``), or
            ``"none"``. Default: ``OTEL_COSTS_BILLED_COST``, else ``usage.cost``. A billed cost
            is the cost counted; our estimate is kept beside it.

    Raises ValueError for a base URL that is not http(s) or a ``billed_cost`` of another form.

    ``HTTPXClientInstrumentor().instrument(**hooks.kwargs())`` instruments every client
    (:func:`instrument_httpx` does that); ``HTTPXClientInstrumentor.instrument_client(client,
    **hooks.client_kwargs(client))`` one client.
    """

    def __init__(
        self,
        openai_compatible: Iterable[str] | None = None,
        anthropic_compatible: Iterable[str] | None = None,
        billed_cost: str | None = None,
    ):
        self.openai_compatible = _bases(openai_compatible, OPENAI_COMPATIBLE_ENV)
        self.anthropic_compatible = _bases(anthropic_compatible, ANTHROPIC_COMPATIBLE_ENV)
        self._cost_field, self._cost_header = _billed_cost_source(billed_cost)

    def kwargs(self) -> dict[str, Any]:
        """The four hook keyword arguments ``HTTPXClientInstrumentor`` takes."""
        return {
            "request_hook": self.request_hook,
            "response_hook": self.response_hook,
            "async_request_hook": self.async_request_hook,
            "async_response_hook": self.async_response_hook,
        }

    def client_kwargs(self, client: Any) -> dict[str, Any]:
        """``request_hook``/``response_hook`` for ``instrument_client``: the async pair for an
        ``httpx.AsyncClient``, else the sync pair."""
        if hasattr(client, "aclose"):
            return {"request_hook": self.async_request_hook, "response_hook": self.async_response_hook}
        return {"request_hook": self.request_hook, "response_hook": self.response_hook}

    def request_hook(self, span: Any, request: Any) -> None:
        try:
            endpoint = match_endpoint(str(request.url), self.openai_compatible, self.anthropic_compatible)
            if endpoint is None or not span.is_recording():
                return
            if endpoint.provider == "openai":
                endpoint = endpoint._replace(billed_cost=self._cost_field)
            attrs, streamed = request_attributes(endpoint, _request_body(request.stream))
            span.set_attributes(attrs)
            request.extensions[_EXTENSION] = (endpoint, streamed)
        except Exception:  # never into the app
            _log.debug("request hook failed", exc_info=True)
            _log_once("request hook failed; the call is not costed")

    def response_hook(self, span: Any, request: Any, response: Any) -> None:
        try:
            marker = request.extensions.get(_EXTENSION) if isinstance(request.extensions, dict) else None
            if marker is None or not span.is_recording():
                return
            endpoint, streamed = marker
            if response.status_code >= 400:
                return  # an API error: no tokens billed; the span keeps its HTTP status
            headers = response.headers
            if self._cost_header and endpoint.provider == "openai":
                self._billed_by_header(span, _header(headers, self._cost_header))
            content_type = _header(headers, "content-type").lower()
            encoding = _header(headers, "content-encoding")
            ctx = span.get_span_context()
            pending = _deferred.expect(ctx.trace_id, ctx.span_id)
            if pending is None:
                span.set_attributes(incomplete("too many responses being read at once"))
                return
            # The registry holds it weakly; the span keeps it until the processor claims it.
            state = getattr(span, "__dict__", None)
            if state is not None:
                state["_otel_costs_body"] = pending
            try:
                reader: _Watch = _Watch(endpoint, streamed or "text/event-stream" in content_type, encoding, pending)
            except BodyError as exc:
                pending.resolve(incomplete(str(exc)))
                span.set_attribute(cv.HTTP_BODY, _PENDING)
                return
            in_memory = _request_body(response.stream)
            if in_memory is not None:  # a transport that answered from memory: read it now
                reader.feed(in_memory)
                reader.end()
            elif not _watch_stream(response.stream, reader):
                pending.resolve(incomplete(f"cannot watch a {type(response.stream).__name__} body"))
            span.set_attribute(cv.HTTP_BODY, _PENDING)
        except Exception:
            _log.debug("response hook failed", exc_info=True)
            _log_once("response hook failed; the call is not costed")

    def _billed_by_header(self, span: Any, value: str) -> None:
        if not value:
            return
        text = billed_cost(value, f"header {self._cost_header}")
        if text is None:  # priced from the usage, as if no bill were reported
            _log_once("header %s is %r, not a cost; priced from the usage", self._cost_header, value[:40])
        else:
            span.set_attribute(cv.PROVIDER_COST, text)

    async def async_request_hook(self, span: Any, request: Any) -> None:
        self.request_hook(span, request)

    async def async_response_hook(self, span: Any, request: Any, response: Any) -> None:
        self.response_hook(span, request, response)


def instrument_httpx(
    openai_compatible: Iterable[str] | None = None,
    anthropic_compatible: Iterable[str] | None = None,
    billed_cost: str | None = None,
    **instrument_kwargs: Any,
) -> HttpxHooks:
    """Instrument every httpx client, and every httpx2 client (what openai 3.x uses), with
    :class:`HttpxHooks`; returns the hooks.

    Needs ``opentelemetry-instrumentation-httpx`` (ImportError otherwise). Other keyword
    arguments go to the instrumentors' ``instrument`` (e.g. ``tracer_provider``).
    """
    import importlib.util

    from opentelemetry.instrumentation import httpx as instrumentation

    hooks = HttpxHooks(openai_compatible, anthropic_compatible, billed_cost)
    for module, name in (("httpx", "HTTPXClientInstrumentor"), ("httpx2", "HTTPX2ClientInstrumentor")):
        instrumentor = getattr(instrumentation, name, None)
        if instrumentor is not None and importlib.util.find_spec(module) is not None:
            instrumentor().instrument(**hooks.kwargs(), **instrument_kwargs)
    return hooks


def _billed_cost_source(setting: str | None) -> tuple[str, str]:
    """(usage field, header name) from a ``billed_cost`` setting; at least one of them is ""."""
    where = "billed_cost" if setting is not None else BILLED_COST_ENV
    if setting is None:
        setting = os.environ.get(BILLED_COST_ENV, "") or _DEFAULT_BILLED_COST
    text = setting.strip()
    if text.lower() == "none":
        return "", ""
    if text.startswith("usage.") and text[6:].isidentifier():
        return text[6:], ""
    if text.lower().startswith("header:") and _TOKEN.fullmatch(text[7:].strip()):
        return "", text[7:].strip().lower()
    raise ValueError(f"{where} must be usage.<field>, header:<name> or none, got {setting!r}")


def _bases(urls: Iterable[str] | None, env: str) -> tuple[str, ...]:
    if urls is None:
        urls = [u for u in os.environ.get(env, "").split(",") if u.strip()]
    elif isinstance(urls, str):
        urls = [urls]
    out = []
    for url in urls:
        url = str(url).strip()
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"API base URL must start with http:// or https:// ({env}), got {url!r}")
        out.append(url.rstrip("/"))
    return tuple(out)


def _header(headers: Any, name: str) -> str:
    try:
        value = headers.get(name)
    except Exception:
        return ""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value or ""


def _request_body(stream: Any) -> bytes | None:
    """The bytes of an in-memory body (httpx.ByteStream); None for a stream."""
    body = getattr(stream, "_stream", None)  # httpx.ByteStream keeps its bytes here
    if isinstance(body, bytes) and len(body) <= _MAX_REQUEST_BODY:
        return body
    return None


class _Watch:
    """Reads usage from a body chunk by chunk; resolves the span's deferred exactly once."""

    __slots__ = ("_reader", "_stream", "_deferred", "_failed", "__weakref__")

    def __init__(self, endpoint: Endpoint, streamed: bool, encoding: str, deferred: _deferred.Deferred):
        self._stream = streamed
        self._reader: Any = StreamUsage(endpoint, encoding) if streamed else BodyReader(endpoint, encoding)
        self._deferred = deferred
        self._failed: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self._failed is None:
            try:
                self._reader.feed(chunk)
            except Exception as exc:  # BodyError, zlib.error, a decoder's own: never into the app
                self._failed = f"response body unreadable: {exc}"

    def end(self) -> None:
        """The app read the body to its end."""
        self._settle(abandoned=None)

    def abandon(self, reason: str) -> None:
        """The app stopped reading. A stream whose final event was read (SDKs close it at
        ``[DONE]`` without reading the end of the HTTP body) or a whole JSON body still
        counts; anything else is incomplete, with the usage seen so far."""
        self._settle(abandoned=reason)

    def _settle(self, abandoned: str | None) -> None:
        if self._deferred.resolved:
            return
        usage: dict[str, Any] = {}
        problem = self._failed
        if problem is None:
            try:
                if self._stream:
                    if abandoned is None:
                        self._reader.finish()  # a last event not followed by a blank line
                    usage = self._reader.usage
                    if not self._reader.complete:
                        problem = abandoned or "stream ended before its final event"
                    elif not usage:
                        problem = "stream has no usage (OpenAI: request stream_options.include_usage)"
                else:
                    usage = self._reader.finish()  # raises unless the body is whole JSON
                    if not usage:
                        problem = "response body has no usage"
            except Exception as exc:
                problem = abandoned or f"response body unreadable: {exc}"
        self._deferred.resolve(incomplete(problem, usage) if problem else usage)

    def __enter__(self) -> "_Watch":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        """Around the app's read loop: the end of the body, a failed read, or (GeneratorExit)
        the app stopping early, which close() reports."""
        if exc_type is None:
            self.end()
        elif not issubclass(exc_type, GeneratorExit):
            self.abandon(f"reading the response failed: {exc_type.__name__}")
        return False


# Stream classes whose instances we watch: a subclass per class, made once.
_watched_classes: dict[type, type] = {}


def _watch_stream(stream: Any, watch: _Watch) -> bool:
    """Make ``stream`` report its chunks to ``watch``; False if it cannot be watched."""
    cls = type(stream)
    sub = _watched_classes.get(cls)
    if sub is None:
        if not hasattr(stream, "__dict__"):
            return False
        namespace: dict[str, Any] = {"__slots__": ()}
        if hasattr(cls, "__iter__"):
            namespace["__iter__"] = _iter
            namespace["close"] = _close
        if hasattr(cls, "__aiter__"):
            namespace["__aiter__"] = _aiter
            namespace["aclose"] = _aclose
        if len(namespace) == 1:
            return False
        sub = type("Watched" + cls.__name__, (cls,), namespace)
        _watched_classes[cls] = sub
    try:
        stream.__class__ = sub
    except TypeError:
        return False
    stream.__dict__["_otel_costs_watch"] = watch
    # A response dropped without being read or closed still resolves its span.
    weakref.finalize(stream, watch.abandon, "response dropped before its body was read")
    return True


def _base(stream: Any) -> Any:
    return type(stream).__mro__[1]


def _iter(self: Any):  # type: ignore[no-untyped-def]
    with self.__dict__["_otel_costs_watch"] as watch:
        for chunk in _base(self).__iter__(self):
            watch.feed(chunk)
            yield chunk


def _close(self: Any) -> None:
    try:
        _base(self).close(self)
    finally:
        self.__dict__["_otel_costs_watch"].abandon("response closed before its body was read to the end")


async def _aiter(self: Any):  # type: ignore[no-untyped-def]
    with self.__dict__["_otel_costs_watch"] as watch:
        async for chunk in _base(self).__aiter__(self):
            watch.feed(chunk)
            yield chunk


async def _aclose(self: Any) -> None:
    try:
        await _base(self).aclose(self)
    finally:
        self.__dict__["_otel_costs_watch"].abandon("response closed before its body was read to the end")
