"""Cost reports: one parameter set for the CLI and ``GET /v1/costs``, one SQL builder.

Group-by dimensions and filters come from allowlists of fixed SQL fragments; every value
a user gives (filter values, tag names, the time zone, the range) is a bound query
parameter. No SQL is ever built from user text.

A report reads the smallest table that can answer it, all giving identical totals for the
same question (tested):

* ``daily``: rollups by UTC day without the user, when there is no user, hour or tag in
  the question and the range is whole UTC days;
* ``hourly``: rollups by hour with the user, when there are no tags, the range is whole
  UTC hours, and day/hour grouping is in a time zone whose hours start on UTC hours;
* ``raw``: the spans, otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from otel_costs_collector.sql import load

__all__ = [
    "DIMENSIONS",
    "FILTERS",
    "ReportError",
    "ReportQuery",
    "run_report",
    "run_notices",
    "COLUMNS_OUT",
    "money_text",
    "run_pricing_problems",
]

SOURCES = ("raw", "hourly", "daily")
_MODEL = "if(response_model != '', response_model, request_model)"
# name → expression in (raw spans, hourly rollups, daily rollups); None: not available there
DIMENSIONS: dict[str, tuple[str, str | None, str | None]] = {
    "tenant": ("tenant_id", "tenant_id", "tenant_id"),
    "user": ("user_id", "user_id", None),
    "feature": ("feature", "feature", "feature"),
    "model": (_MODEL, "model", "model"),
    "provider": ("provider", "provider", "provider"),
    "service": ("service", "service", "service"),
    "operation": ("operation", "operation", "operation"),
    "version": ("service_version", "service_version", "service_version"),  # the resource's service.version
    "environment": ("environment", "environment", "environment"),  # deployment.environment(.name)
    "day": ("toDate(timestamp, {tz:String})", "toDate(hour, {tz:String})", "day"),
    "hour": ("toStartOfHour(timestamp, {tz:String})", "toStartOfHour(hour, {tz:String})", None),
}
# the dimensions a report can be filtered by: the same expressions
FILTERS = {
    name: DIMENSIONS[name]
    for name in ("tenant", "user", "feature", "model", "provider", "service", "version", "environment")
}
#: Columns every report row has besides its group keys, in order.
COLUMNS_OUT = (
    "cost_usd",
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "unpriced_calls",
    "web_searches",
    "web_search_usd",
    "adjustment_usd",
    "error_calls",
)
MAX_DIMENSIONS = 6
MAX_TOP = 10_000
DEFAULT_SINCE = "7d"
_TAG = re.compile(r"^tag:([A-Za-z][A-Za-z0-9_.-]{0,63})$")
_SINCE = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
# The range storage holds: spans are stored from 1970 to 2105 (otel_costs_collector/mapping/rows.py).
_FIRST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LAST = datetime(2106, 1, 1, tzinfo=timezone.utc)


class ReportError(ValueError):
    """A report parameter is invalid; the message says which and why."""


@dataclass(frozen=True)
class ReportQuery:
    by: tuple[str, ...]
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    tz: str = "UTC"
    filters: tuple[tuple[str, str], ...] = ()
    top: int | None = None
    source: str = field(default="")  # "daily", "hourly" or "raw", decided by parse()

    @classmethod
    def parse(cls, params: Mapping[str, Any], now: datetime | None = None) -> "ReportQuery":
        """Validate report parameters (by, since, from, to, tz, top, tenant, user, …).

        Raises ReportError naming every invalid parameter.
        """
        problems: list[str] = []
        unknown = set(params) - {"by", "since", "from", "to", "tz", "top", "format", *FILTERS}
        if unknown:
            problems.append(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        by = _parse_by(params.get("by") or "", problems)
        tz_name = str(params.get("tz") or "UTC")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"tz: unknown time zone {tz_name!r}")
            tz = ZoneInfo("UTC")
        start, end = _parse_range(params, tz, now or datetime.now(timezone.utc), problems)
        top = None
        if params.get("top") not in (None, ""):
            try:
                top = int(params["top"])
                if not 1 <= top <= MAX_TOP:
                    raise ValueError
            except (TypeError, ValueError):
                problems.append(f"top: must be an integer from 1 to {MAX_TOP}, got {params['top']!r}")
        filters = []
        for name in FILTERS:
            value = params.get(name)
            if value in (None, ""):
                continue
            if not isinstance(value, str) or len(value) > 256 or not value.isprintable():
                problems.append(f"{name}: must be printable text of at most 256 characters")
                continue
            filters.append((name, value))
        if problems:
            raise ReportError("; ".join(problems))
        query = cls(by, start, end, tz_name, tuple(filters), top)
        return cls(by, start, end, tz_name, tuple(filters), top, query._choose_source(tz))

    def _choose_source(self, tz: ZoneInfo) -> str:
        if any(d.startswith("tag:") for d in self.by):
            return "raw"
        if any(t.minute or t.second or t.microsecond for t in (self.start, self.end)):
            return "raw"
        names = set(self.by) | {name for name, _ in self.filters}
        utc_days = not (self.start.hour or self.end.hour)
        if (
            utc_days
            and all(DIMENSIONS.get(n, FILTERS.get(n, (None,) * 3))[2] for n in names)
            and ("day" not in self.by or _same_day_start(tz, self.start, self.end))
        ):
            return "daily"
        if {"day", "hour"} & set(self.by):
            for t in (self.start, self.end - timedelta(microseconds=1)):
                offset = t.astimezone(tz).utcoffset() or timedelta(0)
                if offset.total_seconds() % 3600:
                    return "raw"
        return "hourly"

    def sql(self, db: str, source: str | None = None) -> tuple[str, dict[str, Any]]:
        """The SQL text and its bound parameters, reading ``source`` (default: the chosen one)."""
        source = source or self.source
        col = SOURCES.index(source)
        start, end = self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)
        params: dict[str, Any] = {
            "start": start.date() if source == "daily" else start,
            "end": end.date() if source == "daily" else end,
            "tz": self.tz,
        }
        dims = []
        for i, name in enumerate(self.by):
            tag = _TAG.match(name)
            if tag:
                params[f"tag_{i}"] = tag.group(1)
                expr = f"tags[{{tag_{i}:String}}]"
            else:
                column = DIMENSIONS[name][col]
                if column is None:
                    raise ReportError(f"{name} is not in the {source} table")
                expr = column
            dims.append(f"{expr} AS d{i}")
        text = load(
            __package__,
            f"costs_{source}",
            db=db,
            dims="".join(f"{d},\n    " for d in dims),
            filters=self.filters_sql(source, params),
            group_by=("GROUP BY " + ", ".join(f"d{i}" for i in range(len(dims)))) if dims else "",
            limit=f"LIMIT {int(self.top)}" if self.top else "",
        )
        return text, params

    def filters_sql(self, source: str, params: dict[str, Any]) -> str:
        """The filters' SQL for ``source``; their values go into ``params``."""
        col = SOURCES.index(source)
        filters = []
        for i, (name, value) in enumerate(self.filters):
            params[f"f_{i}"] = value
            expr = FILTERS[name][col]
            if expr is None:
                raise ReportError(f"{name} is not in the {source} table")
            filters.append(f"AND {expr} = {{f_{i}:String}}")
        return " ".join(filters)

    def notices_sql(self, db: str) -> tuple[str, dict[str, Any]]:
        """The SQL of :func:`run_notices` for this range and these filters, and its parameters."""
        params: dict[str, Any] = {"start": self.start.replace(tzinfo=None), "end": self.end.replace(tzinfo=None)}
        return load(__package__, "notices", db=db, filters=self.filters_sql("raw", params)), params


