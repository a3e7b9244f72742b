"""``otel-costs export focus``: the counted calls as a FOCUS 1.0 file for FinOps tools."""

from __future__ import annotations

import sys
import urllib.parse

import click

from otel_costs_collector.cli.options import _ca_file, _config, _database, _fail, _source, _storage, _url

__all__ = ["export"]


@click.group()
def export() -> None:
    """Cost data in other tools' formats."""


@export.command("focus")
@_url
@_ca_file
@_storage
@_database
@click.option("--since", help="Like 30d (default 7d).")
@click.option("--from", "from_", metavar="DATE", help="First UTC day (ISO date).")
@click.option("--to", metavar="DATE", help="Day after the last, exclusive.")
@click.option("--out", "out", metavar="FILE", help="Where to write (default: standard output, CSV only).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
def focus(url, ca_file, storage, database, since, from_, to, out, fmt) -> None:
    """One row per UTC day, provider, model and token type (tenant, user and feature in Tags), in
    the FinOps Foundation's FOCUS 1.0 columns; what FOCUS has no column for is x_-prefixed."""
    from otel_costs_collector.cli.source import Api, NoData, Unavailable
    from otel_costs_collector.reports.focus import focus_rows
    from otel_costs_collector.reports.focus_files import write_csv, write_parquet
    from otel_costs_collector.reports.query import ReportError, ReportQuery

    params = {k: v for k, v in {"since": since, "from": from_, "to": to}.items() if v}
    try:
        query = ReportQuery.parse(params)
    except ReportError as exc:
        _fail(str(exc))
    if fmt == "parquet" and not out:
        _fail("--format parquet needs --out FILE")
    source = _source(_config(url=url, ca_file=ca_file, storage=storage, database=database))
    if isinstance(source, Api):  # the collector writes the file; it is copied here in chunks
        path = "/v1/export/focus?" + urllib.parse.urlencode({**params, "format": fmt})
        try:
            if out:
                with open(out, "wb") as f:
                    source.download(path, f)
            else:
                source.download(path, sys.stdout.buffer)
        except (NoData, Unavailable, OSError) as exc:
            _fail(str(exc))
        if out:
            click.echo(f"FOCUS file written to {out}", err=True)
        return
    shown = sys.stderr.isatty()

    def progress(n: int) -> None:
        if shown:
            click.echo(f"\r{n:,} rows written", nl=False, err=True)

    def write(client) -> int:
        rows = focus_rows(client, source.database, query.start, query.end)
        if fmt == "parquet":
            return write_parquet(rows, out, progress)
        if out:
            with open(out, "w", encoding="utf-8", newline="") as f:
                return write_csv(rows, f, progress)
        return write_csv(rows, sys.stdout, progress)

    try:
        n = source.run(write)
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    if out:
        click.echo(f"\r{n:,} FOCUS rows written to {out}", err=True)
