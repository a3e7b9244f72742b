"""The plain ``write(batch, token)`` of a batch file (otel_costs_collector/pipeline/batch_file.py) into
ClickHouse, answering what became of each request in it. Batching, retries and the spool
wrap it.

:class:`BatchWriter` maps each request with :func:`otel_costs_collector.mapping.rows.map_request`, the one
place that decides what a span means (:func:`map_rows`: in a worker process when the
collector has them), and inserts the rows column-wise, for embedded and server storage
alike. It is idempotent per token: the rows are inserted with the batch's token, so a
replayed batch is dropped by every table that already has it. Not thread-safe: one thread
per writer (:class:`WriterPool` shares several among threads).
"""

from __future__ import annotations

import queue
from typing import Any, Callable, NamedTuple

from otel_costs.pricing import Pricer
from otel_costs_collector.mapping.rows import Link, map_request, oldest_ns, span_count
from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.held import HeldCalls
from otel_costs_collector.pipeline.types import Outcome
from otel_costs_collector.storage.errors import PermanentError
from otel_costs_collector.storage.insert import ClickHouseWriter

__all__ = ["Mapped", "BatchWriter", "WriterPool", "assess", "map_rows", "refused"]


class Mapped(NamedTuple):
    """A batch file's rows, the links of its spans without usage (otel_costs_collector.mapping.calls) and each
    request's outcome."""

    rows: list[list[Any]]
    links: list[Link]
    outcomes: list[Outcome]


def map_rows(batch: bytes, pricer: Pricer, raw_ttl_days: int | None = None) -> Mapped:
    """The mapping of a write, in whichever process runs it (otel_costs_collector.pipeline.map_workers); spans
    older than ``raw_ttl_days`` are rejected. Raises batch_file.Damaged for a damaged file."""
    rows: list[list[Any]] = []
    links: list[Link] = []
    outcomes = []
    oldest = oldest_ns(raw_ttl_days)
    for request, tenant, token in batch_file.decode(batch):
        result = map_request(request, pricer, tenant, token=token, oldest_ns=oldest)
        rows.extend(result.rows)
        links.extend(result.links)
        outcomes.append(Outcome.of(result))
    return Mapped(rows, links, outcomes)


def assess(batch: bytes, pricer: Pricer, raw_ttl_days: int | None = None) -> list[Outcome]:
    """Each request's outcome without writing: for a batch spooled while storage is down,
    whose requests are answered before it is mapped. Raises batch_file.Damaged for a damaged batch."""
    return map_rows(batch, pricer, raw_ttl_days).outcomes


def refused(batch: bytes, pricer: Pricer, reason: str) -> list[Outcome]:
    """Each request's outcome when storage refused the batch: its spans rejected with
    ``reason`` (the sender is told, and does not resend)."""
    try:
        assessed = assess(batch, pricer)
    except Exception:  # the mapping itself fails on it: count the spans as they are
        assessed = [Outcome(span_count(request), 0, 0, 0) for request, _, _ in batch_file.decode(batch)]
    return [Outcome(o.received, 0, o.non_genai, o.received - o.non_genai, (reason[:300],)) for o in assessed]


class BatchWriter:
    """Maps a batch (in this process, or with ``mapper``: otel_costs_collector.pipeline.map_workers), applies the
    one-cost-per-call rule across batches (``calls``: otel_costs_collector.pipeline.held) and inserts its rows
    (any storage)."""

    def __init__(
        self,
        client: Any,
        database: str,
        pricer: Pricer,
        mapper: Callable[[bytes], Mapped] | None = None,
        calls: HeldCalls | None = None,
        raw_ttl_days: int | None = None,
    ) -> None:
        """``mapper``: maps a batch elsewhere (it applies ``raw_ttl_days`` itself)."""
        self._writer = ClickHouseWriter(client, database)
        self._map = mapper or (lambda batch: map_rows(batch, pricer, raw_ttl_days))
        self._calls = calls

    def write(self, batch: bytes, token: str) -> list[Outcome]:
        """Store the batch; returns each request's outcome, in order (rows that wait for an
        ancestor's attribution count as stored: they are journaled). Raises PermanentError
        (a damaged batch file; storage refused the rows), StorageUnavailable or OSError (not
        now: storage, or a mapping worker that died) or any other error: a bug, which the
        pipeline keeps the batch for (storage.errors)."""
        try:
            rows, links, outcomes = self._map(batch)
        except batch_file.Damaged as exc:
            raise PermanentError(f"damaged batch file: {exc}") from exc
        if self._calls is None:
            self._writer.write(rows, token)
        else:
            self._writer.write(self._calls.before(rows, links, token), token)
            self._calls.after(token)
        return outcomes


class WriterPool:
    """``write(batch, token)`` on whichever writer is free, so batches are written
    concurrently, one per writer (each on its own storage connection). Thread-safe; a
    caller waits while all are busy."""

    def __init__(self, writers: list[Any]) -> None:
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for writer in writers:
            self._free.put(writer)

    def write(self, batch: bytes, token: str) -> list[Outcome]:
        """The free writer's ``write``: returns each request's outcome, raises its errors."""
        writer = self._free.get()
        try:
            return writer.write(batch, token)
        finally:
            self._free.put(writer)
