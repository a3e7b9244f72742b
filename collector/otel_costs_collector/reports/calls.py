"""Individual calls: one parameter set for ``otel-costs calls`` and ``GET /v1/calls``.

The same range and filters as a cost report (``since`` or ``from``/``to``, ``tz``, tenant,
user, feature, model, provider, service), plus ``trace_id``, ``status`` (ok, error, unset)
and ``pricing_status``; newest first, ``limit`` (1–1000, default 100) a page, and keyset
paging with the opaque ``cursor`` a page returns, so pages never repeat or skip a call
however many arrive meanwhile (``order=cost``: the most expensive first, one page). Each
call counted once (aggregates and a second instrumentation's span of a call counted
elsewhere are left out, as in every report). ``trace_id`` alone (no range) reads the trace
whenever it ran, and the answer adds the trace's totals.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from otel_costs_collector.reports.query import FILTERS, ReportError, ReportQuery, money_text
from otel_costs_collector.sql import load
from otel_costs_collector.storage.columns import COLUMNS

__all__ = ["CallsQuery", "run_calls", "CALL_FIELDS", "MAX_LIMIT"]

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
STATUSES = ("ok", "error", "unset")
_TRACE = re.compile(r"^[0-9a-f]{32}$")
_STATUS_TEXT = re.compile(r"^[a-z_]{1,32}$")
# The raw table's token counts and cost parts, in its order (calls.sql selects them so).
_COUNTS = COLUMNS[COLUMNS.index("input_tokens") : COLUMNS.index("web_searches") + 1]
_COSTS = COLUMNS[COLUMNS.index("cost_input") : COLUMNS.index("cost_total")]
#: The fields of every call, in order (calls.sql selects them).
CALL_FIELDS = (
    "timestamp",
    "trace_id",
    "span_id",
    "service",
    "provider",
    "request_model",
    "response_model",
    "operation",
    *_COUNTS,
    *(c.replace("cost_", "") + "_usd" for c in _COSTS),
    "cost_usd",
    "pricing_status",
    "pricing_source",
    "pricing_error",
    "cost_source",
    "service_tier",
    "status",
    "error_type",
    "duration_ms",
    "user",
    "tenant",
    "feature",
    "tags",
    "version",
    "environment",
)
# The range storage holds (otel_costs_collector/mapping/rows.py): a trace_id alone reads all of it.
_FIRST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LAST = datetime(2106, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class CallsQuery:
    report: ReportQuery  # the range and the filters
    trace_id: str = ""
    status: str = ""
    pricing_status: str = ""
    limit: int = DEFAULT_LIMIT
    after: tuple[int, str, str] | None = None  # the cursor: (ns, trace, span) of the last call read
    order: str = "time"  # "time": newest first, paged; "cost": most expensive first, one page

    @classmethod
    def parse(cls, params: Mapping[str, Any], now: datetime | None = None) -> "CallsQuery":
        """Raises ReportError naming every invalid parameter."""
        problems: list[str] = []
        own = {"trace_id", "status", "pricing_status", "limit", "cursor", "order"}
        unknown = set(params) - own - {"since", "from", "to", "tz", "format", *FILTERS}
        if unknown:
            problems.append(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        trace_id = str(params.get("trace_id") or "").lower()
        if trace_id and not _TRACE.match(trace_id):
            problems.append("trace_id: 32 hexadecimal digits")
        status = str(params.get("status") or "")
        if status and status not in STATUSES:
            problems.append(f"status: one of {', '.join(STATUSES)}")
        pricing_status = str(params.get("pricing_status") or "")
        if pricing_status and not _STATUS_TEXT.match(pricing_status):
            problems.append("pricing_status: a status like priced, unpriced or incomplete")
        limit = DEFAULT_LIMIT
        if params.get("limit") not in (None, ""):
            try:
                limit = int(params["limit"])
                if not 1 <= limit <= MAX_LIMIT:
                    raise ValueError
            except (TypeError, ValueError):
                problems.append(f"limit: an integer from 1 to {MAX_LIMIT}")
        after = None
        if params.get("cursor"):
            after = _decode_cursor(str(params["cursor"]))
            if after is None:
                problems.append("cursor: not a cursor this API gave")
        order = str(params.get("order") or "time")
        if order not in ("time", "cost"):
            problems.append("order: time (newest first) or cost (most expensive first)")
        elif order == "cost" and after is not None:
            problems.append("cursor: pages are by time only (order=cost is one page)")
        report_params = {k: v for k, v in params.items() if k not in own and k != "format" and k not in unknown}
        try:
            report = ReportQuery.parse(report_params, now=now)
        except ReportError as exc:
            problems.append(str(exc))
            report = None
        if problems or report is None:
            raise ReportError("; ".join(problems))
        if trace_id and not any(params.get(k) for k in ("since", "from", "to")):
            report = ReportQuery(report.by, _FIRST, _LAST, report.tz, report.filters, None, "raw")
        return cls(report, trace_id, status, pricing_status, limit, after, order)


def _encode_cursor(ns: int, trace_id: str, span_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([ns, trace_id, span_id]).encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> tuple[int, str, str] | None:
    try:
        ns, trace_id, span_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError, binascii.Error):
        return None
    if not isinstance(ns, int) or not isinstance(trace_id, str) or not isinstance(span_id, str):
        return None
    if not -(2**63) <= ns < 2**63:  # an Int64 parameter
        return None
    if len(trace_id) > 64 or len(span_id) > 64:
        return None
    return ns, trace_id, span_id


def run_calls(client: Any, db: str, query: CallsQuery) -> dict[str, Any]:
    """``{"calls": [...], "next_cursor": str | None}`` and, for a trace, ``"trace"`` with its
    totals. Money as exact decimal strings; times as ISO 8601 UTC with nanoseconds. Raises on
    a storage error."""
    report = query.report
    params: dict[str, Any] = {
        "start": report.start.replace(tzinfo=None),
        "end": report.end.replace(tzinfo=None),
        "limit": query.limit + 1,
    }
    filters = report.filters_sql("raw", params)
    where = []
    for name, column in (("trace_id", "trace_id"), ("status", "status_code"), ("pricing_status", "pricing_status")):
        value = getattr(query, name)
        if value:
            params[name] = value
            where.append(f"AND {column} = {{{name}:String}}")
    cursor = ""
    if query.after is not None:
        params["c_ns"], params["c_trace"], params["c_span"] = query.after
        cursor = (
            "AND (timestamp, trace_id, span_id) < "
            "(fromUnixTimestamp64Nano({c_ns:Int64}, 'UTC'), {c_trace:String}, {c_span:String})"
        )
    order = "cost_total DESC, timestamp DESC" if query.order == "cost" else "timestamp DESC"
    text = load(__package__, "calls", db=db, filters=filters, where=" ".join(where), cursor=cursor, order=order)
    rows = client.query(text, parameters=params).result_rows
    calls = [_call(row) for row in rows[: query.limit]]
    more = len(rows) > query.limit and query.order == "time"
    last = rows[query.limit - 1] if more else None
    out: dict[str, Any] = {
        "calls": calls,
        "next_cursor": _encode_cursor(int(last[0]), last[1], last[2]) if last is not None else None,
    }
    if query.trace_id:
        totals_params: dict[str, Any] = {"trace_id": query.trace_id}
        totals = load(__package__, "trace_totals", db=db, filters=report.filters_sql("raw", totals_params))
        n, cost, inp, outp, unpriced, errors, first, last_end = client.query(
            totals, parameters=totals_params
        ).result_rows[0]
        out["trace"] = {
            "trace_id": query.trace_id,
            "calls": int(n),
            "cost_usd": money_text(cost),
            "input_tokens": int(inp),
            "output_tokens": int(outp),
            "unpriced_calls": int(unpriced),
            "error_calls": int(errors),
            "duration_ms": round((int(last_end) - int(first)) / 1e6, 3) if n else 0,
        }
    return out


def _call(row: tuple[Any, ...]) -> dict[str, Any]:
    (ns, trace_id, span_id, service, provider, request_model, response_model, operation, *rest) = row
    counts, rest = rest[: len(_COUNTS)], rest[len(_COUNTS) :]
    costs, rest = rest[: len(_COSTS) + 1], rest[len(_COSTS) + 1 :]
    (pricing_status, pricing_source, pricing_error, cost_source, tier, status, error_type, duration_ns, *who) = rest
    user, tenant, feature, tags, version, environment = who
    call: dict[str, Any] = {
        "timestamp": _iso_ns(int(ns)),
        "trace_id": trace_id,
        "span_id": span_id,
        "service": service,
        "provider": provider,
        "request_model": request_model,
        "response_model": response_model,
        "operation": operation,
    }
    call.update({name: int(value) for name, value in zip(_COUNTS, counts)})
    call.update({name.replace("cost_", "") + "_usd": money_text(value) for name, value in zip(_COSTS, costs)})
    call.update(
        cost_usd=money_text(costs[-1]),
        pricing_status=pricing_status,
        pricing_source=pricing_source,
        pricing_error=pricing_error,
        cost_source=cost_source,
        service_tier=tier,
        status=status,
        error_type=error_type,
        duration_ms=round(int(duration_ns) / 1e6, 3),
        user=user,
        tenant=tenant,
        feature=feature,
        tags=dict(tags),
        version=version,
        environment=environment,
    )
    return call


def _iso_ns(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{rest:09d}Z"
