"""``otel-costs margin`` (revenue beside AI cost), ``revenue import`` and ``revenue pull``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from otel_costs_collector.cli.options import _ca_file, _config, _database, _fail, _source, _storage, _url

__all__ = ["margin", "revenue"]

_COLUMNS = ("revenue_usd", "ai_cost_usd", "margin_usd", "cost_to_revenue", "status")
_PLAN_COLUMNS = (
    "tenants",
    "revenue_usd",
    "ai_cost_usd",
    "cost_per_tenant_median",
    "cost_per_tenant_p90",
    "cost_per_tenant_max",
)


def _where(command: Any) -> Any:
    for option in (_database, _storage, _ca_file, _url):
        command = option(command)
    return command


@click.command()
@_where
@click.option("--since", help="Today and the days before it, like 30d or 4w (default 30d).")
@click.option("--from", "from_", metavar="DATE", help="First UTC day (ISO date).")
@click.option("--to", metavar="DATE", help="Day after the last (ISO date, exclusive).")
@click.option("--by", type=click.Choice(["tenant", "plan", "month"]), default="tenant", show_default=True)
@click.option("--max-ratio", help="AI cost / revenue above which a tenant is unprofitable (default 1.0).")
@click.option("--warn-ratio", help="AI cost / revenue above which a tenant is in the warning band (default 0.8).")
@click.option(
    "--rates", "rates_file", metavar="FILE", help="Exchange rates, USD per unit (JSON or CSV lines EUR,1.08)."
)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def margin(url, ca_file, storage, database, since, from_, to, by, max_ratio, warn_ratio, rates_file, fmt) -> None:
    """Revenue beside AI cost: margin and cost-to-revenue per tenant, plan or month.

    Revenue comes from Stripe (OTEL_COSTS_STRIPE_KEY) or `otel-costs revenue import`. Revenue
    in a currency other than USD needs rates (--rates, or OTEL_COSTS_FX_RATES_FILE on the
    collector); without them it is listed as unconverted."""
    from otel_costs_collector.cli.source import NoData, Unavailable
    from otel_costs_collector.revenue.client import fetch_margin
    from otel_costs_collector.revenue.margin import MarginError, MarginQuery, read_rates

    params = {"since": since or "", "from": from_ or "", "to": to or "", "by": by}
    params |= {"max_ratio": max_ratio or "", "warn_ratio": warn_ratio or ""}
    try:
        rates = None
        if rates_file:
            with open(rates_file, encoding="utf-8") as f:
                rates = read_rates(f.read(1 << 20))
            params["rates"] = ",".join(f"{c}={format(r, 'f')}" for c, r in rates.items())
        query = MarginQuery.parse({k: v for k, v in params.items() if v and k != "rates"}, rates)
    except (OSError, MarginError) as exc:
        _fail(str(exc))
    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    try:
        report = fetch_margin(_source(cfg), params, query)
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    click.echo(render(report, fmt), nl=fmt != "csv")


def render(report: dict[str, Any], fmt: str) -> str:
    """The report as JSON (whole), CSV (its rows) or tables (rows, unprofitable tenants, plans,
    and what could not be compared)."""
    from otel_costs_collector.reports.render import csv_text, table_text

    keys = {"tenant": ("tenant", "plan"), "plan": ("plan",), "month": ("month",)}[report["by"]]
    columns = [*keys, *(_PLAN_COLUMNS if report["by"] == "plan" else _COLUMNS)]
    if fmt == "json":
        return json.dumps(report, indent=2)
    if fmt == "csv":
        return csv_text(report["rows"], columns, text_columns=keys)
    cells = [{c: "-" if r.get(c) is None else r[c] for c in columns} for r in report["rows"]]
    out = [f"margin {report['from']} to {report['to']} (exclusive), in {report['basis']}", ""]
    out.append(table_text(cells, columns, numeric=columns[len(keys) :], foot=_totals(report["rows"], keys[0])))
    if report["unprofitable"]:
        out += ["", f"unprofitable (AI cost above {report['max_ratio']} of revenue), by loss:"]
        out += [
            f"  {r['tenant']}: revenue {r['revenue_usd']}, AI cost {r['ai_cost_usd']}, ratio {r['cost_to_revenue']}"
            for r in report["unprofitable"]
        ]
    if report["no_revenue"]:
        out += ["", "AI cost and no revenue (free or unmapped tenants):"]
        out += [f"  {r['tenant']}: AI cost {r['ai_cost_usd']}" for r in report["no_revenue"]]
    if report["no_tenant_revenue"] != "0":
        out += ["", f"revenue with no tenant: {report['no_tenant_revenue']} USD"]
    if report["unconverted"]:
        out += ["", "revenue in currencies without a rate (give --rates):"]
        out += [f"  {r['tenant'] or '(no tenant)'}: {r['revenue']} {r['currency']}" for r in report["unconverted"]]
    if report["by"] != "plan" and report["plans"]:
        plans = ["plan", *_PLAN_COLUMNS]
        out += ["", table_text(report["plans"], plans, numeric=_PLAN_COLUMNS, foot=_totals(report["plans"], "plan"))]
    return "\n".join(out)


def _totals(rows: list[dict[str, Any]], first: str) -> dict[str, Any]:
    from decimal import Decimal

    foot: dict[str, Any] = {first: "TOTAL"}
    for column in ("tenants", "revenue_usd", "ai_cost_usd", "margin_usd"):
        if rows and column in rows[0]:
            foot[column] = sum((Decimal(r[column]) for r in rows), Decimal(0))
    return foot


@click.group()
def revenue() -> None:
    """What customers pay: Stripe pulls and imports from any billing system."""


@revenue.command("import")
@_where
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: JSON lines when it starts with {.")
def import_cmd(url, ca_file, storage, database, file, fmt) -> None:
    """Import revenue lines from FILE (CSV with a header, or JSON lines): id, tenant, amount
    (major units, e.g. 20.00), currency, period_start, period_end (exclusive; default the next
    day), plan. Idempotent: a line imported again under its id replaces the earlier one.
    Lines that cannot be revenue are listed and left out; the rest are imported (exit 1 then)."""
    from otel_costs_collector.cli.source import NoData, Unavailable
    from otel_costs_collector.revenue.client import import_lines
    from otel_costs_collector.revenue.lines import LineError, parse_import

    try:
        if file == "-":
            text = sys.stdin.read()
        else:
            with open(file, encoding="utf-8") as f:
                text = f.read()
        lines, problems = parse_import(text, fmt)
    except (OSError, UnicodeDecodeError, LineError) as exc:
        _fail(f"{file}: {exc}")
    for problem in problems:
        click.echo(f"{file}: {problem}", err=True)
    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    if lines:
        try:
            stored = import_lines(_source(cfg), lines)
        except (NoData, Unavailable) as exc:
            _fail(str(exc))
        click.echo(f"imported {stored} revenue line{'s' if stored != 1 else ''}")
    if problems:
        _fail(f"{len(problems)} line(s) left out")


@revenue.command("pull")
@_where
def pull_cmd(url, ca_file, storage, database) -> None:
    """Pull Stripe's invoices and credit notes now (OTEL_COSTS_STRIPE_KEY)."""
    from otel_costs_collector.cli.source import NoData, Unavailable
    from otel_costs_collector.revenue.client import pull_revenue

    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    try:
        result = pull_revenue(_source(cfg), cfg.stripe_key, cfg.stripe_api_base, cfg.stripe_tenant_key)
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    for problem in result.get("problems") or ():
        click.echo(f"stripe: {problem}", err=True)
    if result.get("error"):
        _fail(str(result["error"]))
    click.echo(f"stripe: {result['lines']} lines ({result['days']} line-days)")
