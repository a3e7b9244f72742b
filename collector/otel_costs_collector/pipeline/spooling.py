"""The spooling layer: a batch storage cannot take now waits on disk, and is replayed in order.

``Spooling(inner, write_ahead, spool, …)`` is a stage (otel_costs_collector/pipeline/types.py)
around the stages that write a batch: each is written ahead (write_ahead.py), then to ``inner``; one that cannot
be written (after the retries inside the sink) is handed to the spool (spool.py), fsynced, and
only then reported as stored, so a request is acknowledged once its spans are in ClickHouse
*or* on disk. While the spool holds anything, new batches queue behind it, so batches reach
storage in order. A replayer thread drains it oldest first with each batch's original
deduplication token, so a batch that did reach storage before a timeout is not counted twice.

A batch storage refuses (``PermanentError``: storage.errors) is written request by request:
the requests it refuses are set aside in ``rejected/`` with the reason and answered as
rejected, the rest stored. Nothing else sets an acknowledged request aside: while storage
cannot take inserts (``StorageUnavailable``), even for hours while it answers queries, batches
wait in the spool. A spooled batch that failed ``MAX_FAILURES`` times in a row while storage
answers queries is tried request by request once in a while: a request that keeps failing
while its batch-mates are stored alone is the culprit and is set aside. An error of our own
code is logged with its traceback and counted (the ``bug`` event); its batch is kept. A
request answered from the spool gets the outcome the Python mapping computes for it
(``assess``): the same one storage would have given.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.spool import Spool
from otel_costs_collector.pipeline.types import Batch, BatchStage, PermanentError, StorageUnavailable
from otel_costs_collector.pipeline.write_ahead import WriteAheadLog

__all__ = ["MAX_FAILURES", "Spooling"]

_log = logging.getLogger("otel_costs.collector")
#: Replays of one spooled batch that may fail in a row, while storage answers queries, before
#: its requests are tried one by one (to find a culprit among them, if storage takes the others).
MAX_FAILURES = 5
#: A spooled batch that keeps failing is logged on its first failure and then every this many.
_SAY_EVERY = 60
#: Failures that mean "not now": storage (storage.errors), the disk, a mapping worker that died.
_NOT_NOW = (StorageUnavailable, OSError)
#: A probe that stored nothing after this many requests alone stops: storage is unwell.
_PROBE_GIVE_UP = 8


class Spooling:
    """The durable stage: ``write(batch)`` stores a batch through ``inner`` or, failing that,
    in the spool, and returns each request's outcome; ``start()`` starts the replayer thread,
    ``close()`` stops it (what is spooled stays on disk for the next start).

    ``inner`` stores a batch and returns the outcomes; ``assess(data)`` returns them without
    storing (for a spooled batch)."""

    def __init__(
        self,
        inner: BatchStage,
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
        self._inner = inner
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

    def start(self) -> None:
        self._thread.start()

    def write(self, batch: Batch) -> list[Any]:
        """Store the batch's requests in storage or durably in the spool; returns their
        outcomes. Raises SpoolFull/OSError when neither is possible, or the storage error
        for a batch refused as invalid when there is no ``refused``."""
        spans = batch.spans
        if len(self._spool):
            self._spool.append(batch)
        else:
            name = self._wal.begin(batch)
            try:
                outcomes = self._inner.write(batch)
            except PermanentError as exc:
                self._wal.finish(name)
                if self._refused is None:
                    raise
                # Storage refused something in the batch: find which request, store the rest.
                left, outcomes, _ = self._one_by_one(batch, exc)
                if not left:
                    return outcomes
                # storage went down meanwhile: what is left waits in the spool
                self._spool.append(Batch.of(left, spans))
                self._on_event("spooled", spans)
                self._wake.set()
                return outcomes + self._assess(batch_file.encode(left))
            except Exception as exc:
                self._not_written(exc, f"spooling {spans} spans", first=True)
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
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _not_written(self, exc: BaseException, then: str, first: bool) -> None:
        """Say why a write failed: a warning while storage is unavailable; the traceback and
        the ``bug`` event for an error of our own code (the batch is kept: nothing
        acknowledged is dropped for a bug, and it is written once the bug is fixed)."""
        if isinstance(exc, _NOT_NOW):
            if first:
                _log.warning("storage unavailable, %s: %s", then, exc)
            return
        self._on_event("bug", 1)
        if first:
            _log.error("a write failed with an error in otel-costs itself; %s (kept, not dropped)", then, exc_info=exc)

    def _replay(self) -> None:
        while not self._stop.is_set():
            item = self._spool.oldest()
            if item is None:
                self._wake.wait(self._retry_every)
                self._wake.clear()
                continue
            name, batch = item
            try:
                outcomes = self._inner.write(batch)
            except Exception as exc:
                failures = self._failures[name] = self._failures.get(name, 0) + 1
                permanent = isinstance(exc, PermanentError)
                probe = isinstance(exc, _NOT_NOW) and failures >= self._max_failures and self._storage_ok()
                if (permanent or probe) and self._refused is not None:
                    self._narrow_down(name, batch, exc, probe)
                    continue
                if permanent:
                    self._failures.pop(name, None)
                    self._spool.reject(name, f"storage refused it: {exc}")
                    self._on_event("rejected", batch.spans)
                    continue
                # Logged on the first failure and then every so often, with the traceback if a bug.
                self._not_written(exc, f"spooled batch {name} waits (failure {failures})", failures % _SAY_EVERY == 1)
                self._stop.wait(self._retry_every)  # storage still down
                continue
            self._done(name, batch, outcomes, 0)
            _log.info("replayed spooled batch %s (%d spans)", name, batch.spans)

    def _done(self, name: str, batch: Batch, outcomes: list[Any], set_aside: int) -> None:
        self._failures.pop(name, None)
        self._spool.remove(name)
        if batch.spans > set_aside:
            self._on_event("replayed", batch.spans - set_aside)
        self._on_event("written", sum(getattr(o, "accepted", 0) for o in outcomes))

    def _narrow_down(self, name: str, batch: Batch, exc: BaseException, probe: bool) -> None:
        """A spooled batch storage refused (``exc`` is a PermanentError) or that failed again
        and again while storage answers queries (``probe``): its requests are written one by
        one; what storage refuses is set aside, what cannot be written now stays spooled."""
        try:
            left, outcomes, set_aside = self._one_by_one(batch, exc, probe=probe)
        except OSError as io_error:
            _log.error("spool: %s", io_error)
            self._stop.wait(self._retry_every)
            return
        if not left:
            self._done(name, batch, outcomes, set_aside)
            return
        self._on_event("written", sum(getattr(o, "accepted", 0) for o in outcomes))
        if len(left) < len(batch.requests):
            self._spool.rewrite(name, Batch.of(left, batch.spans))
        if probe and len(left) == len(batch.requests):
            # Nothing of it could be written, alone or together: storage refuses every insert
            # while it answers queries (too many parts, read-only, disk full). It waits; the
            # next probe after as many failures again.
            self._failures[name] = 0
            _log.error("storage refuses every insert while it answers queries (%s); spooled batch %s waits", exc, name)
        self._stop.wait(self._retry_every)

    def _one_by_one(
        self, batch: Batch, first: BaseException, *, probe: bool = False
    ) -> tuple[list[batch_file.Record], list[Any], int]:
        """Write a batch's requests one at a time, each with a token of its own (the same on
        every attempt, whatever batch it is in). A request storage refuses (PermanentError) is
        set aside in rejected/ and answered as rejected with the reason. Any other failure
        means storage cannot take it now: without ``probe`` that request and the ones after
        it are left (storage went down); with ``probe`` every request is tried, and one that
        fails twice while a batch-mate was stored alone is the batch's culprit and set aside
        too. Errors of our own code (bugs) never set a request aside.

        Returns the requests left (in order), the outcomes of those written or set aside, and
        how many spans were set aside."""
        assert self._refused is not None
        records = batch_file.split(batch.data)
        outcomes: list[Any] = []
        left: list[batch_file.Record] = []
        suspects: list[batch_file.Record] = []
        set_aside = stored = 0
        for record in records:
            if (left and not probe) or (probe and not stored and len(suspects) >= _PROBE_GIVE_UP):
                left.append(record)  # storage cannot take anything now: the rest wait too
                continue
            try:
                outcomes.extend(self._write_alone(record))
                stored += 1
            except PermanentError as exc:
                set_aside += self._set_aside(record, f"storage refused this request: {exc}", outcomes)
            except Exception as exc:
                if probe and isinstance(exc, _NOT_NOW):
                    suspects.append(record)
                else:
                    self._not_written(exc, "the request waits in the spool", first=True)
                    left.append(record)
        for record in suspects:
            if stored:  # storage takes its batch-mates: once more alone, then it is the culprit
                try:
                    outcomes.extend(self._write_alone(record))
                    continue
                except Exception as again:
                    if isinstance(again, (PermanentError, *_NOT_NOW)):
                        reason = f"storage refused this request while it stored its batch-mates: {again}"
                        set_aside += self._set_aside(record, reason, outcomes)
                        continue
                    self._not_written(again, "the request waits in the spool", first=True)
            left.append(record)
        if set_aside or stored:
            _log.error("a batch failed (%s); its %d requests were written one by one", first, len(records))
        order = {id(r): i for i, r in enumerate(records)}
        return sorted(left, key=lambda r: order[id(r)]), outcomes, set_aside

    def _write_alone(self, record: batch_file.Record) -> list[Any]:
        # The request's own token: a request written alone before a crash or a rewrite of its
        # spooled batch is recognised, whatever its position.
        token = record.request_token
        return self._inner.write(Batch(batch_file.encode([record]), f"alone:{token}", (token,), 0))

    def _set_aside(self, record: batch_file.Record, reason: str, outcomes: list[Any]) -> int:
        """Keep ``record`` in rejected/ with ``reason``; appends its outcomes (rejected) and
        returns its span count. Raises OSError."""
        assert self._refused is not None
        self._spool.set_aside(Batch.of([record], 0), reason)
        refused = self._refused(batch_file.encode([record]), reason)
        spans = sum(o.received for o in refused)
        self._on_event("rejected", spans)
        outcomes.extend(refused)
        return int(spans)

    def drain(self, timeout: float) -> bool:
        """Wait until the spool is empty (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while len(self._spool):
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.05)
        return True
