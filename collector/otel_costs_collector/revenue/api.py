"""``GET /v1/margin`` (the report of ``otel-costs margin``), ``PUT /v1/revenue`` (lines from any
billing system, idempotent by their ids) and ``POST /v1/revenue/pull`` (a Stripe pull now).
Admin token when auth is on: revenue is the operator's. Storage and Stripe I/O run on worker
threads."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from decimal import Decimal
from typing import Any, Callable, Mapping

from aiohttp import web

from otel_costs_collector.auth import TokenAuth, admin_refusal
from otel_costs_collector.revenue.lines import lines_of_records
from otel_costs_collector.revenue.margin import MarginError, MarginQuery, inline_rates, run_margin
from otel_costs_collector.revenue.puller import RevenuePuller
from otel_costs_collector.revenue.store import write_lines

__all__ = ["add_revenue_routes", "MAX_LINES", "MAX_LINE_DAYS"]

_log = logging.getLogger("otel_costs.collector")
#: Lines one PUT may hold, and the days they may cover together.
MAX_LINES = 100_000
MAX_LINE_DAYS = 1_000_000


def add_revenue_routes(
    app: web.Application,
    client: Callable[[], Any],
    database: str,
    puller: RevenuePuller | None,
    auth: TokenAuth | None = None,
    rates: Mapping[str, Decimal] | None = None,
) -> None:
    """``rates``: the collector's exchange rates (OTEL_COSTS_FX_RATES_FILE); a request's
    ``rates`` parameter (``EUR=1.08,JPY=0.0067``) replaces them."""

    def refused(request: web.Request) -> web.Response | None:
        refusal = admin_refusal(auth, request.headers.get("Authorization"), "revenue")
        return None if refusal is None else _error(*refusal)

    async def margin(request: web.Request) -> web.Response:
        if (answer := refused(request)) is not None:
            return answer
        params = dict(request.query)
        try:
            given = inline_rates(params.pop("rates")) if params.get("rates") else rates
            query = MarginQuery.parse(params, given)
        except MarginError as exc:
            return _error(400, str(exc))
        try:
            report = await asyncio.to_thread(lambda: run_margin(client(), database, query))
        except Exception as exc:
            _log.error("margin query failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response(report)

    async def put_lines(request: web.Request) -> web.Response:
        if (answer := refused(request)) is not None:
            return answer
        try:
            body = await request.json(loads=_loads)
        except ValueError:
            return _error(400, 'the body must be JSON: a list of lines, or {"lines": [...]}')
        records = body.get("lines") if isinstance(body, dict) else body
        if not isinstance(records, list):
            return _error(400, 'the body must be a list of lines, or {"lines": [...]}')
        if len(records) > MAX_LINES:
            return _error(413, f"at most {MAX_LINES} lines a request")
        lines, problems = lines_of_records(enumerate(records, 1))
        if sum(line.day_count() for line in lines) > MAX_LINE_DAYS:  # memory: each day is a row
            return _error(413, f"at most {MAX_LINE_DAYS} line-days a request (a line is a row per day it covers)")
        try:
            await asyncio.to_thread(lambda: write_lines(client(), database, lines))
        except Exception as exc:
            _log.error("revenue import failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response(
            {"imported": len(lines), "problems": problems}, status=200 if lines or not problems else 400
        )

    async def pull(request: web.Request) -> web.Response:
        if (answer := refused(request)) is not None:
            return answer
        if puller is None:
            return _error(409, "no Stripe key is set: OTEL_COSTS_STRIPE_KEY")
        try:
            result = await asyncio.to_thread(puller.pull)
        except Exception as exc:
            _log.error("revenue pull failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response(asdict(result))

    app.router.add_get("/v1/margin", margin)
    app.router.add_put("/v1/revenue", put_lines)
    app.router.add_post("/v1/revenue/pull", pull)


def _loads(text: str) -> Any:
    import json

    return json.loads(text, parse_float=Decimal)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
