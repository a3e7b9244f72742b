"""``otel-costs compare``: a feature's cost per release (or in two ranges) and what changed it."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import click

from otel_costs_collector.cli.options import _ca_file, _config, _database, _fail, _filters, _source, _storage, _url

__all__ = ["compare"]


@click.command()
@_url
@_ca_file
@_storage
@_database
@click.option("--by", type=click.Choice(["version", "range"]), help="Releases (default), or --before/--after.")
@click.option("--since", help="The range the releases are read in, like 30d (default 7d).")
@click.option("--from", "from_", metavar="ISO", help="Start date (with --to).")
@click.option("--to", metavar="ISO", help="End date, exclusive.")
@click.option("--before", metavar="FROM..TO", help="The first range, ISO dates (the end exclusive).")
@click.option("--after", metavar="FROM..TO", help="The second range.")
@_filters
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def compare(url, ca_file, storage, database, by, since, from_, to, before, after, fmt, **filters) -> None:
    """Per feature: calls, cost per call, tokens per call, price per token and model mix in
    each release (service.version) or range, and each change split into calls × tokens per
    call × price per token."""
    from otel_costs_collector.cli.source import Api, NoData, Unavailable
    from otel_costs_collector.reports.compare import CompareQuery, run_compare
    from otel_costs_collector.reports.query import ReportError

    params = {"by": by, "since": since, "from": from_, "to": to, **filters}
    for name, value in (("before", before), ("after", after)):
        if value:
            start, _, end = value.partition("..")
            params |= {f"{name}_from": start, f"{name}_to": end}
    params = {k: str(v) for k, v in params.items() if v not in (None, "")}
    try:
        query = CompareQuery.parse(params)
    except ReportError as exc:
        _fail(str(exc))
    source = _source(_config(url=url, ca_file=ca_file, storage=storage, database=database))
    try:
        if isinstance(source, Api):
            features = source.call("GET", "/v1/compare?" + urllib.parse.urlencode(params))
        else:
            features = source.run(lambda client: run_compare(client, source.database, query))
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    click.echo(json.dumps(features, indent=2) if fmt == "json" else render(features))


def render(features: list[dict[str, Any]]) -> str:
    from otel_costs_collector.reports.render import table_text

    if not features:
        return "no calls in this range"
    columns = ["period", "first_day", "calls", "cost_usd", "cost_per_call", "tokens_per_call", "usd_per_mtok", "model"]
    out = []
    for f in features:
        rows = [{**p, "model": p["models"][0]["model"] if p["models"] else "", "first_day": p["first_day"] or ""}
                for p in f["periods"]]  # fmt: skip
        out += [f"feature {f['feature'] or '(none)'}", table_text(rows, columns, numeric=columns[2:7], foot={})]
        out += [
            f"  {c['summary']} (calls ×{c['calls_ratio']}, tokens per call ×{c['tokens_per_call_ratio']}, "
            f"price per token ×{c['price_per_token_ratio']})"
            for c in f["changes"]
        ]
        out.append("")
    return "\n".join(out).rstrip()
