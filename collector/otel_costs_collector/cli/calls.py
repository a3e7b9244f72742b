"""``otel-costs calls``: individual calls, newest first (otel_costs_collector/reports/calls.py)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import click

from otel_costs_collector.cli.options import _ca_file, _config, _database, _fail, _filters, _source, _storage, _url

__all__ = ["calls"]

_TABLE = (
    "timestamp",
    "provider",
    "model",
    "tenant",
    "user",
    "feature",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "status",
    "pricing_status",
)
_NUMERIC = ("input_tokens", "output_tokens", "cost_usd")


@click.command()
@_url
@_ca_file
@_storage
@_database
@click.option("--since", help="Range up to now, like 24h, 7d, 4w (default 7d; with --trace-id alone: all).")
@click.option("--from", "from_", metavar="ISO", help="Start date or date-time (in --tz).")
@click.option("--to", metavar="ISO", help="End date or date-time, exclusive (in --tz).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of --from and --to.")
@_filters
@click.option("--trace-id", help="One trace's calls, with its totals.")
@click.option("--status", type=click.Choice(["ok", "error", "unset"]))
@click.option("--pricing-status", help="priced, unpriced, incomplete, …")
@click.option("--limit", type=int, default=100, show_default=True, help="Calls in this page (1–1000).")
@click.option("--cursor", help="The next page: the cursor the previous page printed.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def calls(url, ca_file, storage, database, since, from_, to, tz, limit, cursor, fmt, **filters) -> None:
    """Individual calls, newest first: every token count and cost part, who and what made it."""
    from otel_costs_collector.cli.source import Api, NoData, Unavailable
    from otel_costs_collector.reports.calls import CallsQuery, run_calls
    from otel_costs_collector.reports.query import ReportError

    params = {"since": since, "from": from_, "to": to, "tz": tz, "limit": str(limit), "cursor": cursor, **filters}
    params = {k: str(v) for k, v in params.items() if v not in (None, "")}
    try:
        query = CallsQuery.parse(params)
    except ReportError as exc:
        _fail(str(exc))
    source = _source(_config(url=url, ca_file=ca_file, storage=storage, database=database))
    try:
        if isinstance(source, Api):
            page = source.call("GET", "/v1/calls?" + urllib.parse.urlencode(params))
        else:
            page = source.run(lambda client: run_calls(client, source.database, query))
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    click.echo(render(page, fmt), nl=fmt != "csv")
    if fmt == "table" and page.get("next_cursor"):
        click.echo(f"more: --cursor {page['next_cursor']}", err=True)


def render(page: dict[str, Any], fmt: str) -> str:
    from otel_costs_collector.reports.calls import CALL_FIELDS
    from otel_costs_collector.reports.render import csv_text, table_text

    rows = page["calls"]
    if fmt == "json":
        return json.dumps(page, indent=2)
    if fmt == "csv":
        flat = [{**r, "tags": json.dumps(r["tags"], sort_keys=True)} for r in rows]
        text_columns = [c for c in CALL_FIELDS if not c.endswith(("_usd", "_tokens", "_ms", "web_searches"))]
        return csv_text(flat, list(CALL_FIELDS), text_columns=text_columns)
    cells = [
        {
            **r,
            "timestamp": r["timestamp"][:19].replace("T", " "),
            "model": r["response_model"] or r["request_model"],
            "input_tokens": r["input_tokens"],
            "output_tokens": r["output_tokens"],
        }
        for r in rows
    ]
    trace = page.get("trace")
    foot: dict[str, Any] = {"timestamp": "TRACE" if trace else ""}
    if trace:
        foot.update(
            input_tokens=trace["input_tokens"], output_tokens=trace["output_tokens"], cost_usd=trace["cost_usd"]
        )
    return table_text(cells, list(_TABLE), numeric=_NUMERIC, foot=foot)
