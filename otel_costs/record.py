"""``record_usage``: a costed GenAI span for calls no instrumentation sees.

Background jobs, batch APIs, or a provider without an instrumentation: call
``record_usage`` after the call and a GenAI span (current semconv names) is emitted under
the current attribution; the ``CostSpanProcessor`` on the tracer provider prices it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from . import conventions as cv
from . import global_provider as _global_provider
from .conventions import MAX_TOKENS, is_aggregate
from .usage import UsageError, billed_usd

__all__ = ["record_usage"]

_SCOPE = "otel_costs"


def _tokens(name: str, value: Any, most: int = MAX_TOKENS) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"record_usage: {name} must be an int, got {type(value).__name__}")
    if value < 0 or value > most:
        raise ValueError(f"record_usage: {name}={value} is outside 0..{most}")
    return value


def _billed(value: Any) -> str:
    if isinstance(value, float):  # its binary value is not the amount the provider billed
        raise ValueError("record_usage: provider_cost must be a Decimal, a decimal string or an int, never a float")
    try:
        return str(billed_usd(value, "provider_cost"))
    except UsageError as exc:
        raise ValueError(f"record_usage: {exc}") from None


def record_usage(
    *,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    web_searches: int = 0,
    service_tier: str | None = None,
    batch: bool = False,
    provider_cost: Decimal | str | int | None = None,
    operation: str = "chat",
    response_model: str | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    error: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tracer_provider: TracerProvider | None = None,
) -> None:
    """Emit one GenAI span for a call that already happened.

    Token counts follow the GenAI semconv: ``input_tokens`` *includes* the cache reads and
    writes, ``output_tokens`` includes reasoning. ``provider`` is a ``gen_ai.provider.name``
    (``openai``, ``anthropic``, ``gcp.gemini``, …). ``cache_write_1h_tokens`` is the part of
    ``cache_write_tokens`` cached for an hour (Anthropic), ``web_searches`` the searches the
    provider ran. ``service_tier`` is the tier the provider says it served (OpenAI's
    ``service_tier``, Anthropic's ``usage.service_tier``); ``batch=True`` a call made through
    the provider's batch API (results read from its files). Both choose the price.
    ``provider_cost`` is what the provider says it billed, in USD (a ``Decimal``, a decimal
    string or an int; never a float): it is the cost counted, our estimate kept beside it.
    ``start_time``/``end_time`` are ns since
    the epoch (default: now, a zero-length span). ``error`` marks the span failed with that
    description. The span goes to ``tracer_provider`` (default: the global one; while that
    is OpenTelemetry's no-op default, one WARNING a process names ``trace.set_tracer_provider``).

    Raises ValueError for a missing provider/model, an operation that is not a call
    (``invoke_agent``, ``create_agent``, ``execute_tool``), a non-int or out-of-range count,
    or cache parts larger than ``input_tokens``. Thread-safe.
    """
    for name, value in (("provider", provider), ("model", model), ("operation", operation)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"record_usage: {name} must be a non-empty string")
    counts: dict[str, Any] = {
        "gen_ai.usage.input_tokens": _tokens("input_tokens", input_tokens),
        "gen_ai.usage.output_tokens": _tokens("output_tokens", output_tokens),
        "gen_ai.usage.cache_read.input_tokens": _tokens("cache_read_tokens", cache_read_tokens),
        "gen_ai.usage.cache_creation.input_tokens": _tokens("cache_write_tokens", cache_write_tokens),
        "gen_ai.usage.reasoning.output_tokens": _tokens("reasoning_tokens", reasoning_tokens),
    }
    if cache_read_tokens + cache_write_tokens > input_tokens:
        raise ValueError(
            "record_usage: input_tokens includes cached tokens, so cache_read_tokens + "
            f"cache_write_tokens ({cache_read_tokens + cache_write_tokens}) cannot exceed it ({input_tokens})"
        )
    if reasoning_tokens > output_tokens:
        raise ValueError("record_usage: output_tokens includes reasoning_tokens, so it cannot be smaller")
    if _tokens("cache_write_1h_tokens", cache_write_1h_tokens) > cache_write_tokens:
        raise ValueError("record_usage: cache_write_1h_tokens is a part of cache_write_tokens, so it cannot be larger")
    if _tokens("web_searches", web_searches, cv.MAX_WEB_SEARCHES):
        counts[cv.USAGE_WEB_SEARCHES] = web_searches
    if cache_write_1h_tokens:
        counts[cv.USAGE_CACHE_WRITE_1H] = cache_write_1h_tokens
    if service_tier is not None:
        if not isinstance(service_tier, str) or not service_tier.strip() or len(service_tier) > 64:
            raise ValueError("record_usage: service_tier must be a non-empty string of at most 64 characters")
        counts[cv.USAGE_SERVICE_TIER] = service_tier
    if not isinstance(batch, bool):
        raise ValueError(f"record_usage: batch must be True or False, got {type(batch).__name__}")
    if batch:
        counts[cv.USAGE_BATCH] = True
    if provider_cost is not None:
        counts[cv.PROVIDER_COST] = _billed(provider_cost)
    attrs: dict[str, Any] = dict(attributes or {})
    attrs.update(counts)
    attrs["gen_ai.provider.name"] = provider
    attrs["gen_ai.request.model"] = model
    attrs["gen_ai.operation.name"] = operation
    if response_model:
        attrs["gen_ai.response.model"] = response_model
    if is_aggregate(attrs):
        raise ValueError(
            f"record_usage records one provider call; operation {operation!r} or its attributes mark "
            "an agent, workflow or tool span, whose cost is the sum of its calls and is never counted: "
            "use the call's operation (chat, text_completion, embeddings, generate_content)"
        )
    if tracer_provider is None:
        _global_provider.warn_if_global_is_noop()
    tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(_SCOPE)
    span = tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attrs, start_time=start_time)
    if error:
        span.set_attribute("error.type", error[:200])
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=end_time if end_time is not None else start_time)
