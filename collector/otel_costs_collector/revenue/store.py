"""Revenue lines in storage (``revenue_daily``): written spread over their days, read back as
each line's newest version. Blocking I/O on the caller's thread; raises what the client raises."""

from __future__ import annotations

from datetime import date
from typing import Any, Iterable

from otel_costs_collector.budgets.model import version_stamp
from otel_costs_collector.revenue.lines import RevenueLine
from otel_costs_collector.sql import load

__all__ = ["write_lines", "revenue_days", "COLUMNS", "INSERT_ROWS"]

#: Line-days an insert holds at most (memory stays bounded on a large pull).
INSERT_ROWS = 100_000

COLUMNS = [
    "source",
    "line_id",
    "version",
    "day",
    "tenant_id",
    "plan",
    "customer",
    "currency",
    "amount",
    "line_amount",
    "period_start",
    "period_end",
    "active",
]


def write_lines(client: Any, db: str, lines: Iterable[RevenueLine]) -> int:
    """Store ``lines``, each replacing what was stored under its (source, line id), in inserts
    of at most :data:`INSERT_ROWS` line-days (a line's days always in one: readers see a line's
    old version or its new one, never a mix). Returns the rows (line-days) written."""
    version = version_stamp()
    rows: list[list[Any]] = []
    written = 0
    for line in lines:
        if len(rows) >= INSERT_ROWS:
            written += _insert(client, db, rows)
            rows = []
        rows.extend(_rows(line, version))
    return written + _insert(client, db, rows)


def _insert(client: Any, db: str, rows: list[list[Any]]) -> int:
    if rows:
        client.insert(f"`{db}`.revenue_daily", rows, column_names=COLUMNS, settings={"async_insert": 0})
    return len(rows)


def _rows(line: RevenueLine, version: Any) -> list[list[Any]]:
    return [
        [
            line.source,
            line.line_id,
            version,
            day,
            line.tenant,
            line.plan,
            line.customer,
            line.currency,
            share,
            line.amount,
            line.period_start,
            line.period_end,
            1 if line.active else 0,
        ]
        for day, share in line.days()
    ]


def revenue_days(
    client: Any, db: str, start: date, end: date, tenant: str | None = None
) -> list[tuple[str, str, str, date, Any]]:
    """(tenant, plan, currency, day, amount) of the counting lines' newest versions, for the UTC
    days ``start`` … ``end`` (exclusive), summed per tenant, plan, currency and day; only
    ``tenant``'s when given ("" is the revenue with no tenant)."""
    text = load(__package__, "revenue_days", db=db)
    params = {"start": start, "end": end, "every": int(tenant is None), "tenant": tenant or ""}
    return client.query(text, parameters=params).result_rows
