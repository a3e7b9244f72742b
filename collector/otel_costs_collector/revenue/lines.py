"""Revenue lines: what one customer paid for one service period, how a line is spread over the
UTC days of its period, and lines read from a file (CSV or JSON lines). Pure; no I/O.

Spreading: a line's amount is divided among the UTC days its period ``[start, end)`` covers, in
proportion to the seconds of the period in each day (a monthly subscription billed on the 1st
is revenue for every day of the month; one that starts at noon gives its first day half a
day's share). Each day's share is rounded half-even to 18 decimal places except the last day,
which takes what is left, so the days always add up to the line exactly. A line whose period
is an instant (a one-off charge) is revenue of that instant's day.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, Iterable, Mapping

from otel_costs_collector.revenue.money import MoneyError, amount_of, currency_of

__all__ = [
    "RevenueLine",
    "LineError",
    "IMPORT_FIELDS",
    "MAX_PERIOD_DAYS",
    "MAX_TEXT",
    "spread",
    "parse_import",
    "line_of_record",
    "lines_of_records",
]

#: The longest service period a line may have (ten years): past it is a mistake.
MAX_PERIOD_DAYS = 3660
#: Text fields (ids, tenants, plans) are cut to this many characters.
MAX_TEXT = 256
#: Fields of an imported line; ``plan`` and ``period_end`` may be left out.
IMPORT_FIELDS = ("id", "tenant", "amount", "currency", "period_start", "period_end", "plan")
_QUANTUM = Decimal(1).scaleb(-18)
_DAY_S = 86_400
_FIRST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LAST = datetime(2106, 1, 1, tzinfo=timezone.utc)


class LineError(ValueError):
    """A line that cannot be revenue; the message says which field and why."""


@dataclass(frozen=True)
class RevenueLine:
    """One line: ``amount`` in ``currency``'s major unit (negative for a credit), for the
    service period ``[period_start, period_end)`` (UTC). ``active`` False: the line no longer
    counts (a voided invoice), written so that it replaces what an earlier pull stored."""

    source: str  # "stripe" or "import"
    line_id: str
    tenant: str
    amount: Decimal
    currency: str
    period_start: datetime
    period_end: datetime
    plan: str = ""
    customer: str = ""
    active: bool = True

    def days(self) -> list[tuple[date, Decimal]]:
        return spread(self.amount, self.period_start, self.period_end)

    def day_count(self) -> int:
        """How many UTC days :meth:`days` gives, without spreading."""
        if self.period_end <= self.period_start:
            return 1
        return ((self.period_end - timedelta(microseconds=1)).date() - self.period_start.date()).days + 1


def spread(amount: Decimal, start: datetime, end: datetime) -> list[tuple[date, Decimal]]:
    """``amount`` over the UTC days of ``[start, end)`` (see the module docstring): (day, share)
    in day order, the shares adding up to ``amount`` exactly."""
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if end <= start:
        return [(start.date(), amount)]
    total = int((end - start).total_seconds())
    out: list[tuple[date, Decimal]] = []
    day = start.date()
    given = Decimal(0)
    while True:
        day_start = datetime.combine(day, time(), timezone.utc)
        day_end = day_start + timedelta(days=1)
        if day_end >= end:
            out.append((day, amount - given))
            return out
        seconds = int((day_end - max(start, day_start)).total_seconds())
        with localcontext() as exact:
            exact.prec = 80  # 15 + 18 digits of an amount, times seconds: never rounded here
            share = (amount * seconds / total).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
        out.append((day, share))
        given += share
        day = day + timedelta(days=1)


def parse_import(text: str, fmt: str | None = None) -> tuple[list[RevenueLine], list[str]]:
    """Lines of a CSV (with a header naming :data:`IMPORT_FIELDS`) or JSON-lines text, and one
    message per line that cannot be revenue (its number and why); the good lines are kept.
    ``fmt``: "csv" or "jsonl" (default: JSON lines when the first non-blank character is
    ``{``). Raises LineError when the text as a whole is unreadable (a CSV without the
    required columns)."""
    stripped = text.lstrip()
    if fmt is None:
        fmt = "jsonl" if stripped.startswith("{") else "csv"
    if fmt not in ("csv", "jsonl"):
        raise LineError(f"format {fmt!r} is not csv or jsonl")
    records: Iterable[tuple[int, Any]]
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = [
            f for f in ("id", "tenant", "amount", "currency", "period_start") if f not in (reader.fieldnames or ())
        ]
        if missing:
            raise LineError(f"the CSV header lacks {', '.join(missing)} (it needs {', '.join(IMPORT_FIELDS)})")
        records = ((reader.line_num, row) for row in reader)
    else:
        records = _json_records(text)
    return lines_of_records(records)


def lines_of_records(records: Iterable[tuple[int, Any]]) -> tuple[list[RevenueLine], list[str]]:
    """Lines of numbered records (:func:`line_of_record`), and one message per record that
    cannot be revenue, or repeats an earlier record's id (the first is kept)."""
    lines: list[RevenueLine] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, record in records:
        try:
            line = line_of_record(record)
        except LineError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if line.line_id in seen:
            problems.append(f"line {number}: id {line.line_id!r} appears twice (the first is kept)")
            continue
        seen.add(line.line_id)
        lines.append(line)
    return lines, problems


def _json_records(text: str) -> Iterable[tuple[int, Any]]:
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw, parse_float=Decimal)
        except (ValueError, RecursionError):
            yield number, None


