"""The plain ``write(rows)`` into ClickHouse. Batching, retries and spooling wrap it.

One clickhouse-connect client for chDB and servers. A batch goes as one
``JSONCompactEachRow`` payload (:func:`encode_rows`: a JSON array a row, made by the C JSON
encoder): ClickHouse parses the decimal strings of money exactly, and no per-value Python
serialisation runs. Insert settings are explicit: ClickHouse 26.x enables ``async_insert``
by default, but the collector batches itself and acknowledges spans only once an insert
returned, so inserts are synchronous.
"""

from __future__ import annotations

import json
from typing import Any

from .mapping import COLUMNS

__all__ = ["ClickHouseWriter", "INSERT_SETTINGS", "INSERT_FORMAT", "encode_rows"]

INSERT_FORMAT = "JSONCompactEachRow"
_TIMESTAMP = COLUMNS.index("timestamp")
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":")).encode

INSERT_SETTINGS = {
    "async_insert": 0,
    "wait_for_async_insert": 1,
    # With the batch's insert_deduplication_token, a repeated insert of the same batch
    # is dropped, in the raw table and in every rollup the materialized views feed.
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # The views insert rows already summed per key, and every reader sums again: collapsing
    # equal keys at insert (SummingMergeTree) was ~8 of the ~60 ms a 24k-span batch's insert
    # took (20 batches each way, system.events).
    "optimize_on_insert": 0,
    # One parsing thread: the payload becomes the same blocks on every attempt, which the
    # deduplication of a replayed batch in the rollups relies on.
    "input_format_parallel_parsing": 0,
}


def encode_rows(rows: list[list[Any]]) -> bytes:
    """The ``JSONCompactEachRow`` payload of :class:`collector.mapping.MapResult` rows.
    ``timestamp`` (ns) goes as ``"ssssssssss.nnnnnnnnn"``, exact: a plain integer would be
    read as seconds, and without ten digits before the point a short one is read as a date.
    Changes the rows' timestamps in place; call once."""
    for row in rows:
        ns = row[_TIMESTAMP]
        row[_TIMESTAMP] = f"{ns // 1_000_000_000:010d}.{ns % 1_000_000_000:09d}"
    return "\n".join(map(_encode, rows)).encode()


class ClickHouseWriter:
    """Writes rows into ``{db}.genai_spans``. Not thread-safe: one caller."""

    def __init__(self, client: Any, database: str) -> None:
        self._client = client
        self._table = f"`{database}`.genai_spans"
        self._columns = list(COLUMNS)

    def write(self, rows: list[list[Any]], token: str) -> None:
        """Insert the rows (:func:`encode_rows` consumes them); see :meth:`write_payload`."""
        if rows:
            self.write_payload(encode_rows(rows), token)

    def write_payload(self, payload: bytes, token: str) -> None:
        """Insert an :func:`encode_rows` payload; returns once ClickHouse accepted it. Raises
        on failure.

        ``token`` makes the insert idempotent: the same token within the dedup window is
        stored once.
        """
        self._client.raw_insert(self._table, self._columns, payload, fmt=INSERT_FORMAT,
                                settings={**INSERT_SETTINGS, "insert_deduplication_token": token})
