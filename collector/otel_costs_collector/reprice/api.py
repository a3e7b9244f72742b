"""``POST /v1/reprice`` (a dry run, or a run applied), ``GET /v1/reprice`` (the runs, newest
first) and ``GET /v1/reprice/{run}`` (one run: its days, and what it changed per day, model
and tenant; ``?calls=N``: N calls' old and new versions). Admin token when auth is on: a
re-price changes every tenant's history. The run itself is on a worker thread."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from aiohttp import web

from otel_costs.overrides import PriceOverridesError
from otel_costs_collector.auth import TokenAuth, admin_refusal
from otel_costs_collector.reprice.journal import history
from otel_costs_collector.reprice.plan import RepriceError, RepriceRequest
from otel_costs_collector.reprice.run import Busy, Repricer
from otel_costs_collector.reprice.versions import MAX_CALLS, run_doc

__all__ = ["add_reprice_routes"]

_log = logging.getLogger("otel_costs.collector")


def add_reprice_routes(
    app: web.Application,
    repricer: Repricer | None,
    client: Callable[[], Any],
    database: str,
    auth: TokenAuth | None = None,
) -> None:
    """``repricer`` None: re-pricing is not available here (a cluster); the routes say so."""

    def refused(request: web.Request) -> web.Response | None:
        refusal = admin_refusal(auth, request.headers.get("Authorization"), "re-pricing")
        if refusal is not None:
            return _error(*refusal)
        if repricer is None:
            return _error(501, "re-pricing a ClickHouse cluster is not supported yet: run it on a single server")
        return None

    async def start(request: web.Request) -> web.Response:
        if (answer := refused(request)) is not None:
            return answer
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 'the body must be JSON, like {"since": "30d", "dry_run": true}')
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        try:
            asked = RepriceRequest.parse(body)
        except RepriceError as exc:
            return _error(400, str(exc))
        assert repricer is not None
        try:
            result = await asyncio.to_thread(repricer.run, asked, lambda line: _log.info("re-price: %s", line))
        except Busy as exc:
            return _error(409, str(exc))
        except PriceOverridesError as exc:
            return _error(400, f"the price overrides file does not load, nothing was re-priced: {exc}")
        except Exception as exc:
            _log.error("re-price failed: %s", exc)
            return _error(503, f"storage failed during the re-price ({type(exc).__name__}); see the collector's log")
        return web.json_response(result)

    async def runs(request: web.Request) -> web.Response:
        if (answer := refused(request)) is not None:
            return answer
        try:
            limit = min(max(int(request.query.get("limit", "50")), 1), 1000)
        except ValueError:
            return _error(400, "limit must be a number")
        try:
            found = await asyncio.to_thread(lambda: history(client(), database, limit))
        except Exception as exc:
            _log.error("re-price history failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response({"runs": [r.doc() for r in found]})

    async def one(request: web.Request) -> web.Response:
        if (answer := refused(request)) is not None:
            return answer
        run_id = request.match_info["run"]
        try:
            calls = min(max(int(request.query.get("calls", "0")), 0), MAX_CALLS)
        except ValueError:
            return _error(400, "calls must be a number")

        try:
            doc = await asyncio.to_thread(lambda: run_doc(client(), database, run_id, calls))
        except Exception as exc:
            _log.error("re-price run query failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        if doc is None:
            return _error(404, f"no re-price run {run_id!r}")
        return web.json_response(doc)

    app.router.add_post("/v1/reprice", start)
    app.router.add_get("/v1/reprice", runs)
    app.router.add_get("/v1/reprice/{run}", one)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
