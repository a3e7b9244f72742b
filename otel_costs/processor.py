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
import weakref
from typing import Any, Mapping

from opentelemetry import baggage, trace
from opentelemetry.context import Context, get_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from . import conventions as cv
from . import deferred as _deferred
from . import global_provider as _global_provider
from .attribution import MAX_VALUE_LENGTH, attribution_from_baggage
from .costed_span import CostedSpan, cost_attributes
from .counting import CallLedger
from .overrides import PriceOverrides
from .pricing import Cost, Pricer, PricingStatus
from .usage import UsageError, fact_attributes, read_usage, with_facts

__all__ = ["CostSpanProcessor", "FORWARD_ENV", "DEFAULT_FORWARD", "DEFAULT_EXPORT_DELAY_MS"]

_log = logging.getLogger("otel_costs")

try:
    from opentelemetry.baggage import _BAGGAGE_KEY
except ImportError:  # a future API without it: fall back to baggage.get_all()
    _BAGGAGE_KEY = None  # type: ignore[assignment]

#: Which spans go downstream: "genai" (spans with GenAI usage) or "all".
FORWARD_ENV = "OTEL_COSTS_FORWARD"
DEFAULT_FORWARD = "genai"
#: Default exporter's batch delay: short, so a span is queryable within ~2 s.
#: ``OTEL_BSP_SCHEDULE_DELAY`` overrides it, as for any BatchSpanProcessor.
DEFAULT_EXPORT_DELAY_MS = 500
_MAX_LOGGED_ERRORS = 10
_MAX_COSTED = 256  # counting spans remembered (a call's spans end within moments)
_HTTPX_SCOPE = "opentelemetry.instrumentation.httpx"
# Attributes GenAI instrumentations set when they start a span for an LLM call.
_GENAI_START_NAMES = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.system",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "llm.request.type",
        "openinference.span.kind",
    }
)


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
        self._downstream: tuple[SpanProcessor, ...] = tuple(_as_processor(d) for d in downstream) or (
            _default_processor(),
        )
        self._errors = 0
        # (baggage dict, its attribution attributes); the strong reference keeps the
        # identity check sound. Swapped as one tuple, so threads never see a torn pair.
        self._last_baggage: tuple[object, dict[str, str]] = (None, {})
        # One call, two spans: a GenAI instrumentation's span and, inside it, the httpx
        # span our hooks cost. httpx span id → its GenAI parent's id, while the httpx span
        # runs; then the ledger is told (CallLedger.exchange_below) and decides.
        self._genai_parent_of: dict[int, int] = {}
        self._other_scope: object = None  # the last instrumentation scope seen that is not httpx's
        self._waiting: "weakref.WeakSet[_deferred.Deferred]" = weakref.WeakSet()
        # One call, one cost: spans of the same call (nested or side by side) and aggregates.
        self._ledger = CallLedger()
        # Counting spans by span id, the most recent: a later span of the same call (an outer
        # wrapper, another instrumentation's) adds the billed facts it says and they do not.
        self._costed: dict[int, CostedSpan] = {}
        self._facts_lost = 0  # spans whose billed facts reached their counted span too late
        self._aggregate = cost_attributes(Cost(PricingStatus.AGGREGATE, self._pricer.source))
        # Made while the global provider is the no-op default: unless the app sets its
        # provider as the global one soon (or hands it to its instrumentations), nothing
        # is recorded. If no span has come by then, say so (one WARNING a process) after a
        # delay and at shutdown.
        self._unseen = _global_provider.global_is_noop()
        if self._unseen:
            _global_provider.check_later(self)

    @property
    def pricer(self) -> Pricer:
        return self._pricer

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self._unseen:
            self._unseen = False
        try:
            scope = getattr(span, "_instrumentation_scope", None)
            if scope is not self._other_scope:  # most spans: one identity check
                if scope is not None and scope.name == _HTTPX_SCOPE:
                    self._note_genai_parent(span, parent_context)
                else:
                    self._other_scope = scope
            bag = _baggage_of(parent_context)
            if not bag:
                return
            # Every span in an attribute_to scope shares one baggage dict: filter it once.
            last = self._last_baggage
            if last[0] is bag:
                attrs = last[1]
            else:
                attrs = attribution_from_baggage(bag)
                self._last_baggage = (bag, attrs)
            if attrs:
                _add_attributes(span, attrs)
        except Exception:  # never into the app
            self._error("on_start")

    def on_end(self, span: ReadableSpan) -> None:
        out: ReadableSpan = span
        try:
            attrs = _raw_attributes(span)
            if self._genai_parent_of:
                parent = self._genai_parent_of.pop(span.context.span_id, None)
                if parent is not None and cv.HTTP_BODY in attrs:
                    self._ledger.exchange_below(parent, span.context.span_id)
            if attrs and cv.HTTP_BODY in attrs:
                self._after_body(span, attrs)
                return
            has_usage = bool(attrs) and not cv.USAGE_ATTRIBUTE_NAMES.isdisjoint(attrs)
            verdict = self._ledger.ended(span, attrs, has_usage)
            if has_usage:
                upstream = cv.PRICING_STATUS in attrs  # already priced upstream: kept
                counted_on = verdict.counted_on if verdict is not None and not upstream else None
                if counted_on is not None:
                    marks = {
                        cv.PRICING_STATUS: PricingStatus.COUNTED_ELSEWHERE.value,
                        cv.COUNTED_ON: f"{counted_on:016x}",
                    }
                    carrier = self._costed.get(counted_on)
                    if carrier is not None:
                        lost = self._give_facts(carrier, attrs)
                        if lost:
                            marks[cv.PRICING_ERROR] = lost
                            self._facts_lost += 1
                            if self._facts_lost <= _MAX_LOGGED_ERRORS:
                                _log.warning("otel_costs: %s (use a BatchSpanProcessor downstream)", lost)
                    out = CostedSpan.of(span, {**attrs, **marks}, self._pricer)
                elif verdict is not None and not upstream:  # an aggregate: its calls carry the cost
                    out = CostedSpan.of(span, {**attrs, **self._aggregate}, self._pricer)
                elif not upstream:
                    out = self._remember(CostedSpan.of(span, attrs, self._pricer))
            elif not self._forward_all:
                return
        except Exception:
            self._error("on_end")  # forward the span unpriced rather than lose it
        self._forward(out)

    def _remember(self, costed: ReadableSpan) -> ReadableSpan:
        """A counting span, kept a while so a later span of its call can add its billed facts."""
        costed_spans = self._costed
        if len(costed_spans) >= _MAX_COSTED:
            for key in list(costed_spans)[: _MAX_COSTED // 4]:  # oldest first; amortised
                costed_spans.pop(key, None)
        costed_spans[costed.context.span_id] = costed  # type: ignore[assignment]
        return costed

    def _give_facts(self, carrier: CostedSpan, attrs: Mapping[str, Any]) -> str | None:
        """Add the billed facts ``attrs`` (a span counted on ``carrier``) says and the
        carrier does not; returns why they were lost, or None."""
        try:
            mine, theirs = read_usage(carrier._source), read_usage(attrs)
        except UsageError:
            return None  # the carrier's usage is marked invalid; this span's is its own matter
        if mine is None or theirs is None:
            return None
        merged = with_facts(mine, theirs)
        if merged is mine:
            return None
        said = fact_attributes(mine)
        if carrier.add_facts({k: v for k, v in fact_attributes(merged).items() if k not in said}):
            return None
        facts = ", ".join(f"{k}={v}" for k, v in fact_attributes(theirs).items())
        return f"billed facts not on the counted span (exported before this one ended): {facts}"[:500]

    def _note_genai_parent(self, span: Span, parent_context: Context | None) -> None:
        parent = trace.get_current_span(parent_context)
        attrs = _raw_attributes(parent) if isinstance(parent, ReadableSpan) else None
        if attrs and not _GENAI_START_NAMES.isdisjoint(attrs) and parent.is_recording():
            if len(self._genai_parent_of) < _deferred.MAX_WAITING:
                self._genai_parent_of[span.context.span_id] = parent.get_span_context().span_id

    def _after_body(self, span: ReadableSpan, attrs: Mapping[str, Any]) -> None:
        """Forward an httpx LLM span once its response body was read (see httpx_hooks)."""
        source = {k: v for k, v in attrs.items() if k != cv.HTTP_BODY}
        pending = _deferred.claim(span.context.trace_id, span.context.span_id)
        if pending is None:  # the hooks' registry was full, or the body state is gone
            pending = _deferred.Deferred()
            pending.resolve(_deferred.incomplete("response body was not watched"))

        def deliver(extra: dict[str, Any]) -> None:
            try:
                self._forward(CostedSpan.of(span, {**source, **extra}, self._pricer))
            except Exception:
                self._error("forwarding a span after its body")

        self._waiting.add(pending)
        pending.then(deliver)

    def _forward(self, out: ReadableSpan) -> None:
        for processor in self._downstream:
            try:
                processor.on_end(out)
            except Exception:
                self._error("downstream on_end")

    def shutdown(self) -> None:
        if self._unseen:
            _global_provider.warn_if_global_is_noop()
        # Spans still waiting for a body that will not be read now: forward them, marked.
        for pending in list(self._waiting):
            pending.resolve(_deferred.incomplete("shut down before the response body was read"))
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
            _log.exception("otel_costs: %s failed (logged %d of at most %d)", where, self._errors, _MAX_LOGGED_ERRORS)


def _add_attributes(span: Span, attrs: dict[str, str]) -> None:
    """Add validated string attributes to a span that is being started.

    ``set_attributes`` re-validates each value under the span's lock (~1 µs an attribute
    here, most of what BaggageSpanProcessor costs). In ``on_start`` the span is not yet
    visible to any other thread and our values are already-checked short strings, so
    they go straight into the attribute dict when the SDK's limits allow it.
    """
    bounded = getattr(span, "_attributes", None)
    inner = getattr(bounded, "_dict", None)
    if type(inner) is dict and getattr(bounded, "_immutable", True) is False:
        maxlen = getattr(bounded, "maxlen", 0)
        max_value_len = getattr(bounded, "max_value_len", 0)
        if (maxlen is None or len(inner) + len(attrs) <= maxlen) and (
            max_value_len is None or max_value_len >= MAX_VALUE_LENGTH
        ):
            inner.update(attrs)
            return
    span.set_attributes(attrs)


def _raw_attributes(span: ReadableSpan) -> Mapping[str, Any]:
    # span.attributes is a MappingProxy over BoundedAttributes over a dict: reading through
    # both layers costs ~5 µs a span. Reach the dict where the SDK's layout allows it.
    inner = getattr(span, "_attributes", None)
    inner = getattr(inner, "_dict", inner)
    return inner if isinstance(inner, dict) else (span.attributes or {})


def _baggage_of(ctx: Context | None) -> Mapping[str, object] | None:
    # baggage.get_all() wraps the dict in a new proxy per call, which defeats the identity
    # cache in on_start; read the context value itself where the SDK lets us.
    if _BAGGAGE_KEY is None:
        return baggage.get_all(ctx)
    value = get_value(_BAGGAGE_KEY, ctx)
    return value if isinstance(value, dict) else None


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
