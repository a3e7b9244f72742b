"""``otel-costs`` command line (click)."""

from __future__ import annotations

import sys

import click

from .config import DEFAULT_DATABASE, CollectorConfig, ConfigError

_storage = click.option("--storage", help="Data path, chdb:///path, or http(s)://user:pw@host:8123/db. "
                        "Env OTEL_COSTS_STORAGE; default ./otel-costs-data.")
_database = click.option("--database", help=f"Database name. Env OTEL_COSTS_DATABASE; default {DEFAULT_DATABASE}.")
_cluster = click.option("--cluster", help="ClickHouse cluster name for ON CLUSTER / Replicated / Distributed "
                        "tables. Env OTEL_COSTS_CLUSTER.")
_ttl = click.option("--raw-ttl-days", type=int, help="Days raw spans are kept (rollups stay). Env "
                    "OTEL_COSTS_RAW_TTL_DAYS; default 90.")


def _config(**flags) -> CollectorConfig:
    try:
        return CollectorConfig.load(flags).validate()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


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
@click.option("--http-port", type=int, help="OTLP/HTTP, health and metrics port. Env OTEL_COSTS_HTTP_PORT; default 4318.")
@click.option("--prices-file", help="Price overrides (TOML). Env OTEL_COSTS_PRICES_FILE.")
@click.option("--log-format", type=click.Choice(["json", "text"]), help="Env OTEL_COSTS_LOG_FORMAT; default json.")
def collector(**flags) -> None:
    """Receive OTLP spans and store costed GenAI spans in ClickHouse."""
    from .server import run

    run(_config(**flags))


@main.command("migrate")
@_storage
@_database
@_cluster
@_ttl
def migrate_cmd(**flags) -> None:
    """Apply the schema migrations without serving."""
    from .schema import migrate
    from .storage import open_client

    cfg = _config(**flags)
    try:
        client = open_client(cfg.target)
        applied = migrate(client, db=cfg.database, cluster=cfg.cluster, raw_ttl_days=cfg.raw_ttl_days)
        client.close()
    except Exception as exc:  # a clear message, not a stack trace
        click.echo(f"error: migration failed on {cfg.target.describe()}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


if __name__ == "__main__":
    main()
