"""Batches requests by size and age in front of a plain ``write(records, spans)``.

Receivers ``submit`` one request (a batch-file record) with its span count and a
completion callback; a single writer thread takes the pending requests and flushes when
``min_rows`` spans are pending (group commit: while one insert runs the next batch
gathers, so under load batches grow large) or the oldest has waited ``max_age`` seconds (a
trickle of spans becomes about one insert per ``max_age``, as ClickHouse wants), then
calls every callback with its request's outcome, or with the exception. Memory is
bounded: past ``max_queued_rows`` spans ``submit`` raises :class:`Overloaded` and the
receiver tells the client to retry later.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from .batch_file import Record

__all__ = ["Batcher", "Overloaded"]

_log = logging.getLogger("otel_costs.collector")
#: ``done(outcome, None)`` once stored, ``done(None, exception)`` when not.
Done = Callable[[Any, BaseException | None], None]


class Overloaded(Exception):
    """The queue is full; retry later."""


class Batcher:
    """Thread-safe ``submit``; one background writer thread."""

    def __init__(self, write: Callable[[list[Record], int], list[Any]], *, min_rows: int, max_age: float,
                 max_queued_rows: int, on_flush: Callable[[int, float, BaseException | None], None] | None = None):
        self._write = write
        self._min_rows = min_rows
        self._max_age = max_age
        self._max_queued = max_queued_rows
        self._on_flush = on_flush
        self._cond = threading.Condition()
        self._pending: list[tuple[Record, int, Done]] = []
        self._pending_rows = 0
        self._oldest = 0.0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="otel-costs-writer", daemon=True)
        self._thread.start()

    @property
    def queued_rows(self) -> int:
        return self._pending_rows

    def submit(self, record: Record, spans: int, done: Done) -> None:
        """Queue a request of ``spans`` spans; ``done`` is called from the writer thread.
        Raises Overloaded."""
        n = spans
        with self._cond:
            if self._closing:
                raise Overloaded("collector is shutting down")
            if self._pending_rows and self._pending_rows + n > self._max_queued:
                raise Overloaded(f"{self._pending_rows} spans queued; limit {self._max_queued}")
            first = not self._pending
            if first:
                self._oldest = time.monotonic()
            self._pending.append((record, n, done))
            self._pending_rows += n
            if first or self._pending_rows >= self._min_rows:
                self._cond.notify()  # start the age timer, or flush a full batch now

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is pending and stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take(self) -> list[tuple[Record, int, Done]] | None:
        with self._cond:
            while True:
                if self._pending:
                    due = self._oldest + self._max_age
                    now = time.monotonic()
                    if self._closing or self._pending_rows >= self._min_rows or now >= due:
                        break
                    self._cond.wait(due - now)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()
            taken, self._pending, self._pending_rows = self._pending, [], 0
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            spans = sum(n for _, n, _ in taken)
            started = time.monotonic()
            error: BaseException | None = None
            outcomes: list[Any] = []
            try:
                outcomes = self._write([record for record, _, _ in taken], spans)
                if len(outcomes) != len(taken):
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(taken)} requests")
            except Exception as exc:
                error = exc
                _log.error("writing %d spans failed: %s", spans, exc)
            if self._on_flush is not None:
                self._on_flush(spans, time.monotonic() - started, error)
            for i, (_, _, done) in enumerate(taken):
                try:
                    done(outcomes[i] if error is None else None, error)
                except Exception:
                    _log.exception("completion callback failed")
