"""Pulls Stripe's invoices and credit notes into ``revenue_daily`` every few minutes.

A cycle reads every line created in the last :data:`LOOKBACK_DAYS` (an annual plan billed
eleven months ago is still revenue today) and writes them all, each replacing its earlier
version (revenue/store.py): a re-pull replaces, never adds. Stripe's errors (a refused key, a
rate limit, an outage, a body of the wrong shape) are logged once when they start, with the
HTTP status, and the pull is tried again next cycle, or after Stripe's ``retry-after``.
Lines left out or marked are logged once per pull. Nothing here touches ingestion.

Threading: ``cycle()`` and ``pull()`` do blocking HTTP and storage I/O on the caller's thread,
one at a time (a lock).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from otel_costs_collector.revenue.store import write_lines
from otel_costs_collector.revenue.stripe import DEFAULT_STRIPE_BASE, DEFAULT_TENANT_KEY, StripeError, fetch_revenue

__all__ = ["RevenuePuller", "RevenuePull", "LOOKBACK_DAYS"]

_log = logging.getLogger("otel_costs.collector")
#: How far back each pull reads invoices and credit notes (by creation).
LOOKBACK_DAYS = 400


@dataclass(frozen=True)
class RevenuePull:
    lines: int = 0  # lines written
    days: int = 0  # line-days written
    problems: list[str] = field(default_factory=list)  # lines left out or marked
    error: str = ""  # what went wrong, when it did
    retry_after: float | None = None


class RevenuePuller:
    """See the module docstring."""

    def __init__(
        self,
        client: Callable[[], Any],
        database: str,
        key: str,
        *,
        base: str = DEFAULT_STRIPE_BASE,
        tenant_key: str = DEFAULT_TENANT_KEY,
        lookback_days: int = LOOKBACK_DAYS,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self._client, self._db, self._key, self._base = client, database, key, base
        self._tenant_key, self._lookback, self._clock = tenant_key, lookback_days, clock
        self._lock = threading.Lock()
        self._failing = ""
        self._not_before = 0.0

    @property
    def failing(self) -> str:
        """Stripe's error of the last pull, "" when it was read."""
        return self._failing

    def cycle(self) -> float | None:
        """One pull unless Stripe asked to wait; returns the seconds it asked for, if it did.
        Raises on a storage error."""
        if time.monotonic() < self._not_before:
            return self._not_before - time.monotonic()
        return self.pull().retry_after

    def pull(self, since: datetime | None = None) -> RevenuePull:
        """Read and store every line created since ``since`` (default: the lookback), now.
        Stripe's errors are in the result, not raised; raises on a storage error."""
        with self._lock:
            since = since or self._clock() - timedelta(days=self._lookback)
            try:
                read = fetch_revenue(self._key, self._base, since, self._tenant_key)
            except StripeError as exc:
                if self._failing != str(exc):
                    _log.error("%s; retrying later", exc, extra={"fields": {"status": exc.status}})
                    self._failing = str(exc)
                if exc.retry_after is not None:
                    self._not_before = time.monotonic() + exc.retry_after
                return RevenuePull(error=str(exc), retry_after=exc.retry_after)
            if self._failing:
                _log.info("stripe read again")
                self._failing = ""
            days = write_lines(self._client(), self._db, read.lines)
            if read.problems:
                _log.warning(
                    "stripe: %d line(s) left out or marked: %s", len(read.problems), "; ".join(read.problems[:5])
                )
            return RevenuePull(lines=len(read.lines), days=days, problems=read.problems)
