"""``otel-costs reconcile`` and ``reconcile pull``: through a collector's API or straight in
storage, as :func:`otel_costs_collector.cli.source.locate` decides. Raises source.Unavailable
or source.NoData."""

from __future__ import annotations

import urllib.parse
from dataclasses import asdict
from typing import Any, Mapping

from otel_costs_collector.cli.source import Api, Direct
from otel_costs_collector.reconcile.puller import Reconciler
from otel_costs_collector.reconcile.report import ReconcileQuery, run_reconciliation

__all__ = ["fetch_reconciliation", "pull_reports"]


def fetch_reconciliation(
    source: Api | Direct, params: Mapping[str, str], query: ReconcileQuery, projects: Any = None
) -> list[dict[str, Any]]:
    if isinstance(source, Api):
        encoded = urllib.parse.urlencode({k: v for k, v in params.items() if v})
        return source.call("GET", f"/v1/reconciliation?{encoded}")
    return source.run(lambda client: run_reconciliation(client, source.database, query, projects=projects))


def pull_reports(
    source: Api | Direct,
    params: Mapping[str, str],
    query: ReconcileQuery,
    keys: Mapping[str, str],
    bases: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Pull the range now: the running collector pulls with its keys; opened storage is
    pulled here with ``keys``. One result per provider (days, lines, error)."""
    if isinstance(source, Api):
        return source.call("POST", "/v1/reconciliation/pull", {k: v for k, v in params.items() if v})

    def pull(client: Any) -> list[dict[str, Any]]:
        reconciler = Reconciler(lambda: client, source.database, keys, bases=bases)
        return [asdict(r) for r in reconciler.pull(query.start, query.end, alert=False)]

    return source.run(pull)
