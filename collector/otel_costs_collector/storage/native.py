"""Rows as the Native block an insert into ``genai_spans`` takes, made where the rows are
mapped (a mapping worker: otel_costs_collector.pipeline.batch_writer.map_rows), so that the
collector's process, which every batch passes through, only hands the bytes to ClickHouse.

Encoded by clickhouse-connect's compiled codec (the ``clickhouse-connect[rust]`` extra,
module ``_ch_core``): money is ``Decimal(38, 18)``, which its Python codec converts through
strings (~1 µs a value, seven a row). Without it, by its Python codec. The bytes are the same
either way (tests/collector/storage/test_native.py). Pure; thread-safe.
"""

from __future__ import annotations

from typing import Any, Sequence

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform

from otel_costs_collector.storage.columns import COLUMN_TYPES, COLUMNS

try:
    from _ch_core import encode_native_block as _encode
except ImportError:  # the rust extra is not installed: the Python codec
    _encode = None

__all__ = ["COMPILED", "native_block"]

#: Whether the compiled codec encodes the blocks.
COMPILED = _encode is not None
_TYPES = [get_from_name(name) for name in COLUMN_TYPES]


def native_block(rows: Sequence[list[Any]]) -> bytes:
    """``rows`` (lists in storage.columns.COLUMNS order) as one Native block of the COLUMNS.
    Raises what the codec raises for a value its column cannot hold (the caller inserts the
    rows another way)."""
    columns = [list(column) for column in zip(*rows)]
    if _encode is not None:
        return _encode(list(COLUMNS), list(COLUMN_TYPES), columns, len(rows), None)  # type: ignore[no-any-return]
    context = InsertContext("genai_spans", list(COLUMNS), _TYPES, data=columns, column_oriented=True)
    block = b"".join(bytes(chunk) for chunk in NativeTransform.build_insert(context))
    return block[block.index(b"\n") + 1 :]  # after the INSERT statement it prefixes for HTTP