def line_of_record(record: Any, source: str = "import") -> RevenueLine:
    """A line from one record (a dict with :data:`IMPORT_FIELDS`, amount in major units, not negative,
    periods as ISO dates or date-times, the end exclusive and at most
    :data:`MAX_PERIOD_DAYS` after the start; without an end, the start's day). Raises
    LineError naming every problem of the record."""
    if not isinstance(record, Mapping):
        raise LineError("not a JSON object")
    problems: list[str] = []
    unknown = set(record) - set(IMPORT_FIELDS) - {"customer"}
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(str(u)[:32] for u in unknown))}")
    line_id = _text(record, "id", problems, required=True)
    tenant = _text(record, "tenant", problems)
    plan = _text(record, "plan", problems)
    amount = currency = None
    try:
        amount = amount_of(record.get("amount"))
        if amount < 0:
            amount = None
            problems.append("amount must not be negative (for a refund, import the line again with what is left)")
    except MoneyError as exc:
        problems.append(str(exc))
    try:
        currency = currency_of(record.get("currency"))
    except MoneyError as exc:
        problems.append(str(exc))
    start = _instant(record.get("period_start"), "period_start", problems, required=True)
    end = _instant(record.get("period_end"), "period_end", problems)
    if start is not None and end is None and not problems:
        end = datetime.combine(start.date() + timedelta(days=1), time(), timezone.utc)
    if start is not None and end is not None:
        if end <= start:
            problems.append("period_end must be after period_start (the end is exclusive: 2026-12-01 ends November)")
        elif end - start > timedelta(days=MAX_PERIOD_DAYS):
            problems.append(f"the period is longer than {MAX_PERIOD_DAYS} days")
    if problems or amount is None or currency is None or start is None or end is None:
        raise LineError("; ".join(problems))
    return RevenueLine(source, line_id, tenant, amount, currency, start, end, plan, _text(record, "customer", []))


def _text(record: Mapping[str, Any], name: str, problems: list[str], *, required: bool = False) -> str:
    value = record.get(name)
    if value is None or value == "":
        if required:
            problems.append(f"{name} is required")
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        problems.append(f"{name} must be text")
        return ""
    text = str(value).strip()
    if not text.isprintable() or len(text) > MAX_TEXT:
        problems.append(f"{name} must be printable text of at most {MAX_TEXT} characters")
        return ""
    return text


def _instant(value: Any, name: str, problems: list[str], *, required: bool = False) -> datetime | None:
    if value is None or value == "":
        if required:
            problems.append(f"{name} is required (an ISO date like 2026-11-01)")
        return None
    try:
        if isinstance(value, str) and len(value.strip()) == 10:
            parsed = datetime.combine(date.fromisoformat(value.strip()), time(), timezone.utc)
        elif isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        else:
            raise ValueError
        parsed = parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        problems.append(f"{name} {str(value)[:40]!r} is not an ISO date (2026-11-01) or date-time")
        return None
    if not _FIRST <= parsed < _LAST:
        problems.append(f"{name} {str(value)[:40]!r} is outside what storage keeps (1970 to 2105)")
        return None
    return parsed
