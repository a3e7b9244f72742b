"""The plain ``write(batch, token)`` of a batch file (collector/batch_file.py) into
ClickHouse, answering what became of each request in it. Batching, retries and the spool
wrap it.

Two writers with one contract:

* :class:`SqlBatchWriter` (embedded chDB, the default): ClickHouse reads the batch file and
  maps it (collector/sql_mapping.py) into an in-memory stage table, and the stored rows
  go to ``genai_spans`` with one INSERT … SELECT; the few spans the SQL leaves to Python
  (priced here, unusual attributes) are mapped by :func:`collector.mapping.map_request`.
  Python never touches the common span. ``file()`` reads this process's disk, which is
  why servers do not get this writer.
* :class:`PythonBatchWriter` (servers): ``map_request`` per request, a columnar insert.

Both are idempotent per token: the stored rows are inserted with the batch's token (the
Python-mapped share of a SQL batch with ``token + ":py"``), so a replayed batch is
dropped by every table that already has it. Neither is thread-safe: one thread per writer
(:class:`WriterPool` shares several among threads).
"""

from __future__ import annotations

import logging
import os
import queue
from dataclasses import dataclass
from string import Template
from typing import Any, Iterable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_costs.pricing import Pricer

from . import batch_file
from .mapping import COLUMNS, Columns, MapResult, map_request
from .queries import load
from .spool import is_invalid_batch
from .sql_mapping import SETTINGS, mapping_query, settings_clause
from .writer import INSERT_SETTINGS, ClickHouseWriter

__all__ = ["AUTO_SQL_MIN_BYTES", "Outcome", "PythonBatchWriter", "SqlBatchWriter", "WriterPool", "assess",
           "select_spans"]

_log = logging.getLogger("otel_costs.collector")

#: With ``mapping = auto``, smaller batches are mapped in Python: ClickHouse plans the
#: mapping query anew for every batch (~0.1 s), which Python's ~90 µs a span outruns below
#: a few thousand spans (bench/collector_ingest.py at --inflight 16 against 128).
AUTO_SQL_MIN_BYTES = 2 << 20


@dataclass(frozen=True)
class Outcome:
    """What became of one request's spans."""

    received: int
    accepted: int  # GenAI spans stored
    non_genai: int  # dropped as not GenAI (accepted, not stored)
    rejected: int  # refused as invalid (partial success)
    errors: tuple[str, ...] = ()

    @classmethod
    def of(cls, result: MapResult) -> "Outcome":
        """What :func:`collector.mapping.map_request` made of a request."""
        return cls(result.received, len(result.rows), result.non_genai, result.rejected, tuple(result.errors))

    @property
    def message(self) -> str:
        return f"{self.rejected} span(s) rejected: " + "; ".join(self.errors) if self.rejected else ""


def _map(batch: bytes, pricer: Pricer) -> tuple[Columns, list[Outcome]]:
    rows, outcomes = Columns(), []
    for request, tenant, token in batch_file.decode(batch):
        result = map_request(request, pricer, tenant, token=token)
        rows.extend(result.rows)
        outcomes.append(Outcome.of(result))
    return rows, outcomes


def assess(batch: bytes, pricer: Pricer) -> list[Outcome]:
    """Each request's outcome without writing: for a batch spooled while storage is down,
    whose requests are answered before it is mapped. Raises ValueError for a damaged batch."""
    return _map(batch, pricer)[1]


class PythonBatchWriter:
    """Maps in Python and inserts columns (any storage)."""

    def __init__(self, client: Any, database: str, pricer: Pricer) -> None:
        self._writer = ClickHouseWriter(client, database)
        self._pricer = pricer

    def write(self, batch: bytes, token: str) -> list[Outcome]:
        """Store the batch; returns each request's outcome, in order. Raises on failure."""
        rows, outcomes = _map(batch, self._pricer)
        self._writer.write(rows, token)
        return outcomes


