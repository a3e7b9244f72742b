"""Attributes a span gets after it ended: an HTTP client span ends when the response
headers arrive, but an LLM call's usage is in the body the app reads afterwards.

The httpx hooks register a :class:`Deferred` for such a span and resolve it when the body
is read (or abandoned); ``CostSpanProcessor.on_end`` claims it and forwards the span once
it is resolved. The registry holds deferreds weakly: one nobody claims (no
CostSpanProcessor installed) disappears with the response that would resolve it.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable

from . import conventions as cv
from .pricing import PricingStatus

__all__ = ["Deferred", "expect", "claim", "incomplete", "MAX_WAITING"]

#: Responses being read at once whose spans wait for their body; past this a span is
#: forwarded without its body's usage (marked incomplete) rather than held.
MAX_WAITING = 10_000

_lock = threading.Lock()
_waiting: "weakref.WeakValueDictionary[tuple[int, int], Deferred]" = weakref.WeakValueDictionary()


class Deferred:
    """Resolved once with a dict of attributes; runs its one callback then. Thread-safe."""

    __slots__ = ("_lock", "_value", "_callback", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._callback: Callable[[dict[str, Any]], None] | None = None

    @property
    def resolved(self) -> bool:
        return self._value is not None

    def resolve(self, value: dict[str, Any]) -> None:
        """Set the value (later calls are ignored) and run the callback, if set."""
        with self._lock:
            if self._value is not None:
                return
            self._value = value
            callback, self._callback = self._callback, None
        if callback is not None:
            callback(value)

    def then(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Run ``callback(value)`` on resolution: now if resolved, else on the resolving thread."""
        with self._lock:
            if self._value is None:
                self._callback = callback
                return
            value = self._value
        callback(value)


def expect(trace_id: int, span_id: int) -> Deferred | None:
    """Register a deferred for a span; None when :data:`MAX_WAITING` are already waiting.
    The caller keeps the only strong reference until it resolves."""
    with _lock:
        if len(_waiting) >= MAX_WAITING:
            return None
        deferred = Deferred()
        _waiting[(trace_id, span_id)] = deferred
        return deferred


def claim(trace_id: int, span_id: int) -> Deferred | None:
    """Take the span's deferred out of the registry (once)."""
    with _lock:
        return _waiting.pop((trace_id, span_id), None)


def incomplete(reason: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """Attributes for a call whose usage is unknown or partial: the usage seen (zeros if
    none), marked ``incomplete`` with the reason, so it is stored but never costed."""
    out: dict[str, Any] = {"gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0}
    out.update(usage or {})
    out[cv.PRICING_STATUS] = PricingStatus.INCOMPLETE.value
    out[cv.PRICING_ERROR] = reason[:500]
    return out
