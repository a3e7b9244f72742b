"""``otel-costs`` command line (click)."""

from __future__ import annotations

import json
import sys

import click

from otel_costs_collector.cli.anomalies import anomalies, forecast
from otel_costs_collector.cli.calls import calls
from otel_costs_collector.cli.compare import compare
from otel_costs_collector.cli.export import export
from otel_costs_collector.cli.options import (
    _ca_file,
    _cluster,
    _config,
    _database,
    _fail,
    _filters,
    _source,
    _storage,
    _ttl,
    _url,
)
from otel_costs_collector.cli.reconcile import reconcile
from otel_costs_collector.cli.reprice import reprice
from otel_costs_collector.cli.revenue import margin, revenue


def _failpoint():
    """Fault injection for bench/fault_harness.py: while the file named by
    OTEL_COSTS_FAILPOINT_STORAGE_DOWN exists, storage writes fail as when ClickHouse refuses
    inserts (StorageUnavailable) while it answers queries; a batch holding the bytes of
    OTEL_COSTS_FAILPOINT_POISON is refused as ClickHouse refuses data it can never take (a
    poison request: PermanentError)."""
    import os

    from otel_costs_collector.storage.errors import PermanentError, StorageUnavailable

    path = os.environ.get("OTEL_COSTS_FAILPOINT_STORAGE_DOWN")
    poison = os.environ.get("OTEL_COSTS_FAILPOINT_POISON", "").encode()
    if not path and not poison:
        return None

    def wrap(write):
        def maybe_down(batch):
            if path and os.path.exists(path):
                raise StorageUnavailable("Code: 252. DB::Exception: Too many parts (failpoint)")
            if poison and poison in batch.data:
                raise PermanentError("Code: 53. DB::Exception: Type mismatch: poison request (failpoint)")
            return write(batch)

        return maybe_down

    return wrap


@click.group()
@click.version_option(package_name="otel-costs")
def main() -> None:
    """otel-costs: cost of every LLM call, by feature, tenant and user."""


@main.command()
@_storage
@_database
@_cluster
@_ttl
@click.option("--host", help="Address to listen on. Env OTEL_COSTS_HOST; default 127.0.0.1.")
@click.option("--grpc-port", type=int, help="OTLP/gRPC port. Env OTEL_COSTS_GRPC_PORT; default 4317.")
@click.option(
    "--http-port", type=int, help="OTLP/HTTP, health and metrics port. Env OTEL_COSTS_HTTP_PORT; default 4318."
)
@click.option("--prices-file", help="Price overrides (TOML). Env OTEL_COSTS_PRICES_FILE.")
@click.option("--log-format", type=click.Choice(["json", "text"]), help="Env OTEL_COSTS_LOG_FORMAT; default json.")
@click.option("--auth-tokens-file", help="TOML of bearer tokens bound to tenants. Env OTEL_COSTS_AUTH_TOKENS_FILE.")
@click.option("--tls-cert-file", help="PEM certificate chain for TLS on both ports. Env OTEL_COSTS_TLS_CERT_FILE.")
@click.option("--tls-key-file", help="PEM private key for TLS. Env OTEL_COSTS_TLS_KEY_FILE.")
@click.option(
    "--writers",
    type=int,
    help="Batches written at once, each on its own storage connection. Env OTEL_COSTS_WRITERS; default 2.",
)
@click.option(
    "--map-workers",
    type=int,
    help="Processes that map batches to rows (0: in the collector's own). Env OTEL_COSTS_MAP_WORKERS; default 2.",
)
@click.option(
    "--attribution-wait-s",
    type=int,
    help="Seconds a call with no user or tenant waits for an ancestor span that names them "
    "(0: never waits). Env OTEL_COSTS_ATTRIBUTION_WAIT_S; default 60.",
)
def collector(**flags) -> None:
    """Receive OTLP spans and store costed GenAI spans in ClickHouse."""
    from otel_costs_collector.preflight import StartupError
    from otel_costs_collector.server import run

    try:
        run(_config(**flags), wrap_write=_failpoint())
    except StartupError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(1)


