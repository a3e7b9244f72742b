"""The batcher's flush rules with several writer threads (a unit test of otel_costs_collector/pipeline/batcher.py:
``write`` is a recording stand-in whose calls the test holds and releases)."""

from __future__ import annotations

import threading

import pytest

from otel_costs_collector.pipeline.batch_file import Record
from otel_costs_collector.pipeline.batcher import BUSY_FACTOR, Batcher
from otel_costs_collector.pipeline.types import Batch, WriteFunction

LONG_AGE = 60.0  # seconds: no flush in these tests is due to age or a quiet gap unless a test says so


class HeldWrites:
    """``write`` that records each batch's span count and blocks until released."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, batch: Batch) -> list[str]:
        with self._lock:
            self.batches.append(batch.spans)
        self.started.release()
        assert self.release.wait(30), "test never released the write"
        return list(batch.requests)


def submit(batcher: Batcher, spans: int, token: str, results: dict) -> None:
    batcher.submit(Record(b"", None, token), spans, lambda outcome, error: results.__setitem__(token, (outcome, error)))


def started(write, **options) -> Batcher:
    batcher = Batcher(WriteFunction(write), **options)
    batcher.start()
    return batcher


@pytest.fixture
def held():
    writes = HeldWrites()
    yield writes
    writes.release.set()


def test_while_a_batch_is_written_the_next_waits_for_busy_factor_times_min_rows(held):
    batcher = started(held, min_rows=10, max_age=LONG_AGE, max_queued_rows=10_000, threads=2, quiet_gap=LONG_AGE)
    results: dict = {}
    submit(batcher, 10, "a", results)  # idle: flushed at min_rows
    assert held.started.acquire(timeout=10)
    submit(batcher, 10 * BUSY_FACTOR - 1, "b", results)  # one short of the busy threshold
    assert not held.started.acquire(timeout=0.5)
    submit(batcher, 1, "c", results)  # full: the second thread writes while the first is held
    assert held.started.acquire(timeout=10)
    assert held.batches == [10, 10 * BUSY_FACTOR]
    held.release.set()
    batcher.close()
    assert results == {"a": ("a", None), "b": ("b", None), "c": ("c", None)}


def test_a_waiting_batch_is_flushed_when_the_busy_writer_finishes(held):
    batcher = started(held, min_rows=10, max_age=LONG_AGE, max_queued_rows=10_000, threads=2, quiet_gap=LONG_AGE)
    results: dict = {}
    submit(batcher, 10, "a", results)
    assert held.started.acquire(timeout=10)
    submit(batcher, 10, "b", results)  # waits: a batch is being written
    assert not held.started.acquire(timeout=0.5)
    held.release.set()  # idle again: min_rows is full, long before max_age
    assert held.started.acquire(timeout=10)
    batcher.close()
    assert held.batches == [10, 10] and set(results) == {"a", "b"}


def test_while_a_batch_is_written_min_rows_go_when_requests_stop_coming(held):
    batcher = started(held, min_rows=10, max_age=LONG_AGE, max_queued_rows=10_000, threads=2, quiet_gap=0.05)
    results: dict = {}
    submit(batcher, 10, "a", results)
    assert held.started.acquire(timeout=10)
    submit(batcher, 5, "b", results)  # below min_rows: a quiet gap does not flush it
    assert not held.started.acquire(timeout=0.5)
    submit(batcher, 5, "c", results)  # min_rows, far below the busy threshold, then nothing more
    assert held.started.acquire(timeout=10)  # written while the first batch still is
    assert held.batches == [10, 10]
    held.release.set()
    batcher.close()
    assert set(results) == {"a", "b", "c"}


@pytest.mark.parametrize("threads", [1, 3])
def test_close_flushes_everything_and_stops_every_thread(threads):
    written: list[int] = []
    lock = threading.Lock()

    def write(batch: Batch) -> list[None]:
        with lock:
            written.append(batch.spans)
        return [None] * len(batch.requests)

    batcher = started(write, min_rows=1_000, max_age=LONG_AGE, max_queued_rows=10_000, threads=threads)
    results: dict = {}
    for i in range(5):
        submit(batcher, 3, f"r{i}", results)
    batcher.close(timeout=10)
    assert sum(written) == 15 and len(results) == 5
    assert not any(t.is_alive() for t in batcher._threads)


def test_a_failed_write_fails_its_requests_and_frees_the_writer():
    calls: list[int] = []

    def write(batch: Batch) -> list[None]:
        calls.append(batch.spans)
        if len(calls) == 1:
            raise ConnectionError("storage down")
        return [None] * len(batch.requests)

    batcher = started(write, min_rows=1, max_age=LONG_AGE, max_queued_rows=10_000, threads=2)
    errors: list = []
    answered = threading.Semaphore(0)

    def done(outcome, error) -> None:
        errors.append(error)
        answered.release()

    batcher.submit(Record(b"", None, "a"), 2, done)
    assert answered.acquire(timeout=10)
    # Below BUSY_FACTOR * min_rows: flushed only because the failed write left no writer busy.
    batcher.submit(Record(b"", None, "b"), 2, done)
    assert answered.acquire(timeout=10)
    batcher.close()
    assert calls == [2, 2] and isinstance(errors[0], ConnectionError) and errors[1] is None


def test_write_is_submit_and_wait_with_every_outcome_in_order():
    """The stage protocol's blocking ``write``: a batch of three requests is queued and
    answered in order (receivers ``submit`` one request without blocking instead)."""
    seen: list[Batch] = []

    def write(batch: Batch) -> list[str]:
        seen.append(batch)
        return [f"stored {t}" for t in batch.requests]

    batcher = started(write, min_rows=1_000, max_age=0.05, max_queued_rows=10_000)
    records = [Record(b"request %d" % i, None, f"r{i}") for i in range(3)]
    assert batcher.write(Batch.of(records, 6)) == ["stored r0", "stored r1", "stored r2"]
    batcher.close()
    assert [b.requests for b in seen] == [("r0", "r1", "r2")] and seen[0].spans == 6
