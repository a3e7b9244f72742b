"""Retries around a plain ``write(batch, token)``: safe because the token is fixed per batch,
so an insert that succeeded but timed out is not stored twice when it is retried."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

__all__ = ["retrying"]

_log = logging.getLogger("otel_costs.collector")


def retrying(
    write: Callable[[Any, str], Any],
    *,
    attempts: int = 3,
    first_delay: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
    give_up: Callable[[BaseException], bool] = lambda exc: False,
) -> Callable[[Any, str], Any]:
    """``write`` retried up to ``attempts`` times with doubling delays (seconds), the same
    deduplication token each time; returns what ``write`` returns. The last failure is
    raised, or the first one for which ``give_up`` is true (a batch storage refuses as
    invalid will not get better)."""

    def write_with_retries(batch: Any, token: str) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return write(batch, token)
            except Exception as exc:
                if attempt == attempts or give_up(exc):
                    raise
                delay = first_delay * 2 ** (attempt - 1)
                _log.warning(
                    "batch write failed (attempt %d of %d), retrying in %.1f s: %s", attempt, attempts, delay, exc
                )
                sleep(delay)
        raise AssertionError("unreachable")

    return write_with_retries
