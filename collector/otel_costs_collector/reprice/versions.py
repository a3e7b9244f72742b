"""What re-pricing changed, read back: per run (by day, model and tenant; the calls with their
old and new versions) and per day (the runs that re-priced it). Storage I/O on the caller's
thread; raises what the client raises."""

from __future__ import annotations

from datetime import date
from typing import Any

from otel_costs_collector.reprice.journal import history, run_days
from otel_costs_collector.reprice.plan import EXACT, money
from otel_costs_collector.sql import load

__all__ = ["MAX_CALLS", "repriced_days", "run_calls", "run_changes", "run_doc"]

#: The most (day, model, tenant) groups a run's changes list.
MAX_CHANGES = 10_000
#: The most calls a run's document lists.
MAX_CALLS = 10_000


def run_doc(client: Any, db: str, run_id: str, calls: int = 0) -> dict[str, Any] | None:
    """One run as ``GET /v1/reprice/{run}`` shows it: the run, its days, its changes per day,
    model and tenant, and its first ``calls`` calls' old and new versions; None when unknown."""
    found = history(client, db, 1, run_id)
    if not found:
        return None
    doc = found[0].doc()
    doc["days"] = [{"day": d.day.isoformat(), "state": d.state, "rows": d.rows} for d in run_days(client, db, run_id)]
    doc["changes"] = run_changes(client, db, run_id)
    if calls:
        doc["calls"] = run_calls(client, db, run_id, min(calls, MAX_CALLS))
    return doc


def run_changes(client: Any, db: str, run_id: str) -> list[dict[str, Any]]:
    """Per day, model and tenant: calls, cost before and after (USD, as strings)."""
    result = client.query(load(__package__, "run_changes", db=db), parameters={"run": run_id, "limit": MAX_CHANGES})
    return [
        {
            "day": day.isoformat(),
            "model": model,
            "tenant": tenant,
            "rows": int(calls),
            "cost_before": money(before),
            "cost_after": money(after),
            "difference": money(EXACT.subtract(after, before)),
        }
        for day, model, tenant, calls, before, after in result.result_rows
    ]


def run_calls(client: Any, db: str, run_id: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` calls a run re-priced: identity, and both versions."""
    result = client.query(load(__package__, "run_calls", db=db), parameters={"run": run_id, "limit": limit})
    return [
        {
            "trace_id": r[0],
            "span_id": r[1],
            "timestamp": r[2].isoformat(),
            "model": r[3],
            "tenant": r[4],
            "copies": int(r[5]),
            "old": {"cost_total": money(r[6]), "pricing_status": r[7], "pricing_source": r[8]},
            "new": {"cost_total": money(r[9]), "pricing_status": r[10], "pricing_source": r[11]},
        }
        for r in result.result_rows
    ]


def repriced_days(client: Any, db: str, start: date, end: date) -> list[dict[str, Any]]:
    """The days in [start, end) a run re-priced, each with the run: who, when, with which
    prices, calls, cost before and after."""
    result = client.query(load(__package__, "repriced_days", db=db), parameters={"start": start, "end": end})
    return [
        {
            "day": day.isoformat(),
            "run": run_id,
            "by": actor,
            "at": started_at.isoformat(),
            "prices": prices,
            "rows": int(rows),
            "cost_before": money(before),
            "cost_after": money(after),
        }
        for day, run_id, actor, started_at, prices, rows, before, after in result.result_rows
    ]
