"""``GET /v1/reconciliation`` (the rows of ``otel-costs reconcile``) and
``POST /v1/reconciliation/pull`` (``otel-costs reconcile pull`` against a running collector,
which holds embedded storage). Admin token when auth is on: the bill is the operator's.
Storage and provider I/O run on worker threads."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any, Callable

from aiohttp import web

from otel_costs_collector.auth import TokenAuth, admin_refusal
from otel_costs_collector.reconcile.puller import Reconciler
from otel_costs_collector.reconcile.report import ReconcileError, ReconcileQuery, run_reconciliation

__all__ = ["add_reconcile_routes"]

_log = logging.getLogger("otel_costs.collector")


def add_reconcile_routes(
    app: web.Application,
    client: Callable[[], Any],
    database: str,
    reconciler: Reconciler | None,
    auth: TokenAuth | None = None,
    settle: Any = None,
    projects: Any = None,
) -> None:
    """``projects``: OpenAI project id → ("service" or "tenant", name) (reconcile/report.py)."""

    def refused(request: web.Request) -> web.Response | None:
        refusal = admin_refusal(auth, request.headers.get("Authorization"), "reconciliation")
        return None if refusal is None else _error(*refusal)

    async def report(request: web.Request) -> web.Response:
        if (answer := refused(request)) is not None:
            return answer
        try:
            query = ReconcileQuery.parse(dict(request.query))
        except ReconcileError as exc:
            return _error(400, str(exc))
        kwargs: dict[str, Any] = {"projects": projects} if settle is None else {"settle": settle, "projects": projects}
        try:
            rows = await asyncio.to_thread(lambda: run_reconciliation(client(), database, query, **kwargs))
        except Exception as exc:
            _log.error("reconciliation query failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response(rows)

    async def pull(request: web.Request) -> web.Response:
        if (answer := refused(request)) is not None:
            return answer
        if reconciler is None or not reconciler.providers:
            return _error(
                409, "no provider admin key is set: OTEL_COSTS_OPENAI_ADMIN_KEY or OTEL_COSTS_ANTHROPIC_ADMIN_KEY"
            )
        try:
            body = await request.json() if request.can_read_body else {}
            query = ReconcileQuery.parse({k: v for k, v in dict(body).items() if k in ("since", "from", "to")})
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc) if isinstance(exc, ReconcileError) else "the body must be a JSON object")
        try:
            results = await asyncio.to_thread(reconciler.pull, query.start, query.end)
        except Exception as exc:
            _log.error("reconciliation pull failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response([asdict(r) for r in results])

    app.router.add_get("/v1/reconciliation", report)
    app.router.add_post("/v1/reconciliation/pull", pull)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
