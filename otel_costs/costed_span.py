"""The finished GenAI span ``CostSpanProcessor`` forwards: a read-only copy whose attributes
include its cost, computed when the exporter first reads them; and the cost attributes.

Thread-safety: the cost is computed on the exporter's thread; an app thread may add billed
facts another span of the call said (``add_facts``) until then, under one lock each holds for
a few bytecodes. Never raises into the exporter: a pricing bug gives an UNPRICED span.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from opentelemetry.sdk.trace import ReadableSpan

from . import conventions as cv
from .pricing import Cost, Pricer, PricingStatus
from .usage import UsageError, read_usage

__all__ = ["CostedSpan", "cost_attributes", "price_attributes"]

_log = logging.getLogger("otel_costs")
# Taken by the exporter's thread as it prices a span, and by an app thread adding a later
# span's billed facts to it (rare): each holds it for a few bytecodes, never while pricing.
_FACTS_LOCK = threading.Lock()


class CostedSpan(ReadableSpan):
    """A read-only copy of a finished GenAI span whose attributes include its cost.

    The cost is computed when the attributes are first read: by the exporter, on the
    BatchSpanProcessor's worker thread, not on the app's thread that ended the span.
    Computing twice from two threads gives equal results, so no lock is needed.
    """

    _source: Mapping[str, Any]
    _pricer: Pricer
    _priced: dict[str, Any] | None
    _sealed: bool  # its attributes were read (exported): facts added now would be lost

    @classmethod
    def of(cls, span: ReadableSpan, source: Mapping[str, Any], pricer: Pricer) -> ReadableSpan:
        state = getattr(span, "__dict__", None)
        if state is not None and "_attributes" in state:
            # Copying the finished span's state is ~10x cheaper than ReadableSpan(...);
            # events and links are shared, which is safe once a span has ended.
            copy = cls.__new__(cls)
            copy.__dict__.update(state)
            del copy.__dict__["_attributes"]
            copy.__dict__.pop("_otel_costs_body", None)  # see httpx_hooks
        else:
            copy = cls(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                events=span.events,
                links=span.links,
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        copy._source = source
        copy._pricer = pricer
        copy._priced = None
        copy._sealed = False
        copy.__dict__["_dropped_attributes"] = span.dropped_attributes
        return copy

    @property
    def _attributes(self) -> dict[str, Any]:
        priced = self._priced
        if priced is None:
            with _FACTS_LOCK:
                self._sealed = True
                source = self._source
            priced = dict(source)
            try:
                # A status set before (incomplete, counted elsewhere) is final.
                extra = (
                    None if cv.PRICING_STATUS in priced else price_attributes(priced, self._start_time, self._pricer)
                )
            except Exception as exc:  # an exporter thread must not die on our bug
                _log.exception("otel_costs: pricing failed")
                extra = {
                    cv.PRICING_STATUS: PricingStatus.UNPRICED.value,
                    cv.PRICING_ERROR: f"pricing failed: {type(exc).__name__}",
                }
            priced.update(extra or {})
            self._priced = priced
        return priced

    @_attributes.setter
    def _attributes(self, value: Mapping[str, Any] | None) -> None:
        # ReadableSpan.__init__ assigns it; we only ever read through the property.
        self.__dict__["_source"] = value or {}

    def add_facts(self, facts: Mapping[str, Any]) -> bool:
        """Add billed facts another span of the call said (usage.fact_attributes) before
        this span is priced; False when it was read already (exported: too late)."""
        with _FACTS_LOCK:
            if self._sealed:
                return False
            self._source = {**self._source, **facts}
            return True

    @property
    def dropped_attributes(self) -> int:
        # Our attributes are a plain dict; report what the original span dropped.
        return int(self.__dict__["_dropped_attributes"])


def cost_attributes(cost: Cost) -> dict[str, Any]:
    """The attributes written onto a span for ``cost`` (names in :mod:`conventions`).

    Kept short on purpose: every attribute is encoded and shipped with every GenAI span.
    Zero cache and web-search parts are left out (absent means zero), and so is the standard
    tier (absent means standard).
    """
    out: dict[str, Any] = {
        cv.PRICING_STATUS: cost.status.value,
        cv.PRICING_SOURCE: cost.source,
    }
    if cost.model:
        out[cv.PRICING_MODEL] = cost.model
    if cost.error:
        out[cv.PRICING_ERROR] = cost.error[:500]
    if cost.tier != "standard":
        out[cv.PRICING_TIER] = cost.tier
    total = cost.total
    if total is not None:
        out[cv.COST_TOTAL_FLOAT] = out[cv.COST_AMOUNT] = float(total)
        out[cv.COST_AMOUNT_CURRENCY] = cost.currency
        out[cv.COST_AMOUNT_SOURCE] = cost.source_of_cost
        out[cv.COST_TOTAL] = str(total)
        out[cv.COST_INPUT] = str(cost.input)
        out[cv.COST_OUTPUT] = str(cost.output)
        if cost.cache_read:
            out[cv.COST_CACHE_READ] = str(cost.cache_read)
        if cost.cache_write:
            out[cv.COST_CACHE_WRITE] = str(cost.cache_write)
        if cost.web_search:
            out[cv.COST_WEB_SEARCH] = str(cost.web_search)
        if cost.adjustment is not None:
            out[cv.COST_ADJUSTMENT] = str(cost.adjustment)
        out[cv.COST_CURRENCY] = cost.currency
    return out


def price_attributes(attributes: Mapping[str, Any], start_ns: int | None, pricer: Pricer) -> dict[str, Any] | None:
    """Cost attributes for a span's attributes, or None for a span without GenAI usage.
    (Aggregates never get here: the processor marks them as they end, counting.CallLedger.)

    Never raises for bad input: unreadable usage comes back as an INVALID_USAGE status.
    """
    try:
        usage = read_usage(attributes)
    except UsageError as exc:
        return cost_attributes(Cost(PricingStatus.INVALID_USAGE, pricer.source, error=str(exc)))
    if usage is None:
        return None
    return cost_attributes(pricer.price(usage, start_ns))
