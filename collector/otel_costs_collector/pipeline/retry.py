"""Retries around a stage (otel_costs_collector.pipeline.types.Stage): safe because an item's
token is fixed, so an insert that succeeded but timed out is not stored twice when it is
retried."""

from __future__ import annotations

import logging
import time
from typing import Callable, Generic, TypeVar

from otel_costs_collector.pipeline.types import PermanentError, Stage

__all__ = ["Retrying"]

_log = logging.getLogger("otel_costs.collector")
T = TypeVar("T")
R = TypeVar("R")


class Retrying(Generic[T, R]):
    """``inner``'s writes retried up to ``attempts`` times with doubling delays (seconds, from
    ``first_delay``), the same item (and token) each time. The last failure is raised, or the
    first :class:`PermanentError` (what storage refuses will not get better). Thread-safe
    when ``inner`` is; a write blocks while it waits. No threads: ``start``/``close`` do nothing
    (the server starts and closes ``inner`` itself)."""

    def __init__(
        self,
        inner: Stage[T, R],
        *,
        attempts: int = 3,
        first_delay: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        what: str = "batch",
    ) -> None:
        self._inner = inner
        self._attempts = attempts
        self._first_delay = first_delay
        self._sleep = sleep
        self._what = what

    def start(self) -> None:
        pass

    def write(self, item: T) -> R:
        for attempt in range(1, self._attempts + 1):
            try:
                return self._inner.write(item)
            except PermanentError:
                raise
            except Exception as exc:
                if attempt == self._attempts:
                    raise
                delay = self._first_delay * 2 ** (attempt - 1)
                _log.warning(
                    "%s write failed (attempt %d of %d), retrying in %.1f s: %s",
                    self._what,
                    attempt,
                    self._attempts,
                    delay,
                    exc,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")

    def close(self) -> None:
        pass
