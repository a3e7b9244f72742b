"""``otel-costs anomalies``: the cost anomalies the collector found, newest first."""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime, timezone
from typing import Any

import click

from otel_costs_collector.cli.options import _ca_file, _config, _database, _fail, _source, _storage, _url

__all__ = ["anomalies", "forecast"]


@click.command()
@_url
@_ca_file
@_storage
@_database
@click.option("--since", default="7d", show_default=True, help="Like 24h or 7d (at most 30d).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def anomalies(url, ca_file, storage, database, since, fmt) -> None:
    """Spend above its baseline (the same hour of past weeks, or a trailing median), per
    feature, tenant, model and in total: the impact, who and what drove it, and what changed."""
    from otel_costs_collector.anomalies.api import parse_since
    from otel_costs_collector.anomalies.detector import AnomalyDetector
    from otel_costs_collector.cli.source import Api, NoData, Unavailable

    try:
        start = parse_since(since, datetime.now(timezone.utc))
    except ValueError as exc:
        _fail(str(exc))
    source = _source(_config(url=url, ca_file=ca_file, storage=storage, database=database))
    try:
        if isinstance(source, Api):
            found = source.call("GET", "/v1/anomalies?" + urllib.parse.urlencode({"since": since}))
        else:
            found = source.run(lambda client: AnomalyDetector(lambda: client, source.database).since(start))
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    click.echo(json.dumps(found, indent=2) if fmt == "json" else render(found))


def render(found: list[dict[str, Any]]) -> str:
    if not found:
        return "no cost anomalies in this range"
    lines = []
    for a in found:
        name = "total" if a["kind"] == "total" else f"{a['kind']} {a['scope'] or '(none)'}"
        lines.append(
            f"{a['start'][:16].replace('T', ' ')} {a['window']:<4} {name}: ${a['actual_usd']} vs "
            f"${a['expected_usd']} ({a['method']}), +${a['impact_usd']}"
            + (f" (+{a['impact_percent']}%)" if a["impact_percent"] is not None else "")
        )
        drivers = [f"{k} {v[0]['value'] or '(none)'}" for k, v in a["contributors"].items() if v]
        if drivers:
            lines.append(f"    driven by {', '.join(drivers)}")
        if a["change"]["model_change"]:
            lines.append(f"    {a['change']['summary']}")
    return "\n".join(lines)


@click.command()
@_url
@_ca_file
@_storage
@_database
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def forecast(url, ca_file, storage, database, fmt) -> None:
    """This UTC month's spend so far and where it will end (with an interval), in total and per
    feature, from the same baselines as anomalies."""
    from otel_costs_collector.anomalies.outlook import month_forecast
    from otel_costs_collector.cli.source import Api, NoData, Unavailable
    from otel_costs_collector.reports.render import table_text

    source = _source(_config(url=url, ca_file=ca_file, storage=storage, database=database))
    try:
        if isinstance(source, Api):
            found = source.call("GET", "/v1/forecast")
        else:
            found = source.run(lambda client: month_forecast(client, source.database, datetime.now(timezone.utc)))
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
        return
    columns = ["feature", "spent_usd", "expected_usd", "low_usd", "high_usd", "method"]
    rows = [{c: "-" if r[c] is None else r[c] for c in columns} for r in found["features"]]
    total = {c: "-" if found["total"][c] is None else found["total"][c] for c in columns}
    click.echo(f"{found['month_start']} to {found['month_end']} (exclusive)")
    click.echo(table_text(rows, columns, numeric=columns[1:5], foot={**total, "feature": "TOTAL"}))
