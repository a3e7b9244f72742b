"""The options and helpers every ``otel-costs`` command shares: where the data is, the
config they resolve, and how a command fails (one line, exit code 1)."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from otel_costs_collector.config import DEFAULT_DATABASE, CollectorConfig, ConfigError

__all__ = ["_filters", "_storage", "_database", "_cluster", "_url", "_ca_file", "_ttl", "_config", "_fail", "_source"]

_storage = click.option(
    "--storage",
    help="Data path, chdb:///path, or http(s)://user:pw@host:8123/db. "
    "Env OTEL_COSTS_STORAGE; default ./otel-costs-data.",
)
_database = click.option("--database", help=f"Database name. Env OTEL_COSTS_DATABASE; default {DEFAULT_DATABASE}.")
_cluster = click.option(
    "--cluster",
    help="ClickHouse cluster name for ON CLUSTER / Replicated / Distributed tables. Env OTEL_COSTS_CLUSTER.",
)
_url = click.option(
    "--url",
    help="A running collector's HTTP API, e.g. http://host:4318 (OTEL_COSTS_TOKEN is "
    "sent). Env OTEL_COSTS_URL; default: the collector holding --storage, else one on "
    "127.0.0.1:4318.",
)
_ca_file = click.option(
    "--ca-file", help="CA bundle (PEM) that verifies the collector's TLS certificate. Env OTEL_COSTS_CA_FILE."
)
_ttl = click.option(
    "--raw-ttl-days", type=int, help="Days raw spans are kept (rollups stay). Env OTEL_COSTS_RAW_TTL_DAYS; default 90."
)


def _config(**flags) -> CollectorConfig:
    try:
        return CollectorConfig.load(flags).validate()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit code 1: what went wrong, never a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _source(cfg: CollectorConfig) -> Any:
    """Where a reading command reads (otel_costs_collector.cli.source.locate); exits 1 with one line when
    nothing there holds otel-costs data."""
    from otel_costs_collector.cli.source import NoData, locate

    try:
        return locate(
            url=cfg.url,
            ca_file=cfg.ca_file,
            target=cfg.target,
            database=str(cfg.database),
            storage_given="storage" in cfg.explicit,
            http_port=int(cfg.http_port),
        )
    except NoData as exc:
        _fail(str(exc))


def _filters(command: Any) -> Any:
    """The filters a reading command takes, as reports and ``/v1/costs`` name them; they
    reach the command as keyword arguments of the same names."""
    for name in reversed(("tenant", "user", "feature", "model", "provider", "service", "version", "environment")):
        what = {"version": "release (service.version)", "environment": "deployment environment"}.get(name, name)
        command = click.option(f"--{name}", help=f"Only calls of this {what}.")(command)
    return command
