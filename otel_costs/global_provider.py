"""The most common set-up mistake, made visible: a ``TracerProvider`` that has
``CostSpanProcessor`` but was never made the global one.

Instrumentations and :func:`record_usage` take the *global* provider; until
``trace.set_tracer_provider`` is called it is OpenTelemetry's no-op default, so they record
nothing and no cost ever arrives, without a word. This logs one WARNING on the
``otel_costs`` logger, once per process, naming the fix.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry import trace

__all__ = ["MESSAGE", "CHECK_DELAY_S", "global_is_noop", "warn_if_global_is_noop", "check_later"]

_log = logging.getLogger("otel_costs")

MESSAGE = ("the global tracer provider is OpenTelemetry's no-op default, so instrumentations and "
           "record_usage record nothing: call opentelemetry.trace.set_tracer_provider(provider) with the "
           "TracerProvider that has CostSpanProcessor (or pass that provider to every instrumentation and "
           "to record_usage(tracer_provider=...))")
#: How long after a CostSpanProcessor is made while the global provider is the default the
#: check runs again (s): set-up code usually sets the global provider right after.
CHECK_DELAY_S = 5.0

_lock = threading.Lock()
_warned = False
_timer: threading.Timer | None = None


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


def check_later(delay_s: float | None = None) -> None:
    """Check once more after ``delay_s`` (default :data:`CHECK_DELAY_S`) on a daemon timer,
    at most one pending per process. Does nothing once the warning was given."""
    global _timer
    with _lock:
        if _warned or (_timer is not None and _timer.is_alive()):
            return
        _timer = threading.Timer(CHECK_DELAY_S if delay_s is None else delay_s, warn_if_global_is_noop)
        _timer.daemon = True
        _timer.name = "otel_costs global provider check"
        _timer.start()
