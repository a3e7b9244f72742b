"""``otel-costs report``: the same report through the collector's API or straight from
storage, printed as a terminal table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
from decimal import Decimal
from typing import Any

from otel_costs_collector.cli.source import Api, Direct
from otel_costs_collector.reports.query import COLUMNS_OUT, ReportQuery, run_notices, run_report

__all__ = ["fetch_rows", "fetch_notices", "notice_lines", "render", "csv_text", "table_text"]


def fetch_rows(source: Api | Direct, params: dict[str, Any], query: ReportQuery) -> list[dict[str, Any]]:
    """Rows of the report from a collector's query API or from storage (see
    :func:`source.locate`). Raises source.Unavailable, and source.NoData for storage
    without otel-costs data."""
    if isinstance(source, Api):
        encoded = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return source.call("GET", f"/v1/costs?{encoded}")
    return source.run(lambda client: run_report(client, source.database, query))


def fetch_notices(source: Api | Direct, params: dict[str, Any], query: ReportQuery) -> dict[str, Any]:
    """What a reader of the report should know (:func:`otel_costs_collector.reports.query.run_notices`), from the
    same place as its rows. Raises as :func:`fetch_rows`."""
    if isinstance(source, Api):
        encoded = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return source.call("GET", f"/v1/notices?{encoded}")
    return source.run(lambda client: run_notices(client, source.database, query))


def notice_lines(notices: dict[str, Any]) -> list[str]:
    """The notices as sentences (none when there is nothing to say)."""
    count = int(notices.get("suspected_double_counts") or 0)
    if not count:
        return []
    return [
        f"{count:,} call{'s' if count > 1 else ''} in this range {'were' if count > 1 else 'was'} stored below "
        f"another call that also carries a cost (e.g. trace {notices.get('example_trace_id', '')}): the "
        "instrumentations' spans were not recognised as one call or as an agent, so they may be counted "
        "twice. See docs/counting.md."
    ]


def render(rows: list[dict[str, Any]], by: tuple[str, ...], fmt: str) -> str:
    """Rows as ``table`` (with a totals row), ``csv`` (with a header) or ``json``."""
    columns = [*by, *COLUMNS_OUT]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        return csv_text(rows, columns, text_columns=columns)
    totals: dict[str, Any] = {c: "" for c in by}
    if by:
        totals[by[0]] = "TOTAL"
    for c in COLUMNS_OUT:
        if c.endswith("_usd"):
            totals[c] = sum((Decimal(r[c]) for r in rows), Decimal(0))
        else:
            totals[c] = sum(int(r[c]) for r in rows)
    return table_text(rows, columns, numeric=COLUMNS_OUT, foot=totals)


def csv_text(rows: list[dict[str, Any]], columns: list[str], text_columns: Any) -> str:
    """CSV with a header; cells of ``text_columns`` are made safe for spreadsheets."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _cell_safe(v) if k in text_columns else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def table_text(rows: list[dict[str, Any]], columns: list[str], *, numeric: Any, foot: dict[str, Any]) -> str:
    """A terminal table: a header, the rows, and ``foot`` (totals) under a rule; the
    ``numeric`` columns right-aligned (Decimals written plainly, ints with separators)."""
    body = [[_cell(r.get(c)) for c in columns] for r in rows]
    last = [_cell(_plain(v) if isinstance(v, Decimal) else v) for v in (foot.get(c, "") for c in columns)]
    widths = [max(len(c), *(len(row[i]) for row in [*body, last])) for i, c in enumerate(columns)]
    aligned = [c in numeric for c in columns]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(cells, widths, aligned)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), rule, *(line(r) for r in body), rule, line(last)])


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with =, +, -, @, tab or CR (values
    from span attributes: a tenant, a tag) gets a leading apostrophe (OWASP's rule). Numbers
    are written as they are: a cost is never negative."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value == "":
        return ""
    return str(value) if not isinstance(value, int) else f"{value:,}"


def _plain(amount: Decimal) -> str:
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