@main.command("migrate")
@_storage
@_database
@_cluster
@_ttl
def migrate_cmd(**flags) -> None:
    """Apply the schema migrations without serving."""
    from otel_costs_collector.storage.client import open_client
    from otel_costs_collector.storage.schema import migrate

    cfg = _config(**flags)
    try:
        client = open_client(cfg.target)
        applied = migrate(client, db=cfg.db, cluster=cfg.cluster, raw_ttl_days=cfg.raw_ttl_days)
        client.close()
    except Exception as exc:  # a clear message, not a stack trace
        click.echo(f"error: migration failed on {cfg.target.describe()}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


_FILTER_FLAGS = ("tenant", "user", "feature", "model", "provider", "service")


@main.command()
@_url
@_ca_file
@_storage
@_database
@click.option(
    "--by",
    default="",
    help="Comma list of tenant, user, feature, model, provider, service, operation, day, hour, tag:<key>.",
)
@click.option("--since", help="Range up to now, like 24h, 7d, 4w (default 7d).")
@click.option("--from", "from_", metavar="ISO", help="Start date or date-time (in --tz).")
@click.option("--to", metavar="ISO", help="End date or date-time, exclusive (in --tz).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone for days, hours and dates.")
@_filters
@click.option("--top", type=int, help="Only the N most expensive rows.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def report(url, ca_file, storage, database, by, since, from_, to, tz, top, fmt, **filters) -> None:
    """Cost by any dimension, exact to the last digit; unpriced calls always shown.

    Reads --url, else --storage, else ./otel-costs-data or a collector on 127.0.0.1:4318;
    never creates anything."""
    from otel_costs_collector.cli.source import NoData, Unavailable
    from otel_costs_collector.reports.query import ReportError, ReportQuery
    from otel_costs_collector.reports.render import fetch_notices, fetch_rows, notice_lines, render

    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    params = {
        "by": by,
        "since": since,
        "from": from_,
        "to": to,
        "tz": tz,
        "top": top,
        **{k: v for k, v in filters.items() if v is not None},
    }
    params = {k: v for k, v in params.items() if v not in (None, "")}
    try:
        query = ReportQuery.parse({k: str(v) for k, v in params.items()})
    except ReportError as exc:
        raise click.UsageError(str(exc)) from None
    source = _source(cfg)
    try:
        rows = fetch_rows(source, {k: str(v) for k, v in params.items()}, query)
        notices = fetch_notices(source, {k: str(v) for k, v in params.items()}, query)
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    click.echo(render(rows, query.by, fmt), nl=fmt != "csv")  # CSV text ends with its newline
    for line in notice_lines(notices):
        click.echo(f"note: {line}", err=True)


@main.command()
@_storage
@click.option("--calls", type=int, default=2000, show_default=True, help="LLM calls to simulate.")
@click.option("--days", type=int, default=14, show_default=True, help="Spread them over this many past days.")
@click.option("--grpc-port", type=int, help="Port of the collector to start or use (default 4317).")
@click.option("--http-port", type=int, help="HTTP port of the collector to start (default 4318).")
@click.option("--serve", is_flag=True, help="Keep the collector running afterwards, with its dashboard, until Ctrl-C.")
def demo(storage, calls, days, grpc_port, http_port, serve) -> None:
    """Run a collector on embedded storage, send it realistic attributed LLM traffic
    through the real SDK over OTLP, and print reports."""
    import signal
    import subprocess
    import time
    from datetime import datetime, timezone

    from otel_costs_collector.cli.demo import earlier_demo, mark_demo, send_demo_traffic
    from otel_costs_collector.storage.client import running_owner

    cfg = _config(storage=storage, grpc_port=grpc_port, http_port=http_port)
    if cfg.target.kind != "chdb":
        raise click.UsageError("demo runs on embedded storage; give a directory to --storage")

    def stop(signum, frame) -> None:
        raise SystemExit(0)  # through the `finally` below, so the collector stops with us

    # A service manager stops the demo with SIGTERM; by default Python would exit at once
    # and leave the collector running, holding the data directory and the ports.
    signal.signal(signal.SIGTERM, stop)
    proc = None
    if running_owner(cfg.target.location) is None:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otel_costs_collector.cli",
                "collector",
                "--storage",
                cfg.target.location,
                "--grpc-port",
                str(cfg.grpc_port),
                "--http-port",
                str(cfg.http_port),
                "--log-format",
                "text",
            ]
        )
    try:
        deadline = time.monotonic() + 120
        while proc is not None and running_owner(cfg.target.location) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                _fail("the collector did not start (its error is above)")
            time.sleep(0.3)
        if proc is not None:
            click.echo(
                f"collector started on gRPC :{cfg.grpc_port}, HTTP :{cfg.http_port} (data in {cfg.target.location})"
            )
        earlier = earlier_demo(cfg.target.location)
        if earlier is not None:
            # Sending again would double every total the reports and the dashboard show.
            location = cfg.target.location
            click.echo(
                f"{location} already holds the demo's traffic ({earlier.calls} calls, sent "
                f"{earlier.sent_at:%Y-%m-%d %H:%M} UTC): not sending it again. To start over, stop "
                f"the collector and remove {location} and {location}-spool."
            )
            days = max(days, earlier.days + (datetime.now(timezone.utc) - earlier.sent_at).days)
        else:
            mark_demo(cfg.target.location, calls=calls, days=days)
            click.echo(f"sending {calls} attributed LLM calls over the past {days} days through CostSpanProcessor…")
            send_demo_traffic(f"127.0.0.1:{cfg.grpc_port}", calls=calls, days=days)
        for by in ("feature", "tenant,tag:plan", "model,provider"):
            click.echo(f"\n$ otel-costs report --by {by} --since {days + 1}d --top 10")
            ctx = click.get_current_context()
            ctx.invoke(
                report,
                url=None,
                ca_file=None,
                storage=cfg.target.location,
                database=None,
                by=by,
                since=f"{days + 1}d",
                from_=None,
                to=None,
                tz="UTC",
                top=10,
                fmt="table",
            )
        if serve:
            click.echo(f"\nDashboard: http://127.0.0.1:{cfg.http_port}/   (OTLP on :{cfg.grpc_port}; Ctrl-C stops)")
            try:
                if proc is not None:
                    proc.wait()
                else:
                    while True:
                        time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    if not serve:
        click.echo(
            "\nRun `otel-costs demo --serve` (or `otel-costs collector`) and open "
            f"http://127.0.0.1:{cfg.http_port}/ for the dashboard; `otel-costs report --help` slices the data."
        )


