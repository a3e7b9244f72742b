"""The plain ``write(rows)`` into ClickHouse. Batching, retries and spooling wrap it.

One clickhouse-connect client for chDB and servers; one reused insert context per table
(clickhouse-connect re-plans an insert otherwise); columnar Native data, which is ~25x faster
than rows here. Insert settings are explicit: ClickHouse 26.x enables ``async_insert`` by default,
but the collector batches itself and acknowledges spans only once an insert returned, so
inserts are synchronous.

A replayed batch (same token) is dropped by the raw table and by every rollup the materialized
views feed; storage.schema reloads the views after a migration alters them, as that holds
only for views ClickHouse loaded from disk.
"""

from __future__ import annotations

from typing import Any

from otel_costs_collector.storage.columns import COLUMNS, TIMESTAMP
from otel_costs_collector.storage.errors import classify

__all__ = ["ClickHouseWriter", "DAY_NS", "INSERT_SETTINGS", "MAX_DAYS"]

#: The most days one insert covers. The raw table has a partition a day, and ClickHouse refuses
#: an insert block over more than 100 partitions (max_partitions_per_insert_block): a backfill
#: of older calls in one batch would fail, and be retried, forever.
MAX_DAYS = 90
DAY_NS = 86_400 * 1_000_000_000

INSERT_SETTINGS = {
    "async_insert": 0,
    "wait_for_async_insert": 1,
    # With the batch's insert_deduplication_token, a repeated insert of the same batch
    # is dropped, in the raw table and in every rollup the materialized views feed.
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # The views insert rows already summed per key, and every reader sums again: collapsing
    # equal keys at insert (SummingMergeTree) would be a noticeable share of each insert.
    "optimize_on_insert": 0,
}


class ClickHouseWriter:
    """Writes rows into ``{db}.genai_spans``. Not thread-safe: one caller."""

    def __init__(self, client: Any, database: str) -> None:
        self._client = client
        self._table = f"`{database}`.genai_spans"
        self._context: Any = None

    def write(self, rows: list[list[Any]], token: str, block: bytes | None = None) -> None:
        """Insert :class:`otel_costs_collector.mapping.rows.MapResult` rows; returns once ClickHouse accepted
        them. Raises storage.errors.PermanentError when ClickHouse can never take them as
        they are, any other error when it cannot now.

        ``token`` makes the insert idempotent: the same token within the dedup window is
        stored once. Rows on more than :data:`MAX_DAYS` days (a backfill) are inserted in parts
        of at most that many days, each with a token of its own derived from ``token``.
        ``block``: the rows already encoded as one Native block (storage.native), inserted as
        it is.
        """
        if not rows:
            return
        if block is not None:
            settings = {**INSERT_SETTINGS, "insert_deduplication_token": token}
            try:
                self._client.raw_insert(self._table, list(COLUMNS), insert_block=block, settings=settings, fmt="Native")
            except Exception as exc:
                raise classify(exc) from exc
            return
        days: dict[int, list[list[Any]]] = {}
        for row in rows:
            days.setdefault(row[TIMESTAMP] // DAY_NS, []).append(row)
        if len(days) <= MAX_DAYS:
            self._insert(rows, token)
            return
        ordered = sorted(days)
        for part, first in enumerate(range(0, len(ordered), MAX_DAYS)):
            self._insert([row for day in ordered[first : first + MAX_DAYS] for row in days[day]], f"{token}/{part}")

    def _insert(self, rows: list[list[Any]], token: str) -> None:
        try:
            self._insert_columns(rows, token)
        except Exception as exc:
            raise classify(exc) from exc

    def _insert_columns(self, rows: list[list[Any]], token: str) -> None:
        columns = [list(column) for column in zip(*rows)]
        if self._context is None:
            self._context = self._client.create_insert_context(
                self._table,
                column_names=list(COLUMNS),
                column_oriented=True,
                settings=dict(INSERT_SETTINGS),
                data=columns,
            )
        else:
            self._context.data = columns
        self._context.settings["insert_deduplication_token"] = token
        self._client.insert(context=self._context)
