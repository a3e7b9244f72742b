"""``otel-costs budget set|list|rm``: through the API of the collector that holds embedded
storage (chDB allows one process), else straight in storage. Raises BudgetUnavailable."""

from __future__ import annotations

import urllib.parse
from typing import Any

from .budgets import Budget, BudgetStore
from .api_client import ApiError, call_api, running_api
from .storage import StorageTarget, open_client

__all__ = ["BudgetUnavailable", "set_budget", "list_budgets", "remove_budget"]


class BudgetUnavailable(Exception):
    """The collector or storage could not do it; the message says which and why.
    ``status``: the collector's HTTP status, when it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def set_budget(target: StorageTarget, database: str, budget: Budget) -> dict[str, Any]:
    api = running_api(target)
    if api is not None:
        body = budget.to_json()
        body.pop("id")
        return _call(api, "PUT", f"/v1/budgets/{urllib.parse.quote(budget.id)}", body)
    _direct(target, database, lambda store: store.put(budget))
    return budget.to_json()


def list_budgets(target: StorageTarget, database: str) -> list[dict[str, Any]]:
    api = running_api(target)
    if api is not None:
        return _call(api, "GET", "/v1/budgets")
    return [b.to_json() for b in _direct(target, database, lambda store: store.list())]


def remove_budget(target: StorageTarget, database: str, budget_id: str) -> bool:
    api = running_api(target)
    if api is not None:
        try:
            _call(api, "DELETE", f"/v1/budgets/{urllib.parse.quote(budget_id)}")
        except BudgetUnavailable as exc:
            if exc.status == 404:
                return False
            raise
        return True
    return _direct(target, database, lambda store: store.delete(budget_id))


def _direct(target: StorageTarget, database: str, action: Any) -> Any:
    from .schema import migrate

    try:
        client = open_client(target)
    except Exception as exc:
        raise BudgetUnavailable(f"cannot open storage {target.describe()}: {exc}") from None
    try:
        migrate(client, db=database)
        return action(BudgetStore(client, database))
    except Exception as exc:
        raise BudgetUnavailable(f"storage {target.describe()} failed: {exc}") from None
    finally:
        client.close()


def _call(api: tuple[str, str | None], method: str, path: str, body: Any = None) -> Any:
    try:
        return call_api(api[0], method, path, body, cafile=api[1])
    except ApiError as exc:
        raise BudgetUnavailable(str(exc), exc.status) from None
