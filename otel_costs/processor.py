"""``CostSpanProcessor``: attribution onto every span, cost onto GenAI spans.

The OTel SDK freezes a span's attributes before ``on_end`` runs (opentelemetry-python
#5614), so attribution is written in ``on_start`` (the span is still mutable) and cost is
written onto an enriched *copy* that ``on_end`` hands to the processors this one wraps.

Hooks run on the app's threads, in the span's hot path: they do no I/O, take no locks of
their own, and never raise into the app (a failure is logged, rate-limited, and the
original span is forwarded unchanged so nothing is lost).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from . import conventions as cv
from .attribution import attribution_from_baggage
from .pricing import Cost, PriceOverrides, Pricer, PricingStatus

__all__ = ["CostSpanProcessor", "FORWARD_ENV", "DEFAULT_FORWARD", "DEFAULT_EXPORT_DELAY_MS"]

_log = logging.getLogger("otel_costs")

#: Which spans go downstream: "genai" (spans with GenAI usage) or "all".
FORWARD_ENV = "OTEL_COSTS_FORWARD"
DEFAULT_FORWARD = "genai"
#: Default exporter's batch delay: short, so a span is queryable within ~2 s.
#: ``OTEL_BSP_SCHEDULE_DELAY`` overrides it, as for any BatchSpanProcessor.
DEFAULT_EXPORT_DELAY_MS = 500
_MAX_LOGGED_ERRORS = 10


class _CostedSpan(ReadableSpan):
    """A read-only copy of a finished span with cost attributes added."""

    def __init__(self, span: ReadableSpan, attributes: dict[str, Any]):
        super().__init__(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        # The copy holds plain tuples/dicts; keep the original's drop counts for exporters.
        self._dropped = (span.dropped_attributes, span.dropped_events, span.dropped_links)

    @property
    def dropped_attributes(self) -> int:
        return self._dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._dropped[2]


def cost_attributes(usage: cv.TokenUsage | None, cost: Cost) -> dict[str, Any]:
    """The attributes written onto a span for ``cost`` (names in :mod:`conventions`)."""
    out: dict[str, Any] = {
        cv.PRICING_STATUS: cost.status.value,
        cv.PRICING_SOURCE: cost.source,
        cv.PRICING_VERSION: cost.version,
    }
    if cost.provider:
        out[cv.PRICING_PROVIDER] = cost.provider
    if cost.model:
        out[cv.PRICING_MODEL] = cost.model
    if cost.error:
        out[cv.PRICING_ERROR] = cost.error[:500]
    if cost.total is not None:
        out[cv.COST_TOTAL_FLOAT] = float(cost.total)
        out[cv.COST_TOTAL] = _money(cost.total)
        out[cv.COST_INPUT] = _money(cost.input)
        out[cv.COST_OUTPUT] = _money(cost.output)
        out[cv.COST_CACHE_READ] = _money(cost.cache_read)
        out[cv.COST_CACHE_WRITE] = _money(cost.cache_write)
        out[cv.COST_CURRENCY] = cost.currency
    if usage is not None:
        n = cv.OTEL_COSTS
        out[n.input[0]] = usage.input_tokens
        out[n.output[0]] = usage.output_tokens
        out[n.cache_read[0]] = usage.cache_read_tokens
        out[n.cache_write[0]] = usage.cache_write_tokens
        out[n.reasoning[0]] = usage.reasoning_tokens
        out[cv.USAGE_CONVENTION] = usage.convention
        out[cv.USAGE_INPUT_SEMANTICS] = usage.input_semantics.value
    return out


def _money(value: Any) -> str:
    # Fixed-point, never "3.15E-4": readers parse this as Decimal.
    return format(value, "f")


def price_attributes(attributes: Mapping[str, Any], start_ns: int | None, pricer: Pricer) -> dict[str, Any] | None:
    """Cost attributes for a span's attributes, or None for a span without GenAI usage.

    Never raises for bad input: unreadable usage comes back as an INVALID_USAGE status.
    """
    try:
        usage = cv.read_usage(attributes)
    except cv.UsageError as exc:
        return cost_attributes(None, Cost(PricingStatus.INVALID_USAGE, "otel_costs", "", error=str(exc)))
    if usage is None:
        return None
    return cost_attributes(usage, pricer.price(usage, start_ns))


class CostSpanProcessor(SpanProcessor):
    """Adds attribution to every span and cost to GenAI spans, then forwards a copy.

    Args:
        *downstream: ``SpanProcessor``\\ s or ``SpanExporter``\\ s (an exporter is wrapped in
            a ``BatchSpanProcessor``) that receive the enriched spans. None: OTLP/gRPC to
            ``OTEL_EXPORTER_OTLP_*`` (default ``localhost:4317``), batched every
            :data:`DEFAULT_EXPORT_DELAY_MS` ms.
        forward: ``"genai"`` forwards only spans with GenAI usage, ``"all"`` every span.
            Default: ``OTEL_COSTS_FORWARD``, else ``"genai"``: the collector stores only GenAI
            spans, and the app's own exporters still see every span.
        prices: a :class:`PriceOverrides`, a path to an overrides TOML file, or None for
            ``OTEL_COSTS_PRICES_FILE``. Raises PriceOverridesError if it is invalid.

    Downstream processors get ``on_end`` with the enriched copy, and shutdown/force_flush;
    not ``on_start`` (they never see the live span). Thread-safe; hooks never raise.
    """

    def __init__(
        self,
        *downstream: SpanProcessor | SpanExporter,
        forward: str | None = None,
        prices: PriceOverrides | str | os.PathLike[str] | None = None,
    ) -> None:
        forward = (forward or os.environ.get(FORWARD_ENV, "") or DEFAULT_FORWARD).strip().lower()
        if forward not in ("genai", "all"):
            raise ValueError(f"forward must be 'genai' or 'all', got {forward!r}")
        self._forward_all = forward == "all"
        self._pricer = Pricer(prices)
        self._downstream: tuple[SpanProcessor, ...] = tuple(
            _as_processor(d) for d in downstream
        ) or (_default_processor(),)
        self._errors = 0

    @property
    def pricer(self) -> Pricer:
        return self._pricer

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            entries = baggage.get_all(parent_context)
            if entries:
                attrs = attribution_from_baggage(entries)
                if attrs:
                    span.set_attributes(attrs)
        except Exception:  # never into the app
            self._error("on_start")

    def on_end(self, span: ReadableSpan) -> None:
        out: ReadableSpan = span
        try:
            attrs = span.attributes
            if attrs and not cv.USAGE_ATTRIBUTE_NAMES.isdisjoint(attrs):
                plain = dict(attrs)
                if cv.PRICING_STATUS not in plain:  # already priced upstream: keep it
                    extra = price_attributes(plain, span.start_time, self._pricer)
                    if extra is not None:
                        plain.update(extra)
                        out = _CostedSpan(span, plain)
            elif not self._forward_all:
                return
        except Exception:
            self._error("on_end")  # forward the span unpriced rather than lose it
        for processor in self._downstream:
            try:
                processor.on_end(out)
            except Exception:
                self._error("downstream on_end")

    def shutdown(self) -> None:
        for processor in self._downstream:
            try:
                processor.shutdown()
            except Exception:
                self._error("downstream shutdown")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        ok = True
        for processor in self._downstream:
            try:
                ok = processor.force_flush(timeout_millis) and ok
            except Exception:
                self._error("downstream force_flush")
                ok = False
        return ok

    def _error(self, where: str) -> None:
        self._errors += 1
        if self._errors <= _MAX_LOGGED_ERRORS:
            _log.exception("otel_costs: %s failed (logged %d of at most %d)", where,
                           self._errors, _MAX_LOGGED_ERRORS)


def _as_processor(item: SpanProcessor | SpanExporter) -> SpanProcessor:
    if isinstance(item, SpanProcessor):
        return item
    if isinstance(item, SpanExporter):
        return BatchSpanProcessor(item)
    raise TypeError(f"CostSpanProcessor downstream must be a SpanProcessor or SpanExporter, got {type(item).__name__}")


def _default_processor() -> SpanProcessor:
    # Imported here: apps that pass their own downstream never load gRPC.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    delay = None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY") else DEFAULT_EXPORT_DELAY_MS
    return BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=delay)
