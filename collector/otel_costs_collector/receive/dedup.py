"""Requests already stored, so a retried request is answered without storing it twice.

An exporter retries a request whose answer it did not get, for example because the
collector crashed between the insert and the answer. Rows carry their request's token
(see mapping), so after a restart the tokens of the last ``window`` seconds are reloaded
from storage and from the spool; while running, tokens are added as batches are stored.
A retry that arrives while the first attempt is still queued waits for that attempt.

Scope: one collector. Behind a load balancer, a retry that reaches another collector is
not recognised; route exporters to one collector (sticky connections) for exactly once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

from otel_costs_collector.sql import load as sql

__all__ = ["RecentRequests", "load_recent_tokens"]


class RecentRequests:
    """Tokens stored within the last ``window`` seconds. Use from one event loop thread."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic):
        self._window = window
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, token: str) -> bool:
        self._evict()
        return token in self._expiry

    def add(self, tokens: Iterable[str]) -> None:
        expires = self._clock() + self._window
        for token in tokens:
            if token:
                self._expiry[token] = expires
                self._expiry.move_to_end(token)
        self._evict()

    def _evict(self) -> None:
        now = self._clock()
        while self._expiry:
            token, expires = next(iter(self._expiry.items()))
            if expires > now:
                break
            del self._expiry[token]


def load_recent_tokens(client: Any, db: str, window_s: int) -> list[str]:
    """Request tokens stored in the last ``window_s`` seconds. Raises on storage errors."""
    rows = client.query(sql(__package__, "recent_tokens", db=db), parameters={"window": int(window_s)}).result_rows
    return [r[0] for r in rows]
