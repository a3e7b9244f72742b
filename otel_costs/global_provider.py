"""The most common set-up mistake, made visible: a ``TracerProvider`` that has
``CostSpanProcessor`` but was never made the global one.

Instrumentations and :func:`record_usage` take the *global* provider; until
``trace.set_tracer_provider`` is called it is OpenTelemetry's no-op default, so they record
nothing and no cost ever arrives, without a word. This logs one WARNING on the
``otel_costs`` logger, once per process, naming the fix: when ``record_usage`` goes to the
no-op provider, and when a ``CostSpanProcessor`` made while the global provider was the
default has seen no span a few seconds later, or at shutdown (an app that hands its
provider to every instrumentation explicitly records spans, and is not warned).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from opentelemetry import trace

__all__ = ["MESSAGE", "CHECK_DELAY_S", "global_is_noop", "warn_if_global_is_noop", "check_later"]

_log = logging.getLogger("otel_costs")

MESSAGE = (
    "the global tracer provider is OpenTelemetry's no-op default, so instrumentations and "
    "record_usage record nothing: call opentelemetry.trace.set_tracer_provider(provider) with the "
    "TracerProvider that has CostSpanProcessor (or pass that provider to every instrumentation and "
    "to record_usage(tracer_provider=...))"
)
#: How long after a CostSpanProcessor is made while the global provider is the default the
#: check runs again (s): set-up code usually sets the global provider right after.
CHECK_DELAY_S = 5.0

_lock = threading.Lock()
_warned = False
_timer: threading.Timer | None = None
#: Processors to check when the timer fires: those with ``_unseen`` still True.
_pending: "weakref.WeakSet[Any]" = weakref.WeakSet()


def global_is_noop() -> bool:
    """True while ``trace.get_tracer_provider()`` records nothing (never set, or no-op)."""
    return isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def warn_if_global_is_noop() -> bool:
    """Log the WARNING (once per process) when the global provider is the no-op default;
    True when it is. Thread-safe; never raises."""
    global _warned
    try:
        if not global_is_noop():
            return False
        with _lock:
            first, _warned = not _warned, True
        if first:
            _log.warning("otel_costs: %s", MESSAGE)
        return True
    except Exception:  # a check for the user's benefit must never break their app
        return False


def check_later(processor: Any) -> None:
    """After :data:`CHECK_DELAY_S`, on a daemon timer (one per process), warn if the global
    provider is still the no-op default and ``processor._unseen`` is still True. Does nothing
    once the warning was given."""
    global _timer
    with _lock:
        if _warned:
            return
        _pending.add(processor)
        if _timer is not None and _timer.is_alive():
            return
        _timer = threading.Timer(CHECK_DELAY_S, _check_pending)
        _timer.daemon = True
        _timer.name = "otel_costs global provider check"
        _timer.start()


def _check_pending() -> None:
    with _lock:
        unseen = any(getattr(p, "_unseen", False) for p in list(_pending))
        _pending.clear()
    if unseen:
        warn_if_global_is_noop()
