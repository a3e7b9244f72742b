"""The batching stage: gathers requests by size and age in front of the stages that store a
batch (otel_costs_collector.pipeline.types.Stage).

Receivers ``submit`` one request (a batch-file record) with its span count and a
completion callback; ``threads`` writer threads take the pending requests and flush when
``min_rows`` spans are pending (group commit: while inserts run the next batch gathers,
so under load batches grow large) or the oldest has waited ``max_age`` seconds (a trickle
of spans becomes about one insert per ``max_age``, as ClickHouse wants), then call every
callback with its request's outcome, or with the exception. With more than one thread,
``write`` is called concurrently (one batch per thread); while a batch is being written,
the next one waits for :data:`BUSY_FACTOR` times ``min_rows`` (or ``max_age``, or a
:data:`QUIET_GAP` without requests): a batch has a fixed cost (ClickHouse plans the mapping
query anew, ~0.1 s), so under load batches grow instead of multiplying, and an idle
collector still flushes at ``min_rows``. Memory
is bounded: past ``max_queued_rows`` spans ``submit`` raises :class:`Overloaded` and the
receiver tells the client to retry later.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.batch_file import Record
from otel_costs_collector.pipeline.types import Batch, BatchStage

__all__ = ["BUSY_FACTOR", "FULL_BYTES", "QUIET_GAP", "Batcher", "Overloaded"]

_log = logging.getLogger("otel_costs.collector")
#: ``done(outcome, None)`` once stored, ``done(None, exception)`` when not.
Done = Callable[[Any, BaseException | None], None]
#: While another batch is being written, a batch is full at this many times ``min_rows``
#: (bench/collector_ingest.py: 2 writers at 128 requests in flight, 4096 against 32768).
BUSY_FACTOR = 8
#: ... unless it holds ``min_rows`` and no request has come for this long (seconds): the
#: senders are waiting for answers, so waiting for more only delays them (it matters with
#: few requests in flight; see docs/performance.md). Short enough for that, long against the
#: gaps of steady traffic.
QUIET_GAP = 0.05
#: A batch is also full at this many request bytes, however few spans it holds: large
#: requests are written at once instead of waiting ``max_age`` while the memory they hold
#: keeps others out (otel_costs_collector.receive.ingest.RequestBytes).
FULL_BYTES = 32 << 20


class Overloaded(Exception):
    """The queue is full; retry later."""


class Batcher:
    """Thread-safe ``submit`` (and ``write``); ``threads`` writer threads, started by
    ``start()``, each writing a batch at a time to ``inner``."""

    def __init__(
        self,
        inner: BatchStage,
        *,
        min_rows: int,
        max_age: float,
        max_queued_rows: int,
        on_flush: Callable[[int, float, BaseException | None], None] | None = None,
        threads: int = 1,
        quiet_gap: float = QUIET_GAP,
    ):
        self._inner = inner
        self._min_rows = min_rows
        self._max_age = max_age
        self._quiet_gap = quiet_gap
        self._max_queued = max_queued_rows
        self._on_flush = on_flush
        self._cond = threading.Condition()
        self._pending: list[tuple[Record, int, Done]] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._oldest = 0.0
        self._newest = 0.0
        self._busy = 0  # writer threads inside write()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._run, name=f"otel-costs-writer-{i}", daemon=True) for i in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def queued_rows(self) -> int:
        return self._pending_rows

    def submit(self, record: Record, spans: int, done: Done) -> None:
        """Queue a request of ``spans`` spans; ``done`` is called from a writer thread.
        Raises Overloaded."""
        n = spans
        with self._cond:
            if self._closing:
                raise Overloaded("collector is shutting down")
            if self._pending_rows and self._pending_rows + n > self._max_queued:
                raise Overloaded(f"{self._pending_rows} spans queued; limit {self._max_queued}")
            first = not self._pending
            self._newest = time.monotonic()
            if first:
                self._oldest = self._newest
            self._pending.append((record, n, done))
            self._pending_rows += n
            self._pending_bytes += len(record.request)
            if first or self._pending_rows >= self._min_rows or self._pending_bytes >= FULL_BYTES:
                self._cond.notify()  # start the age timer, or flush a full batch now

    def write(self, batch: Batch) -> list[Any]:
        """Queue ``batch``'s requests and wait until they are written (the stage protocol;
        receivers ``submit`` instead, without blocking): returns each request's outcome, in
        order. Raises Overloaded, or the error of the write that held them."""
        records = batch_file.split(batch.data)
        answers: list[tuple[Any, BaseException | None]] = [(None, None)] * len(records)
        left = threading.Semaphore(0)

        def done_with(i: int) -> Done:
            def done(outcome: Any, error: BaseException | None) -> None:
                answers[i] = (outcome, error)
                left.release()

            return done

        for i, record in enumerate(records):  # the batch's spans count once, with its first request
            self.submit(record, batch.spans if i == 0 else 0, done_with(i))
        for _ in records:
            left.acquire()
        for _, error in answers:
            if error is not None:
                raise error
        return [outcome for outcome, _ in answers]

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is pending and stop the writer threads (``timeout`` seconds in all)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _take(self) -> list[tuple[Record, int, Done]] | None:
        with self._cond:
            while True:
                if self._pending:
                    due = self._oldest + self._max_age
                    if self._busy and self._pending_rows >= self._min_rows:
                        due = min(due, self._newest + self._quiet_gap)
                    now = time.monotonic()
                    full = self._min_rows * (BUSY_FACTOR if self._busy else 1)
                    if self._closing or self._pending_rows >= full or self._pending_bytes >= FULL_BYTES or now >= due:
                        break
                    self._cond.wait(due - now)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()
            taken, self._pending, self._pending_rows, self._pending_bytes = self._pending, [], 0, 0
            self._busy += 1
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
                outcomes = self._inner.write(Batch.of([record for record, _, _ in taken], spans))
                if len(outcomes) != len(taken):
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(taken)} requests")
            except Exception as exc:
                error = exc
                _log.error("writing %d spans failed: %s", spans, exc)
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()  # a batch waiting for BUSY_FACTOR may be full now
            if self._on_flush is not None:
                self._on_flush(spans, time.monotonic() - started, error)
            for i, (_, _, done) in enumerate(taken):
                try:
                    done(outcomes[i] if error is None else None, error)
                except Exception:
                    _log.exception("completion callback failed")
