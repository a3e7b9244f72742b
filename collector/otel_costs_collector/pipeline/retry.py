"""Retries around a :class:`~otel_costs_collector.pipeline.types.BatchSink`: safe because the
token is fixed per batch, so an insert that succeeded but timed out is not stored twice when
it is retried."""

from __future__ import annotations

import logging
import time
from typing import Callable

from otel_costs_collector.pipeline.types import BatchSink, Outcome, PermanentError

__all__ = ["Retrying"]

_log = logging.getLogger("otel_costs.collector")


class Retrying:
    """``sink``'s writes retried up to ``attempts`` times with doubling delays (seconds, from
    ``first_delay``), the same deduplication token each time. The last failure is raised, or
    the first :class:`PermanentError` (a batch storage refuses will not get better).
    Thread-safe when ``sink`` is; a write blocks while it waits."""

    def __init__(
        self,
        sink: BatchSink,
        *,
        attempts: int = 3,
        first_delay: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sink = sink
        self._attempts = attempts
        self._first_delay = first_delay
        self._sleep = sleep

    def write(self, data: bytes, token: str) -> list[Outcome]:
        for attempt in range(1, self._attempts + 1):
            try:
                return self._sink.write(data, token)
            except PermanentError:
                raise
            except Exception as exc:
                if attempt == self._attempts:
                    raise
                delay = self._first_delay * 2 ** (attempt - 1)
                _log.warning(
                    "batch write failed (attempt %d of %d), retrying in %.1f s: %s", attempt, self._attempts, delay, exc
                )
                self._sleep(delay)
        raise AssertionError("unreachable")
