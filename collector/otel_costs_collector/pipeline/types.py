"""The write pipeline's types, in one place.

Every stage of the pipeline is a :class:`Stage`: ``start()``, ``write(item)``, ``close()``.
A stage starts and closes only itself (its threads, its files); ``server.py`` declares the
stages once, starts them innermost first and closes them outermost first. Two kinds of item
travel (otel_costs_collector/server.py wires them, docs/layout.md walks one span through):

    Batcher → Spooling (write ahead, spool, replay) → Retrying → WriterPool → BatchWriter (map)
        a :class:`Batch` in, each request's :class:`Outcome` out
    → CountOnce (the one-cost-per-call rule, journaled) → Retrying → Insert
        :class:`Rows` in, nothing out
    Settling (rows whose wait for an ancestor ended) → Retrying → Insert

A write fails with :class:`PermanentError` when storage can never take the item as it is,
with :class:`StorageUnavailable` (or an OSError) when it cannot now (storage.errors classifies
once, at the insert); any other exception is a bug in our code, and the batch is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, NamedTuple, Protocol, Sequence, TypeVar

from otel_costs.usage import TokenUsage
from otel_costs_collector.mapping.rows import Link, MapResult
from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.storage.errors import PermanentError, StorageUnavailable

__all__ = ["Batch", "BatchStage", "Outcome", "PermanentError", "Rows", "Stage", "StorageUnavailable", "WriteFunction"]

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)


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
    insert_token: str  # ClickHouse's insert_deduplication_token for it: a replay is dropped
    requests: tuple[str, ...]  # its requests' request tokens
    spans: int

    @classmethod
    def of(cls, records: list[batch_file.Record], spans: int) -> Batch:
        tokens = tuple(r.request_token for r in records)
        return cls(batch_file.encode(records), batch_file.insert_token_of(records), tokens, spans)


class Rows(NamedTuple):
    """Rows for ``genai_spans`` (storage/columns.py) and the links of the batch's spans
    without usage (the rule's input), inserted under ``insert_token``: the batch's, or a
    settle's."""

    rows: list[list[Any]]
    insert_token: str
    links: Sequence[Link] = ()
    facts: Mapping[str, TokenUsage] = {}  # MapResult.facts: the rows' billed facts beyond tokens
    block: bytes | None = None  # the rows as a Native block (storage.native), while no stage changed them


class Stage(Protocol[In, Out]):
    """One stage of the pipeline, with its lifecycle. ``write`` is thread-safe unless the
    stage says otherwise and blocks until the item is stored (or spooled)."""

    def start(self) -> None:
        """Start the stage's threads, if it has any. Raises OSError."""
        ...

    def write(self, item: In) -> Out:
        """Store ``item``. Raises PermanentError (never storable as it is) or any other
        error (not now, or a bug: storage.errors)."""
        ...

    def close(self) -> None:
        """Stop the stage's threads after what it holds is written (or kept on disk)."""
        ...


#: The stages a batch goes through: a batch in, each request's outcome, in order, out.
BatchStage = Stage[Batch, list[Outcome]]
T = TypeVar("T")
R = TypeVar("R")


class WriteFunction(Generic[T, R]):
    """A plain ``write(item)`` function as a stage without threads (fault injection)."""

    def __init__(self, write: Callable[[T], R]) -> None:
        self._write = write

    def start(self) -> None:
        pass

    def write(self, item: T) -> R:
        return self._write(item)

    def close(self) -> None:
        pass
