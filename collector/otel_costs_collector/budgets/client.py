"""``otel-costs budget set|list|rm``: through a collector's API or straight in storage, as
:func:`source.locate` decides. Raises source.Unavailable or source.NoData; never creates a
database or a table (storage without the schema is NoData)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from otel_costs_collector.budgets.alerts import BudgetEvaluator
from otel_costs_collector.budgets.model import Budget, BudgetStore
from otel_costs_collector.cli.source import Api, Direct, Unavailable

__all__ = ["set_budget", "list_budgets", "remove_budget"]


def set_budget(source: Api | Direct, budget: Budget) -> dict[str, Any]:
    if isinstance(source, Api):
        body = budget.to_json()
        body.pop("id")
        return source.call("PUT", f"/v1/budgets/{urllib.parse.quote(budget.id)}", body)
    source.run(lambda client: BudgetStore(client, source.database).put(budget))
    return budget.to_json()


def list_budgets(source: Api | Direct) -> list[dict[str, Any]]:
    """Every budget with its spend in the current period (spend_usd, percent, resets_at)."""
    if isinstance(source, Api):
        return source.call("GET", "/v1/budgets")

    def statuses(client: Any) -> list[dict[str, Any]]:
        return [s.to_json() for s in BudgetEvaluator(lambda: client, source.database).statuses_now()]

    return source.run(statuses)


def remove_budget(source: Api | Direct, budget_id: str) -> bool:
    """False when there is no such budget."""
    if isinstance(source, Api):
        try:
            source.call("DELETE", f"/v1/budgets/{urllib.parse.quote(budget_id)}")
        except Unavailable as exc:
            if exc.status == 404:
                return False
            raise
        return True
    return source.run(lambda client: BudgetStore(client, source.database).delete(budget_id))
