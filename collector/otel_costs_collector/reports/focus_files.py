"""FOCUS rows (reports/focus.py) written as CSV or Parquet, a batch at a time (bounded memory).
Parquet holds money as decimal128(38, 18), quantities as int64 and the rest as text; CSV the
same values as text. Blocking file I/O on the caller's thread."""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import IO, Any, Callable, Iterable

from otel_costs_collector.reports.focus import COLUMNS

__all__ = ["write_csv", "write_parquet", "MONEY", "QUANTITIES"]

MONEY = ("BilledCost", "EffectiveCost", "ContractedCost", "ListCost", "ContractedUnitPrice", "ListUnitPrice")
QUANTITIES = ("ConsumedQuantity", "PricingQuantity", "x_Calls")
_BATCH = 10_000


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str], progress: Callable[[int], None] | None = None) -> int:
    """Write a header and ``rows``; returns how many. ``progress(n)`` every batch."""
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: _text(k, v) for k, v in row.items()})
        n += 1
        if progress is not None and n % _BATCH == 0:
            progress(n)
    return n


def _text(column: str, value: Any) -> str:
    """A cell as CSV text: numbers of the decimal columns always with a decimal point (readers
    that infer types — pandas, and the FOCUS validator through it — must see decimals, not
    integers)."""
    if value is None:
        return ""
    text = str(value)
    if (column in MONEY or column in QUANTITIES[:2]) and "." not in text:
        return text + ".0"
    return text


def write_parquet(rows: Iterable[dict[str, Any]], path: str, progress: Callable[[int], None] | None = None) -> int:
    """Write ``rows`` to a Parquet file at ``path``; returns how many. Raises RuntimeError when
    pyarrow is not installed (it comes with the collector's embedded ClickHouse)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - installed with chdb
        raise RuntimeError("Parquet needs pyarrow: pip install pyarrow") from None
    types = {
        c: pa.decimal128(38, 18) if c in MONEY else pa.int64() if c in QUANTITIES else pa.string() for c in COLUMNS
    }
    schema = pa.schema([(c, types[c]) for c in COLUMNS])
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append({c: Decimal(v) if c in MONEY and v is not None else v for c, v in row.items()})
            n += 1
            if len(batch) == _BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
                if progress is not None:
                    progress(n)
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return n
