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
             sleep: Callable[[float], None] = time.sleep) -> Callable[[Columns], None]:
    """``write`` retried up to ``attempts`` times with doubling delays (seconds), the same
    deduplication token each time. The last failure is raised."""

    def write_with_retries(rows: Columns) -> None:
        token = batch_token(rows)
        for attempt in range(1, attempts + 1):
            try:
                write(rows, token)
                return
            except Exception as exc:
                if attempt == attempts:
                    raise
                delay = first_delay * 2 ** (attempt - 1)
                _log.warning("write of %d rows failed (attempt %d of %d), retrying in %.1f s: %s",
                             len(rows), attempt, attempts, delay, exc)
                sleep(delay)

    return write_with_retries
