"""Retries around a plain ``write(rows, token)``: safe because the token is fixed per batch,
so an insert that succeeded but timed out is not stored twice when it is retried."""

from __future__ import annotations

import logging
import time
from typing import Callable

from .mapping import Columns
from .writer import batch_token

__all__ = ["retrying"]

_log = logging.getLogger("otel_costs.collector")


def retrying(write: Callable[[Columns, str], None], *, attempts: int = 3, first_delay: float = 0.2,
             sleep: Callable[[float], None] = time.sleep,
             give_up: Callable[[BaseException], bool] = lambda exc: False) -> Callable[..., None]:
    """``write`` retried up to ``attempts`` times with doubling delays (seconds), the same
    deduplication token each time. The last failure is raised, or the first one for which
    ``give_up`` is true (a batch storage refuses as invalid will not get better)."""

    def write_with_retries(rows: Columns, token: str | None = None) -> None:
        token = token or batch_token(rows)
        for attempt in range(1, attempts + 1):
            try:
                write(rows, token)
                return
            except Exception as exc:
                if attempt == attempts or give_up(exc):
                    raise
                delay = first_delay * 2 ** (attempt - 1)
                _log.warning("write of %d rows failed (attempt %d of %d), retrying in %.1f s: %s",
                             len(rows), attempt, attempts, delay, exc)
                sleep(delay)

    return write_with_retries
