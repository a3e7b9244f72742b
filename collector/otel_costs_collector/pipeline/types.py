"""The write pipeline's types, in one place.

A batch travels from the batcher to storage as a batch file (:class:`Batch`); every layer
of the pipeline is a :class:`BatchSink` — one ``write(data, token)`` that stores the batch
file ``data`` under the deduplication ``token`` and returns each request's
:class:`Outcome`, in order — and the layers wrap each other (otel_costs_collector/server.py):

    WriterPool (map, count once, insert) ← Retrying ← Spooling (write-ahead, spool, replay)

A write fails with :class:`PermanentError` when storage can never take the batch as it is,
with :class:`StorageUnavailable` (or an OSError) when it cannot now (storage.errors classifies
once, at the insert); any other exception is a bug in our code, and the batch is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from otel_costs_collector.mapping.rows import MapResult
from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.storage.errors import PermanentError, StorageUnavailable

__all__ = ["Batch", "BatchSink", "Outcome", "PermanentError", "StorageUnavailable", "WriteFunction"]


@dataclass(frozen=True)
class Outcome:
    """What became of one request's spans."""

    received: int
    accepted: int  # GenAI spans stored
    non_genai: int  # dropped as not GenAI (accepted, not stored)
    rejected: int  # refused as invalid (partial success)
    errors: tuple[str, ...] = ()
    spooled: bool = False  # on disk, not yet in ClickHouse (answered as stored)
    repeated: int = 0  # GenAI spans the request held again (same ids): stored once, not rejected

    @classmethod
    def of(cls, result: MapResult) -> Outcome:
        """What :func:`otel_costs_collector.mapping.rows.map_request` made of a request."""
        return cls(
            result.received,
            len(result.rows),
            result.non_genai,
            result.rejected,
            tuple(result.errors),
            repeated=result.repeated,
        )

    @property
    def message(self) -> str:
        return f"{self.rejected} span(s) rejected: " + "; ".join(self.errors) if self.rejected else ""


class Batch(NamedTuple):
    """One batch: its batch file and what identifies it."""

    data: bytes  # the batch file (otel_costs_collector/pipeline/batch_file.py)
    token: str  # its deduplication token
    requests: tuple[str, ...]  # its requests' tokens
    spans: int

    @classmethod
    def of(cls, records: list[batch_file.Record], spans: int) -> Batch:
        return cls(batch_file.encode(records), batch_file.batch_token(records), tuple(r.token for r in records), spans)


class BatchSink(Protocol):
    """A layer of the pipeline."""

    def write(self, data: bytes, token: str) -> list[Outcome]:
        """Store the batch file ``data`` under ``token``; each request's outcome, in order.
        Raises PermanentError (never storable as it is) or any other error (not now)."""
        ...


class WriteFunction:
    """A plain ``write(data, token)`` function as a :class:`BatchSink` (fault injection)."""

    def __init__(self, write: object) -> None:
        self._write = write

    def write(self, data: bytes, token: str) -> list[Outcome]:
        return self._write(data, token)  # type: ignore[operator,no-any-return]
