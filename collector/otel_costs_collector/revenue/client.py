"""``otel-costs margin``, ``revenue import`` and ``revenue pull``: through a collector's API or
straight in storage, as :func:`otel_costs_collector.cli.source.locate` decides. Raises
source.Unavailable or source.NoData."""

from __future__ import annotations

import urllib.parse
from dataclasses import asdict
from typing import Any, Mapping

from otel_costs_collector.cli.source import Api, Direct
from otel_costs_collector.revenue.lines import RevenueLine
from otel_costs_collector.revenue.margin import MarginQuery, run_margin
from otel_costs_collector.revenue.puller import RevenuePuller
from otel_costs_collector.revenue.store import write_lines

__all__ = ["fetch_margin", "import_lines", "pull_revenue"]


def fetch_margin(source: Api | Direct, params: Mapping[str, str], query: MarginQuery) -> dict[str, Any]:
    """The margin report; through the API, ``params`` (with ``rates`` inline when given)."""
    if isinstance(source, Api):
        return source.call("GET", f"/v1/margin?{urllib.parse.urlencode({k: v for k, v in params.items() if v})}")
    return source.run(lambda client: run_margin(client, source.database, query))


def import_lines(source: Api | Direct, lines: list[RevenueLine]) -> int:
    """Store ``lines``. Returns the lines stored."""
    if isinstance(source, Api):
        records = [
            {
                "id": line.line_id,
                "tenant": line.tenant,
                "amount": format(line.amount, "f"),
                "currency": line.currency,
                "period_start": line.period_start.isoformat(),
                "period_end": line.period_end.isoformat(),
                "plan": line.plan,
                "customer": line.customer,
            }
            for line in lines
        ]
        return int(source.call("PUT", "/v1/revenue", {"lines": records})["imported"])
    source.run(lambda client: write_lines(client, source.database, lines))
    return len(lines)


def pull_revenue(source: Api | Direct, key: str | None, base: str, tenant_key: str) -> dict[str, Any]:
    """A Stripe pull now: the running collector's, with its key, or here with ``key``."""
    if isinstance(source, Api):
        return source.call("POST", "/v1/revenue/pull", {})
    if not key:
        return {"lines": 0, "days": 0, "problems": [], "error": "no Stripe key is set: OTEL_COSTS_STRIPE_KEY"}
    return source.run(
        lambda client: asdict(
            RevenuePuller(lambda: client, source.database, key, base=base, tenant_key=tenant_key).pull()
        )
    )
