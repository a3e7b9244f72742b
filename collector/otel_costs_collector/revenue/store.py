"""Revenue lines in storage (``revenue_daily``): written spread over their days, read back as
each line's newest version. Blocking I/O on the caller's thread; raises what the client raises."""

from __future__ import annotations

from datetime import date
from typing import Any, Iterable

from otel_costs_collector.budgets.model import version_stamp
from otel_costs_collector.revenue.lines import RevenueLine
from otel_costs_collector.sql import load

__all__ = ["write_lines", "revenue_days", "COLUMNS"]

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
    """Store ``lines``, each replacing what was stored under its (source, line id): one insert,
    all visible or none. Returns the rows (line-days) written."""
    version = version_stamp()
    rows = [
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
        for line in lines
        for day, share in line.days()
    ]
    if rows:
        client.insert(f"`{db}`.revenue_daily", rows, column_names=COLUMNS, settings={"async_insert": 0})
    return len(rows)


def revenue_days(client: Any, db: str, start: date, end: date) -> list[tuple[str, str, str, date, Any]]:
    """(tenant, plan, currency, day, amount) of the counting lines' newest versions, for the UTC
    days ``start`` … ``end`` (exclusive), summed per tenant, plan, currency and day."""
    text = load(__package__, "revenue_days", db=db)
    return client.query(text, parameters={"start": start, "end": end}).result_rows
