"""The spooling layer: a batch storage cannot take now waits on disk, and is replayed in order.

``Spooling(sink, write_ahead, spool, …)`` wraps a plain write (otel_costs_collector/pipeline/types.py's
``BatchSink``): each batch is written ahead (write_ahead.py), then to ``sink``; one that cannot
be written (after the retries inside the sink) is handed to the spool (spool.py), fsynced, and
only then reported as stored, so a request is acknowledged once its spans are in ClickHouse
*or* on disk. While the spool holds anything, new batches queue behind it, so batches reach
storage in order. A replayer thread drains it oldest first with each batch's original
deduplication token, so a batch that did reach storage before a timeout is not counted twice.

A batch storage refuses (``PermanentError``) is written request by request: the requests it
refuses are set aside in ``rejected/`` with the reason and answered as rejected, the rest
stored. A request answered from the spool gets the outcome the Python mapping computes for it
(``assess``): the same one storage would have given.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.spool import Spool
from otel_costs_collector.pipeline.types import Batch, BatchSink, PermanentError
from otel_costs_collector.pipeline.write_ahead import WriteAheadLog

__all__ = ["MAX_FAILURES", "Spooling"]

_log = logging.getLogger("otel_costs.collector")
#: Replays of one spooled batch that may fail in a row, while storage answers queries, before
#: the batch is taken for the culprit and written request by request.
MAX_FAILURES = 5


class Spooling:
    """The batcher's ``write(records, spans)`` (call the object): stores a batch to ``sink``
    or, failing that, to the spool, and returns each request's outcome; plus the replayer
    thread. Call ``close()`` to stop the replayer.

    ``sink`` stores a batch file and returns the outcomes; ``assess(data)`` returns them
    without storing (for a spooled batch)."""

    def __init__(
        self,
        sink: BatchSink,
        write_ahead: WriteAheadLog,
        spool: Spool,
        assess: Callable[[bytes], list[Any]],
        *,
        retry_every: float = 1.0,
        on_event: Callable[[str, int], None] | None = None,
        refused: Callable[[bytes, str], list[Any]] | None = None,
        storage_ok: Callable[[], bool] = lambda: False,
        max_failures: int = MAX_FAILURES,
    ):
        self._write = sink.write
        self._wal = write_ahead
        self._spool = spool
        self._assess = assess
        self._refused = refused
        self._storage_ok = storage_ok
        self._max_failures = max_failures
        self._failures: dict[str, int] = {}  # spooled batch → replays failed in a row
        self._retry_every = retry_every
        self._on_event = on_event or (lambda kind, spans: None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._replay, name="otel-costs-spool", daemon=True)
        self._thread.start()

    def __call__(self, records: list[batch_file.Record], spans: int) -> list[Any]:
        """Store the requests (``spans`` in all) in storage or durably in the spool; returns
        their outcomes. Raises SpoolFull/OSError when neither is possible, or the storage
        error for a batch refused as invalid."""
        batch = Batch.of(records, spans)
        if len(self._spool):
            self._spool.append(batch)
        else:
            name = self._wal.begin(batch)
            try:
                outcomes = self._write(batch.data, batch.token)
            except Exception as exc:
                if isinstance(exc, PermanentError) and self._refused is not None:
                    # Storage refused something in the batch: find which request, store the rest.
                    left, outcomes, _ = self._one_by_one(batch, exc)
                    if not left:
                        self._wal.finish(name)
                        return outcomes
                    # storage went down meanwhile: what is left waits in the spool
                    self._wal.finish(name)
                    self._spool.append(Batch.of(left, spans))
                    self._on_event("spooled", spans)
                    self._wake.set()
                    return outcomes + self._assess(batch_file.encode(left))
                if isinstance(exc, PermanentError):
                    self._wal.finish(name)
                    raise
                _log.warning("storage unavailable, spooling %d spans: %s", spans, exc)
                self._wal.keep(name)
            else:
                self._wal.finish(name)
                return outcomes
        self._on_event("spooled", spans)
        self._wake.set()
        return self._assess(batch.data)

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _replay(self) -> None:
        while not self._stop.is_set():
            item = self._spool.oldest()
            if item is None:
                self._wake.wait(self._retry_every)
                self._wake.clear()
                continue
            name, batch = item
            try:
                outcomes = self._write(batch.data, batch.token)
            except Exception as exc:
                failures = self._failures[name] = self._failures.get(name, 0) + 1
                poison = isinstance(exc, PermanentError) or (failures >= self._max_failures and self._storage_ok())
                if poison and self._refused is not None:
                    # Refused, or failing again and again while storage answers: the batch's
                    # fault. Its requests are written one by one; the ones storage refuses
                    # are set aside, the rest stored.
                    try:
                        left, outcomes, set_aside = self._one_by_one(batch, exc)
                    except OSError as io_error:
                        _log.error("spool: %s", io_error)
                        left, outcomes, set_aside = batch_file.split(batch.data), [], 0
                    if left:  # storage went down meanwhile: keep what is left
                        rest = Batch.of(left, batch.spans)
                        if len(left) < len(batch.requests):
                            self._spool.rewrite(name, rest)
                        self._stop.wait(self._retry_every)
                        continue
                    self._failures.pop(name, None)
                    self._spool.remove(name)
                    if batch.spans > set_aside:
                        self._on_event("replayed", batch.spans - set_aside)
                    self._on_event("written", sum(getattr(o, "accepted", 0) for o in outcomes))
                    continue
                if isinstance(exc, PermanentError):
                    self._failures.pop(name, None)
                    self._spool.reject(name, f"storage refused it: {exc}")
                    self._on_event("rejected", batch.spans)
                    continue
                if failures == self._max_failures:
                    _log.error("spooled batch %s failed %d times in a row: %s", name, failures, exc)
                self._stop.wait(self._retry_every)  # storage still down
                continue
            self._failures.pop(name, None)
            self._spool.remove(name)
            self._on_event("replayed", batch.spans)
            self._on_event("written", sum(getattr(o, "accepted", 0) for o in outcomes))
            _log.info("replayed spooled batch %s (%d spans)", name, batch.spans)

    def _one_by_one(self, batch: Batch, first: BaseException) -> tuple[list[batch_file.Record], list[Any], int]:
        """Write a batch's requests one at a time (each with a token derived from the batch's,
        the same on every attempt). A request storage refuses — as invalid, or with any error
        while storage answers other queries — is set aside in rejected/ and answered as
        rejected with the reason. Returns the requests not written (storage went down: from
        the first one that failed so on), the outcomes of those done, in order, and how many
        spans were set aside."""
        assert self._refused is not None
        records = batch_file.split(batch.data)
        outcomes: list[Any] = []
        set_aside = 0
        for i, record in enumerate(records):
            data = batch_file.encode([record])
            try:
                outcomes.extend(self._write(data, f"{batch.token}:{i}"))
                continue
            except Exception as exc:
                if not (isinstance(exc, PermanentError) or self._storage_ok()):
                    return records[i:], outcomes, set_aside
                reason = f"storage refused this request: {exc}"
            self._spool.set_aside(Batch.of([record], 0), reason)
            refused = self._refused(data, reason)
            spans = sum(o.received for o in refused)
            set_aside += spans
            self._on_event("rejected", spans)
            outcomes.extend(refused)
        _log.error("a batch failed (%s); its %d requests were written one by one", first, len(records))
        return [], outcomes, set_aside

    def drain(self, timeout: float) -> bool:
        """Wait until the spool is empty (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while len(self._spool):
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.05)
        return True
