"""Budgets on the collector's HTTP port.

* ``GET /v1/budgets/status?tenant=&user=&feature=`` — every budget that applies to that
  attribution, with spend in the current period, percent, ``exceeded`` and ``resets_at``.
  Answered from the evaluator's last cycle (no storage read per request): what the SDK's
  budget check calls.
* ``GET /v1/budgets``, ``PUT /v1/budgets/{id}`` (JSON body), ``DELETE /v1/budgets/{id}``.

With auth on, managing budgets needs an admin token; a tenant token reads only its own
tenant's budgets and status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from otel_costs_collector.auth import TokenAuth
from otel_costs_collector.budgets.alerts import BudgetEvaluator
from otel_costs_collector.budgets.model import Budget, BudgetError

__all__ = ["add_budget_routes"]

_log = logging.getLogger("otel_costs.collector")
_MAX_BODY = 64 * 1024


def add_budget_routes(
    app: web.Application,
    evaluator: BudgetEvaluator,
    default_timezone: str,
    auth: TokenAuth | None = None,
    wake: Any = None,
) -> None:
    """``wake()`` asks the evaluation loop for a cycle now (after a change)."""

    def principal(request: web.Request) -> tuple[Any, web.Response | None]:
        if auth is None:
            return None, None
        found = auth.check(request.headers.get("Authorization"))
        if found is None:
            return None, _error(401, "missing or unknown bearer token")
        return found, None

    def admin_only(request: web.Request) -> web.Response | None:
        found, denied = principal(request)
        if denied is not None:
            return denied
        if found is not None and not found.admin:
            return _error(403, "managing budgets needs an admin token")
        return None

    async def status(request: web.Request) -> web.Response:
        found, denied = principal(request)
        if denied is not None:
            return denied
        tenant = request.query.get("tenant", "")
        tenant_only = found is not None and not found.admin
        if tenant_only:
            if tenant and tenant != found.tenant:
                return _error(403, "this token can only read its own tenant")
            tenant = found.tenant
        if evaluator.evaluated_at is None:
            try:
                await asyncio.to_thread(evaluator.evaluate)
            except Exception as exc:
                _log.error("budget evaluation failed: %s", exc)
                return _error(503, "budgets are not evaluated yet; try again")
        statuses = evaluator.status_for(
            tenant, request.query.get("user", ""), request.query.get("feature", ""), tenant_only=tenant_only
        )
        return web.json_response(
            {
                "evaluated_at": evaluator.evaluated_at.isoformat().replace("+00:00", "Z")
                if evaluator.evaluated_at
                else None,
                "budgets": [s.to_json() for s in statuses],
            }
        )

    async def list_budgets(request: web.Request) -> web.Response:
        found, denied = principal(request)
        if denied is not None:
            return denied
        try:
            statuses = await asyncio.to_thread(evaluator.statuses_now)
        except Exception as exc:
            _log.error("reading budgets failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        if found is not None and not found.admin:
            statuses = tuple(s for s in statuses if s.budget.tenant_id == found.tenant)
        return web.json_response([s.to_json() for s in statuses])

    async def put_budget(request: web.Request) -> web.Response:
        denied = admin_only(request)
        if denied is not None:
            return denied
        raw = await request.content.read(_MAX_BODY + 1)
        if len(raw) > _MAX_BODY:
            return _error(413, f"budget body over {_MAX_BODY} bytes")
        try:
            try:
                doc = json.loads(raw)
            except RecursionError:  # "[[[[…" nested past Python's limit
                raise BudgetError("the body is nested too deeply") from None
            if not isinstance(doc, dict):
                raise BudgetError("the body must be a JSON object")
            if doc.get("id", request.match_info["id"]) != request.match_info["id"]:
                raise BudgetError("id in the body differs from the URL")
            doc.pop("id", None)
            budget = Budget.parse(doc, budget_id=request.match_info["id"], default_timezone=default_timezone)
        except (ValueError, BudgetError) as exc:
            return _error(400, str(exc))
        try:
            await asyncio.to_thread(lambda: evaluator.store().put(budget))
        except Exception as exc:
            _log.error("storing a budget failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        if wake is not None:
            wake()
        return web.json_response(budget.to_json())

    async def delete_budget(request: web.Request) -> web.Response:
        denied = admin_only(request)
        if denied is not None:
            return denied
        try:
            removed = await asyncio.to_thread(lambda: evaluator.store().delete(request.match_info["id"]))
        except Exception as exc:
            _log.error("removing a budget failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        if not removed:
            return _error(404, f"no budget {request.match_info['id'][:128]!r}")
        if wake is not None:
            wake()
        return web.json_response({"deleted": request.match_info["id"]})

    app.router.add_get("/v1/budgets/status", status)
    app.router.add_get("/v1/budgets", list_budgets)
    app.router.add_put("/v1/budgets/{id}", put_budget)
    app.router.add_delete("/v1/budgets/{id}", delete_budget)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
