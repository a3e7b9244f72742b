"""The stages that write a batch file (otel_costs_collector/pipeline/batch_file.py) into
ClickHouse, answering what became of each request in it: map → count once → insert (one
chain per writer: :func:`writer`). Batching, retries and the spool wrap them.

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
from otel_costs.usage import TokenUsage
from otel_costs_collector.mapping.rows import Link, map_request, oldest_ns, span_count
from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.held import CountOnce, HeldCalls
from otel_costs_collector.pipeline.types import Batch, BatchStage, Outcome, Rows, Stage
from otel_costs_collector.storage.columns import TIMESTAMP
from otel_costs_collector.storage.errors import PermanentError
from otel_costs_collector.storage.insert import DAY_NS, MAX_DAYS, ClickHouseWriter
from otel_costs_collector.storage.native import native_block

__all__ = ["BatchWriter", "Insert", "Mapped", "WriterPool", "assess", "map_rows", "refused", "writer"]


class Mapped(NamedTuple):
    """A batch file's rows, the links of its spans without usage (otel_costs_collector.mapping.calls) and each
    request's outcome."""

    rows: list[list[Any]]
    links: list[Link]
    outcomes: list[Outcome]
    facts: dict[str, TokenUsage]  # MapResult.facts of every request
    block: bytes | None  # the rows as a Native block (storage.native); None: encoded at the insert


def map_rows(batch: bytes, pricer: Pricer, raw_ttl_days: int | None = None) -> Mapped:
    """The mapping of a write, in whichever process runs it (otel_costs_collector.pipeline.map_workers); spans
    older than ``raw_ttl_days`` are rejected. Raises batch_file.Damaged for a damaged file."""
    rows: list[list[Any]] = []
    links: list[Link] = []
    outcomes = []
    facts: dict[str, TokenUsage] = {}
    oldest = oldest_ns(raw_ttl_days)
    for request, tenant, token in batch_file.decode(batch):
        result = map_request(request, pricer, tenant, token=token, oldest_ns=oldest)
        rows.extend(result.rows)
        links.extend(result.links)
        facts.update(result.facts)
        outcomes.append(Outcome.of(result))
    return Mapped(rows, links, outcomes, facts, _block(rows))


def _block(rows: list[list[Any]]) -> bytes | None:
    """The rows' Native block, made here (a mapping worker) rather than in the collector's
    process; None when they are inserted in parts (a backfill over many days) or a value does
    not encode (the insert encodes them, and classifies what ClickHouse says)."""
    if not rows or len({row[TIMESTAMP] // DAY_NS for row in rows}) > MAX_DAYS:
        return None
    try:
        return native_block(rows)
    except Exception:
        return None


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


class Insert:
    """The stage that inserts rows under their token (storage.insert.ClickHouseWriter). Not
    thread-safe: one caller (it owns an insert context on its connection)."""

    def __init__(self, client: Any, database: str) -> None:
        self._writer = ClickHouseWriter(client, database)

    def start(self) -> None:
        pass

    def write(self, rows: Rows) -> None:
        """Raises PermanentError, StorageUnavailable or a bug's error (storage.errors)."""
        self._writer.write(rows.rows, rows.insert_token, rows.block)

    def close(self) -> None:
        pass


class BatchWriter:
    """The mapping stage: maps a batch (in this process, or with ``mapper``:
    otel_costs_collector.pipeline.map_workers) and writes its rows to ``inner`` (count once,
    insert). Not thread-safe when ``inner`` is not (:class:`WriterPool` shares several)."""

    def __init__(
        self,
        inner: Stage[Rows, None],
        pricer: Pricer,
        *,
        mapper: Callable[[bytes], Mapped] | None = None,
        raw_ttl_days: int | None = None,
    ) -> None:
        """``mapper``: maps a batch elsewhere (it applies ``raw_ttl_days`` itself)."""
        self._inner = inner
        self._map = mapper or (lambda batch: map_rows(batch, pricer, raw_ttl_days))

    def start(self) -> None:
        pass

    def write(self, batch: Batch) -> list[Outcome]:
        """Store the batch; returns each request's outcome, in order (rows that wait for an
        ancestor's attribution count as stored: they are journaled). Raises PermanentError
        (a damaged batch file; storage refused the rows), StorageUnavailable or OSError (not
        now: storage, or a mapping worker that died) or any other error: a bug, which the
        pipeline keeps the batch for (storage.errors)."""
        try:
            mapped = self._map(batch.data)
        except batch_file.Damaged as exc:
            raise PermanentError(f"damaged batch file: {exc}") from exc
        self._inner.write(Rows(mapped.rows, batch.insert_token, mapped.links, mapped.facts, mapped.block))
        return mapped.outcomes

    def close(self) -> None:
        pass


def writer(
    client: Any,
    database: str,
    pricer: Pricer,
    *,
    mapper: Callable[[bytes], Mapped] | None = None,
    calls: HeldCalls | None = None,
    raw_ttl_days: int | None = None,
) -> BatchWriter:
    """The stages of one writer, on its own storage connection: map → count once (with
    ``calls``; without, every row is stored as mapped) → insert."""
    insert = Insert(client, database)
    return BatchWriter(
        insert if calls is None else CountOnce(calls, insert), pricer, mapper=mapper, raw_ttl_days=raw_ttl_days
    )


class WriterPool:
    """The batch's ``write`` on whichever writer is free, so batches are written
    concurrently, one per writer (each on its own storage connection). Thread-safe; a
    caller waits while all are busy."""

    def __init__(self, writers: list[BatchStage]) -> None:
        self._writers = writers
        self._free: queue.SimpleQueue[BatchStage] = queue.SimpleQueue()
        for one in writers:
            self._free.put(one)

    def start(self) -> None:
        for one in self._writers:
            one.start()

    def write(self, batch: Batch) -> list[Outcome]:
        """The free writer's ``write``: returns each request's outcome, raises its errors."""
        one = self._free.get()
        try:
            return one.write(batch)
        finally:
            self._free.put(one)

    def close(self) -> None:
        for one in self._writers:
            one.close()