@main.group()
def budget() -> None:
    """Budgets per tenant, user, feature or a combination; alerts and SDK enforcement."""


@budget.command("set")
@_url
@_ca_file
@_storage
@_database
@click.argument("budget_id")
@click.option("--amount", "amount_usd", help="USD per period, exact (e.g. 40 or 12.50).")
@click.option(
    "--max-ratio",
    help="Instead of --amount: AI cost at most this share of the tenant's revenue in the period (0.3 is 30 %); "
    "alerts only, UTC periods.",
)
@click.option(
    "--period",
    type=click.Choice(["daily", "weekly", "monthly"]),
    required=True,
    help="Calendar period; weeks start on Monday.",
)
@click.option("--tenant")
@click.option("--user")
@click.option("--feature")
@click.option("--timezone", help="Calendar time zone (default OTEL_COSTS_BUDGET_TIMEZONE, else UTC).")
@click.option("--soft", is_flag=True, help="Alert only; never refuse calls.")
@click.option("--thresholds", help="Alert percents, comma-separated (default the collector's: 50,75,90,100).")
def budget_set(
    url,
    ca_file,
    storage,
    database,
    budget_id,
    amount_usd,
    max_ratio,
    period,
    tenant,
    user,
    feature,
    timezone,
    soft,
    thresholds,
) -> None:
    """Create or replace budget BUDGET_ID."""
    from otel_costs_collector.budgets.client import set_budget
    from otel_costs_collector.budgets.model import Budget, BudgetError
    from otel_costs_collector.cli.source import NoData, Unavailable

    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    doc = {
        "amount_usd": amount_usd,
        "period": period,
        "tenant": tenant,
        "user": user,
        "feature": feature,
        "timezone": timezone,
        "hard": None if max_ratio is not None else not soft,  # a ratio budget only alerts
        "thresholds": thresholds,
        "max_ratio": max_ratio,
    }
    try:
        parsed = Budget.parse(
            {k: v for k, v in doc.items() if v is not None},
            budget_id=budget_id,
            default_timezone=str(cfg.budget_timezone),
        )
    except BudgetError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        saved = set_budget(_source(cfg), parsed)
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    click.echo(json.dumps(saved))


@budget.command("list")
@_url
@_ca_file
@_storage
@_database
def budget_list(url, ca_file, storage, database) -> None:
    """Every budget with its spend this period (spend_usd, percent), one JSON object per line."""
    from otel_costs_collector.budgets.client import list_budgets
    from otel_costs_collector.cli.source import NoData, Unavailable

    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    try:
        items = list_budgets(_source(cfg))
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    for item in items:
        click.echo(json.dumps(item))


@budget.command("rm")
@_url
@_ca_file
@_storage
@_database
@click.argument("budget_id")
def budget_rm(url, ca_file, storage, database, budget_id) -> None:
    """Remove budget BUDGET_ID (alerts it fired stay recorded)."""
    from otel_costs_collector.budgets.client import remove_budget
    from otel_costs_collector.cli.source import NoData, Unavailable

    cfg = _config(url=url, ca_file=ca_file, storage=storage, database=database)
    try:
        removed = remove_budget(_source(cfg), budget_id)
    except (NoData, Unavailable) as exc:
        _fail(str(exc))
    if not removed:
        _fail(f"no budget {budget_id!r}")
    click.echo(f"removed {budget_id}")


if __name__ == "__main__":
    main()

main.add_command(reconcile)
main.add_command(calls)
main.add_command(anomalies)
main.add_command(forecast)
main.add_command(compare)
main.add_command(export)
main.add_command(margin)
main.add_command(revenue)
main.add_command(reprice)
