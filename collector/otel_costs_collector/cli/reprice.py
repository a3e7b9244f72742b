"""``otel-costs reprice``: stored calls priced again with today's price table — a dry run, a run
applied (a new cost version, the old one kept), ``--history`` and ``--show RUN``."""

from __future__ import annotations

import getpass
import json
import socket
import sys
import urllib.parse
from decimal import Decimal
from typing import Any

import click

from otel_costs_collector.cli.options import _ca_file, _config, _database, _fail, _source, _storage, _url

__all__ = ["reprice"]

#: How long the CLI waits for a collector's run (s): a run over months of calls takes minutes.
API_TIMEOUT_S = 6 * 3600


@click.command()
@_url
@_ca_file
@_storage
@_database
@click.option("--since", help="Whole UTC days back, like 30d.")
@click.option("--from", "from_", metavar="DATE", help="First UTC day (ISO date).")
@click.option("--to", metavar="DATE", help="Day after the last, exclusive.")
@click.option("--model", help="Only the calls reports show under this model.")
@click.option("--only", type=click.Choice(["all", "unpriced"]), default="all", show_default=True)
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--prices-file", help="Price overrides (TOML) when storage is opened here. Env OTEL_COSTS_PRICES_FILE.")
@click.option("--history", is_flag=True, help="List the runs, newest first.")
@click.option("--show", metavar="RUN", help="One run: its days and what it changed.")
@click.option("--calls", type=int, default=0, help="With --show: list this many calls' old and new versions.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def reprice(
    url, ca_file, storage, database, since, from_, to, model, only, dry_run, prices_file, history, show, calls, fmt
) -> None:
    """Price the calls of whole UTC days again with the price table as it is now (genai-prices
    and the overrides file, each call at the price in force at its own time). Without
    --dry-run the changed calls get a new cost version (the old one is kept and shown by
    --show), the rollups are corrected and the run is recorded. Costs the provider billed are
    never re-priced; a known cost never becomes unknown."""
    from otel_costs_collector.cli.source import Api, NoData, Unavailable

    flags = {"url": url, "ca_file": ca_file, "storage": storage, "database": database, "prices_file": prices_file}
    cfg = _config(**{k: v for k, v in flags.items() if v is not None})
    source = _source(cfg)
    try:
        if history:
            doc = _history(source)
            click.echo(json.dumps(doc, indent=2) if fmt == "json" else render_history(doc["runs"]))
            return
        if show:
            doc = _show(source, show, calls)
            click.echo(json.dumps(doc, indent=2) if fmt == "json" else render_run(doc))
            return
        body = {"since": since, "from": from_, "to": to, "model": model, "only": only}
        body = {k: v for k, v in body.items() if v} | {"dry_run": dry_run, "by": _actor()}
        if isinstance(source, Api):
            if prices_file:
                click.echo("note: the collector re-prices with its own OTEL_COSTS_PRICES_FILE", err=True)
            click.echo(f"re-pricing through the collector at {source.url} …", err=True)
            doc = source.call("POST", "/v1/reprice", body, timeout=API_TIMEOUT_S)
        else:
            doc = _direct(source, body, cfg.prices_file)
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    click.echo(json.dumps(doc, indent=2) if fmt == "json" else render_result(doc))


def _direct(source: Any, body: dict[str, Any], prices_file: str | None) -> dict[str, Any]:
    from otel_costs.overrides import PriceOverridesError
    from otel_costs_collector.reprice.plan import RepriceError, RepriceRequest
    from otel_costs_collector.reprice.run import Busy, Repricer

    try:
        asked = RepriceRequest.parse(body)
    except RepriceError as exc:
        _fail(str(exc))
    shown = sys.stderr.isatty()

    def progress(line: str) -> None:
        if shown:
            click.echo(f"\r\033[K{line}", nl=False, err=True)

    def run(client: Any) -> dict[str, Any] | str:
        try:
            return Repricer(lambda: client, source.database, prices_file).run(asked, progress)
        except Busy as exc:  # (not a storage failure: said as it is)
            return str(exc)
        except PriceOverridesError as exc:
            return f"the price overrides file does not load, nothing was re-priced: {exc}"

    doc = source.run(run)
    if shown:
        click.echo("", err=True)  # the end of the progress line
    if isinstance(doc, str):
        _fail(doc)
    return doc


