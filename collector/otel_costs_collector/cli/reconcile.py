"""``otel-costs reconcile`` (tracked vs billed) and ``otel-costs reconcile pull``."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

import click

from otel_costs_collector.cli.options import _ca_file, _config, _database, _fail, _source, _storage, _url

__all__ = ["reconcile"]

_COLUMNS = ("billed_usd", "tracked_usd", "untracked_usd", "capture_rate", "attributed_usd", "complete")


def _where_and_when(command: Any) -> Any:
    """The data's place (as every reading command) and a range of UTC days."""
    for option in (
        click.option("--to", metavar="DATE", help="Day after the last (ISO date, exclusive)."),
        click.option("--from", "from_", metavar="DATE", help="First UTC day (ISO date)."),
        click.option("--since", help="Today and the days before it, like 30d or 4w (default 30d)."),
        _database,
        _storage,
        _ca_file,
        _url,
    ):
        command = option(command)
    return command


@click.group(invoke_without_command=True)
@_where_and_when
@click.option("--by", default="day,provider", show_default=True, help="Comma-separated: day, provider, model, project.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
def reconcile(ctx, url, ca_file, storage, database, since, from_, to, by, fmt) -> None:
    """Tracked vs billed: the providers' cost reports beside the costs stored, per UTC day.

    Set OTEL_COSTS_OPENAI_ADMIN_KEY / OTEL_COSTS_ANTHROPIC_ADMIN_KEY for the collector to pull
    the reports every OTEL_COSTS_RECONCILE_INTERVAL_S, or run `otel-costs reconcile pull`."""
    if ctx.invoked_subcommand is not None:
        return
    from otel_costs_collector.cli.source import NoData, Unavailable
    from otel_costs_collector.reconcile.client import fetch_reconciliation

    params = {"since": since or "", "from": from_ or "", "to": to or "", "by": by}
    query = _query(params)
    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    try:
        rows = fetch_reconciliation(_source(cfg), params, query, cfg.openai_projects)
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    click.echo(render(rows, query.by, fmt), nl=fmt != "csv")
    if fmt == "table" and not rows:
        click.echo("no provider cost reports pulled for this range: run `otel-costs reconcile pull`", err=True)


@reconcile.command("pull")
@_where_and_when
def pull(url, ca_file, storage, database, since, from_, to) -> None:
    """Pull the providers' cost reports for the range now (default: the last 30 days)."""
    from otel_costs_collector.cli.source import NoData, Unavailable
    from otel_costs_collector.reconcile.client import pull_reports

    params = {"since": since or "", "from": from_ or "", "to": to or ""}
    query = _query(params)
    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    try:
        results = pull_reports(_source(cfg), params, query, cfg.reconcile_keys(), cfg.reconcile_bases())
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    failed = False
    for result in results:
        if result["error"]:
            failed = True
            click.echo(f"{result['provider']}: {result['error']}", err=True)
        else:
            click.echo(f"{result['provider']}: {result['days']} days, {result['lines']} billed lines")
    if not results:
        _fail("no provider admin key is set: OTEL_COSTS_OPENAI_ADMIN_KEY or OTEL_COSTS_ANTHROPIC_ADMIN_KEY")
    if failed:
        sys.exit(1)


def _query(params: dict[str, str]) -> Any:
    """The range (and grouping) asked for; exits with one line when it is not valid."""
    from otel_costs_collector.reconcile.report import ReconcileError, ReconcileQuery

    try:
        return ReconcileQuery.parse({k: v for k, v in params.items() if v})
    except ReconcileError as exc:
        _fail(str(exc))


def render(rows: list[dict[str, Any]], by: tuple[str, ...], fmt: str) -> str:
    from otel_costs_collector.reconcile.report import capture_rate
    from otel_costs_collector.reports.render import csv_text, table_text

    columns = [*by, *_COLUMNS]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        flags = [{**r, "complete": "true" if r["complete"] else "false"} for r in rows]
        return csv_text(flags, columns, text_columns=by)
    cells = [
        {**r, "capture_rate": r["capture_rate"] or "-", "complete": "yes" if r["complete"] else "no"} for r in rows
    ]
    totals: dict[str, Any] = {c: "" for c in columns}
    if by:
        totals[by[0]] = "TOTAL"
    for c in ("billed_usd", "tracked_usd", "untracked_usd", "attributed_usd"):
        totals[c] = sum((Decimal(r[c]) for r in rows), Decimal(0))
    rate = capture_rate(totals["tracked_usd"], totals["billed_usd"])
    totals["capture_rate"] = "-" if rate is None else format(rate, "f")
    totals["complete"] = "yes" if rows and all(r["complete"] for r in rows) else "no"
    return table_text(cells, columns, numeric=_COLUMNS[:5], foot=totals)
