"""Mapping batches in worker processes, so a collector uses more than one core.

Mapping is pure Python (:func:`otel_costs_collector.mapping.rows.map_request`, under the GIL), and it is most
of a collector's per-span work: in one process, ~1.1 cores are busy however many writer
threads there are. :class:`MapWorkers` hands each batch file to a worker process, which maps
it; the writer thread waits without the GIL and inserts the rows it sends back
(bench/collector_ingest.py measures both).

Workers are started with ``spawn`` (the collector has gRPC and ClickHouse threads, which a
forked child must not inherit) and made ready at start. A worker that dies is replaced and
its batch is reported as a retryable failure (the batch is retried, then spooled).
Thread-safe.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = ["MapWorkers", "WorkerLost"]

_log = logging.getLogger("otel_costs.collector")

#: The worker's own pricer (one per process, made by the initializer) and the raw TTL.
_pricer: Any = None
_raw_ttl_days: int | None = None
#: How often a worker checks that the collector that started it is alive (s).
_PARENT_CHECK_S = 0.5


class WorkerLost(ConnectionError):
    """A mapping worker died while it had the batch; retrying is right (a new one started)."""


def _start(prices_file: str | None, parent: int, raw_ttl_days: int | None) -> None:
    global _pricer, _raw_ttl_days
    _raw_ttl_days = raw_ttl_days
    from otel_costs.pricing import Pricer
    from otel_costs_collector.memory import quiet_gc, return_large_buffers

    return_large_buffers()
    # Ctrl-C at a terminal reaches every process of the group: the collector stops, flushing
    # what it holds, and closes its workers; a worker interrupted on its own would only print
    # a traceback and lose the batch it maps.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    _pricer = Pricer(prices_file)
    quiet_gc()
    # A worker waits on its queue forever, also when the collector was killed (its queue's
    # pipe stays open in the worker itself): leave with the parent.
    threading.Thread(target=_exit_with, args=(parent,), name="parent watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_S)
    os._exit(0)


def _ready() -> bool:
    return _pricer is not None


def _map_here(batch: bytes) -> Any:
    from otel_costs_collector.pipeline.batch_writer import map_rows

    return map_rows(batch, _pricer, _raw_ttl_days)


class MapWorkers:
    """``processes`` worker processes mapping batch files with prices from ``prices_file``."""

    def __init__(self, processes: int, prices_file: str | None, raw_ttl_days: int | None = None) -> None:
        self._processes = processes
        self._prices_file = prices_file
        self._raw_ttl_days = raw_ttl_days
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(self._prices_file, os.getpid(), self._raw_ttl_days),
        )
        # Started and priced now, not when the first batch is waiting for them.
        for future in [pool.submit(_ready) for _ in range(self._processes)]:
            future.result(timeout=120)
        return pool

    def map(self, batch: bytes) -> Any:
        """:func:`otel_costs_collector.pipeline.batch_writer.map_rows` in a worker. Raises ValueError for a damaged
        file, WorkerLost when the worker died (the pool is replaced)."""
        pool = self._pool
        try:
            return pool.submit(_map_here, batch).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    _log.error("a mapping worker died; starting new ones")
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._new_pool()
            raise WorkerLost("a mapping worker died while it had the batch") from None

    def close(self) -> None:
        """Stop the workers once their batches are mapped."""
        self._pool.shutdown(wait=True)