def _history(source: Any) -> dict[str, Any]:
    from otel_costs_collector.cli.source import Api
    from otel_costs_collector.reprice.journal import history

    if isinstance(source, Api):
        return source.call("GET", "/v1/reprice")
    return {"runs": [r.doc() for r in source.run(lambda client: history(client, source.database))]}


def _show(source: Any, run_id: str, calls: int) -> dict[str, Any]:
    from otel_costs_collector.cli.source import Api, NoData
    from otel_costs_collector.reprice.versions import run_doc

    if isinstance(source, Api):
        query = f"?{urllib.parse.urlencode({'calls': calls})}" if calls else ""
        return source.call("GET", f"/v1/reprice/{urllib.parse.quote(run_id, safe='')}{query}")
    doc = source.run(lambda client: run_doc(client, source.database, run_id, calls))
    if doc is None:
        raise NoData(f"no re-price run {run_id!r}: `otel-costs reprice --history` lists them")
    return doc


def _actor() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"[:128]
    except Exception:  # no user name (a container without one)
        return "cli"


_CHANGE_COLUMNS = ["day", "model", "tenant", "rows", "cost_before", "cost_after", "difference"]


def render_result(doc: dict[str, Any]) -> str:
    from otel_costs_collector.reports.render import table_text

    changes = [{**c, "tenant": c["tenant"] or "(none)"} for c in doc["changes"]]
    money = {k: Decimal(doc[k]) for k in ("cost_before", "cost_after", "difference")}
    foot = {"day": "total", "rows": doc["rows"], **money}
    head = "dry run: nothing changed" if doc["dry_run"] else f"run {doc['run']}: applied"
    lines = [f"{head} ({doc['from']} to {doc['to']} UTC, end excluded; only {doc['only']}; prices {doc['prices']})"]
    if changes:
        lines.append(table_text(changes, _CHANGE_COLUMNS, numeric=_CHANGE_COLUMNS[3:], foot=foot))
    else:
        lines.append("no call's cost changes")
    if doc.get("truncated"):
        lines.append("(more groups than listed; the totals count every call)")
    if doc["kept"]:
        lines.append("kept as they were: " + ", ".join(f"{n:,} {reason}" for reason, n in doc["kept"].items()))
    if doc.get("note"):
        lines.append(f"note: {doc['note']}")
    if doc["dry_run"] and doc["rows"]:
        lines.append("run it again without --dry-run to apply")
    return "\n".join(lines)


def render_history(runs: list[dict[str, Any]]) -> str:
    from otel_costs_collector.reports.render import table_text

    if not runs:
        return "no re-price runs yet"
    columns = ["run", "started_at", "by", "from", "to", "state", "rows", "cost_before", "cost_after", "difference"]
    return table_text(runs, columns, numeric=columns[6:], foot={})


def render_run(doc: dict[str, Any]) -> str:
    from otel_costs_collector.reports.render import table_text

    lines = [
        f"run {doc['run']} by {doc['by']} at {doc['started_at']}: {doc['state']}, {doc['rows']:,} calls, "
        f"${doc['cost_before']} -> ${doc['cost_after']} (prices {doc['prices']})"
    ]
    if doc.get("note"):
        lines.append(doc["note"])
    if doc["changes"]:
        changes = [{**c, "tenant": c["tenant"] or "(none)"} for c in doc["changes"]]
        lines.append(table_text(changes, _CHANGE_COLUMNS, numeric=_CHANGE_COLUMNS[3:], foot={}))
    for call in doc.get("calls", []):
        lines.append(
            f"{call['trace_id']}/{call['span_id']} {call['model']}: {call['old']['cost_total']} "
            f"({call['old']['pricing_status']}) -> {call['new']['cost_total']} ({call['new']['pricing_status']})"
        )
    return "\n".join(lines)