def _same_day_start(tz: ZoneInfo, start: datetime, end: datetime) -> bool:
    """Whether days in ``tz`` start at UTC midnight over the range (UTC itself, or zones
    at offset 0 then, like Europe/London in winter)."""
    return all(
        (t.astimezone(tz).utcoffset() or timedelta(0)) == timedelta(0) for t in (start, end - timedelta(microseconds=1))
    )


def _parse_by(raw: Any, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, str):
        problems.append("by: must be a comma-separated list")
        return ()
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in names:
        if name not in DIMENSIONS and not _TAG.match(name):
            problems.append(f"by: unknown dimension {name[:64]!r} (use {', '.join(DIMENSIONS)} or tag:<key>)")
    if len(set(names)) != len(names):
        problems.append("by: a dimension is repeated")
    if len(names) > MAX_DIMENSIONS:
        problems.append(f"by: at most {MAX_DIMENSIONS} dimensions")
    return names


def _parse_time(value: Any, tz: ZoneInfo, name: str, problems: list[str]) -> datetime | None:
    if not isinstance(value, str):
        problems.append(f"{name}: must be an ISO date or date-time")
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{name}: {value[:40]!r} is not an ISO date (2026-11-01) or date-time (2026-11-01T09:30)")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        utc: datetime | None = parsed.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01 or 9999-12-31 in a zone that moves it out of range
        utc = None
    if utc is None or not _FIRST <= utc <= _LAST:
        problems.append(f"{name}: {value[:40]!r} is outside what storage keeps (1970 to 2105)")
        return None
    return utc