class SqlBatchWriter:
    """Maps in embedded ClickHouse (chDB). ``scratch_dir``: where the batch file ClickHouse
    reads is written (the collector's spool directory); ``stage``: the name of this
    writer's in-memory table (one per writer). Batches under ``min_bytes`` are mapped in
    Python instead; the choice depends only on the batch, so a replay takes the same route
    and its deduplication tokens mean the same rows."""

    def __init__(self, client: Any, database: str, pricer: Pricer, scratch_dir: str,
                 stage: str = "batch_stage", min_bytes: int = 0) -> None:
        self._client = client
        self._min_bytes = min_bytes
        self._pricer = pricer
        self._python = ClickHouseWriter(client, database)
        self._path = os.path.join(scratch_dir, f"{stage}.otlpbatch")
        stage = f"`{database}`.`{stage}`"
        columns = ", ".join(COLUMNS)
        self._summary = Template(load("stage_summary")).substitute(stage=stage)
        # Settings go in the statements: passed per call, clickhouse-connect's chDB backend
        # reads, sets and restores each one around the statement (~25 ms each).
        self._insert = Template(load("stage_rows"))
        self._insert_names = {"db": f"`{database}`", "stage": stage, "columns": columns}
        self._map = f"INSERT INTO {stage} SELECT * FROM ({mapping_query()}) {settings_clause(SETTINGS)}"
        self._truncate = f"TRUNCATE TABLE {stage}"
        # A Memory table, recreated so its columns follow this version's query.
        open(self._path, "wb").close()
        client.command(f"DROP TABLE IF EXISTS {stage}")
        client.command(f"CREATE TABLE {stage} ENGINE = Memory AS SELECT * FROM ({mapping_query()}) LIMIT 0",
                       parameters={"batch": self._path}, settings=SETTINGS)

    def write(self, batch: bytes, token: str) -> list[Outcome]:
        """Store the batch; returns each request's outcome, in order. Raises on failure
        (ValueError for a batch file that is not one)."""
        if len(batch) < self._min_bytes:
            return self._write_python(batch, token)
        with open(self._path, "wb") as f:
            f.write(batch)
        client = self._client
        client.command(self._truncate)
        try:
            client.command(self._map, parameters={"batch": self._path})
        except Exception as exc:
            if not is_invalid_batch(exc):
                raise
            # ClickHouse's Protobuf reader is stricter than protobuf's (a group, or a known
            # field with another wire type, which protobuf keeps as unknown): Python maps
            # the batch. The same bytes fail alike on a replay, so it takes this route too.
            _log.warning("ClickHouse cannot read a batch of %d bytes (%s); mapping it in Python",
                         len(batch), str(exc).split("\n")[0][:200])
            return self._write_python(batch, token)
        summary = client.query(self._summary).result_rows
        if any(stored for _, _, stored, *_ in summary):
            settings = {**INSERT_SETTINGS, "insert_deduplication_token": token,
                        "max_threads": 1, "max_insert_threads": 1}
            client.command(self._insert.substitute(self._insert_names, settings=settings_clause(settings)))
        records = batch_file.split(batch)
        rows = Columns()
        outcomes = [Outcome(0, 0, 0, 0)] * len(records)  # a request without spans has no stage rows
        for request_no, received, stored, non_genai, errors, python in summary:
            rejected, errors = len(errors), tuple(errors)
            if python:
                request, tenant, request_token = batch_file.parse(records[request_no - 1])
                result = map_request(select_spans(request, python), self._pricer, tenant, token=request_token)
                rows.extend(result.rows)
                stored += len(result.rows)
                non_genai += result.non_genai
                rejected += result.rejected
                errors += tuple(result.errors)
            outcomes[request_no - 1] = Outcome(received, stored, non_genai, rejected, errors)
        if len(rows):
            self._python.write(rows, token + ":py")
        return outcomes

    def _write_python(self, batch: bytes, token: str) -> list[Outcome]:
        rows, outcomes = _map(batch, self._pricer)
        self._python.write(rows, token)
        return outcomes


class WriterPool:
    """``write(batch, token)`` on whichever writer is free, so batches are written
    concurrently, one per writer (each on its own storage connection and, for
    :class:`SqlBatchWriter`, its own stage). Thread-safe; a caller waits while all are busy."""

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


def select_spans(request: ExportTraceServiceRequest, positions: Iterable[tuple[int, int, int]]) -> ExportTraceServiceRequest:
    """A request holding only the spans at ``positions`` (1-based resource, scope, span),
    under copies of their resources and scopes: what mapping them alone needs. Raises
    IndexError for a position the request does not have."""
    out = ExportTraceServiceRequest()
    resources: dict[int, Any] = {}
    scopes: dict[tuple[int, int], Any] = {}
    for rs_i, ss_i, sp_i in sorted(positions):
        source_rs = request.resource_spans[rs_i - 1]
        if rs_i not in resources:
            rs = resources[rs_i] = out.resource_spans.add()
            rs.resource.CopyFrom(source_rs.resource)
            rs.schema_url = source_rs.schema_url
        source_ss = source_rs.scope_spans[ss_i - 1]
        if (rs_i, ss_i) not in scopes:
            ss = scopes[rs_i, ss_i] = resources[rs_i].scope_spans.add()
            ss.scope.CopyFrom(source_ss.scope)
            ss.schema_url = source_ss.schema_url
        scopes[rs_i, ss_i].spans.add().CopyFrom(source_ss.spans[sp_i - 1])
    return out