def _parse_range(
    params: Mapping[str, Any], tz: ZoneInfo, now: datetime, problems: list[str]
) -> tuple[datetime, datetime]:
    since, start_raw, end_raw = params.get("since"), params.get("from"), params.get("to")
    next_hour = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if since and (start_raw or end_raw):
        problems.append("since: give either since or from/to, not both")
    if start_raw or end_raw:
        start = _parse_time(start_raw, tz, "from", problems) if start_raw else None
        end = _parse_time(end_raw, tz, "to", problems) if end_raw else next_hour
        if start_raw is None:
            problems.append("from: required with to")
        if start and end and start >= end:
            problems.append("from: must be before to")
        return start or next_hour - timedelta(days=7), end or next_hour
    m = _SINCE.match(str(since or DEFAULT_SINCE))
    if not m:
        problems.append(f"since: {str(since)[:40]!r} is not like 24h, 7d or 4w")
        return next_hour - timedelta(days=7), next_hour
    count, unit = int(m.group(1)), m.group(2)
    if unit == "h":
        # The last N hours up to the end of the current one: whole hours, so the hourly
        # rollups can answer.
        return next_hour - count * _UNITS["h"], next_hour
    # Calendar days in tz: today and the N-1 days before it, midnight to midnight, so
    # daily rollups can answer (for UTC) and a day's figure does not change with the hour.
    days = count * (7 if unit == "w" else 1)
    today = now.astimezone(tz).date()
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tz)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def run_report(client: Any, db: str, query: ReportQuery, source: str | None = None) -> list[dict[str, Any]]:
    """Rows of a report as JSON-ready dicts, most expensive first, or in time order when
    grouped by day or hour: group keys named as in ``by``; ``cost_usd`` and
    its parts ``web_search_usd`` and ``adjustment_usd`` (what providers billed beyond our
    list-price estimate, where they report their cost) as exact decimal strings; counts
    (``error_calls``: calls whose span status is error) as ints. Raises on a storage error."""
    text, params = query.sql(db, source)
    result = client.query(text, parameters=params)
    rows = []
    for values in result.result_rows:
        keys, metrics = values[: len(query.by)], values[len(query.by) :]
        row: dict[str, Any] = {name: _key(value) for name, value in zip(query.by, keys)}
        calls, cost, inp, out, cache_read, cache_write, unpriced, searches, search_cost, adjustment, errors = metrics
        row.update(
            cost_usd=money_text(cost),
            calls=int(calls),
            input_tokens=int(inp),
            output_tokens=int(out),
            cache_read_tokens=int(cache_read),
            cache_write_tokens=int(cache_write),
            unpriced_calls=int(unpriced),
            web_searches=int(searches),
            web_search_usd=money_text(search_cost),
            adjustment_usd=money_text(adjustment),
            error_calls=int(errors),
        )
        rows.append(row)
    times = [d for d in query.by if d in ("day", "hour")]
    if times:  # a time series reads in time order (most expensive first within a time)
        rows.sort(key=lambda r: tuple(r[d] for d in times))
    return rows


def run_notices(client: Any, db: str, query: ReportQuery) -> dict[str, Any]:
    """What a report's reader should know about its range beyond the rows:
    ``suspected_double_counts``, calls stored below another call that also carries a cost,
    which the counting rules could not pair (otel_costs_collector/mapping/calls.py), with one ``example_trace_id``
    ("" when none). Raises on a storage error."""
    text, params = query.notices_sql(db)
    count, trace_id = client.query(text, parameters=params).result_rows[0]
    return {"suspected_double_counts": int(count), "example_trace_id": trace_id if count else ""}


def run_pricing_problems(client: Any, db: str, query: ReportQuery) -> list[dict[str, Any]]:
    """Why the range's calls without a cost have none: ``status`` (unpriced, invalid_usage,
    incomplete), ``calls``, up to five ``models`` and one ``example`` error. Raises on a
    storage error."""
    params: dict[str, Any] = {"start": query.start.replace(tzinfo=None), "end": query.end.replace(tzinfo=None)}
    text = load(__package__, "pricing_problems", db=db, filters=query.filters_sql("raw", params))
    return [
        {"status": status, "calls": int(n), "models": list(models), "example": example}
        for status, n, models, example in client.query(text, parameters=params).result_rows
    ]


def _key(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def money_text(value: Any) -> str:
    amount = Decimal(value or 0)
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
