"""The query API on the collector's HTTP port: ``GET /v1/costs``, ``GET /v1/notices`` and
``GET /v1/calls`` (individual calls: otel_costs_collector/reports/calls.py) and ``GET /v1/compare``
(a feature's cost per release or range, and what changed it: reports/compare.py).

Same parameters as ``otel-costs report`` (by, since or from/to, tz, filters, top) and the
same JSON: an array of row objects. The storage read runs on a worker thread so the
event loop keeps receiving spans; ``X-Otel-Costs-Source`` says whether rollups or raw rows
answered. ``/v1/notices`` takes the same parameters and answers what a reader of that report
should know (:func:`otel_costs_collector.reports.query.run_notices`: suspected double counts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from typing import Any, Callable

from aiohttp import web

from otel_costs_collector.auth import TokenAuth, admin_refusal
from otel_costs_collector.reports.calls import CallsQuery, run_calls
from otel_costs_collector.reports.compare import CompareQuery, run_compare
from otel_costs_collector.reports.focus import focus_rows
from otel_costs_collector.reports.focus_files import write_csv, write_parquet
from otel_costs_collector.reports.query import ReportError, ReportQuery, run_notices, run_report

__all__ = ["add_query_routes"]

_log = logging.getLogger("otel_costs.collector")


def add_query_routes(
    app: web.Application, client: Callable[[], Any], database: str, auth: TokenAuth | None = None
) -> None:
    def scoped(request: web.Request) -> dict[str, str | None] | web.Response:
        """The request's parameters, a tenant token's own tenant forced in, or the error."""
        params: dict[str, str | None] = {k: v for k, v in request.query.items() if k != "format"}
        if auth is not None:
            principal = auth.check(request.headers.get("Authorization"))
            if principal is None:
                return _error(401, "missing or unknown bearer token")
            if not principal.admin:
                if params.get("tenant", principal.tenant) != principal.tenant:
                    return _error(403, "this token can only read its own tenant")
                params["tenant"] = principal.tenant  # a tenant sees only its own rows
        if any(len(request.query.getall(k)) > 1 for k in request.query):
            return _error(400, "give each parameter once (by: one comma-separated list)")
        return params

    def parse(request: web.Request) -> ReportQuery | web.Response:
        """The request's report query, or the error."""
        params = scoped(request)
        if isinstance(params, web.Response):
            return params
        try:
            return ReportQuery.parse(params)
        except ReportError as exc:
            return _error(400, str(exc))

    async def answer(request: web.Request, run: Callable[[Any, str, ReportQuery], Any]) -> web.Response:
        query = parse(request)
        if isinstance(query, web.Response):
            return query
        try:
            result = await asyncio.to_thread(run, client(), database, query)
        except Exception as exc:
            _log.error("report query failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response(result, headers={"X-Otel-Costs-Source": query.source})

    async def costs(request: web.Request) -> web.Response:
        return await answer(request, run_report)

    async def notices(request: web.Request) -> web.Response:
        return await answer(request, run_notices)

    async def other(
        request: web.Request, parse: Callable[[Any], Any], run: Callable[[Any, str, Any], Any]
    ) -> web.Response:
        """A reading with its own parameters (calls, compare), scoped as reports are."""
        params = scoped(request)
        if isinstance(params, web.Response):
            return params
        try:
            query = parse(params)
        except ReportError as exc:
            return _error(400, str(exc))
        try:
            result = await asyncio.to_thread(run, client(), database, query)
        except Exception as exc:
            _log.error("%s query failed: %s", request.path, exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response(result)

    async def calls(request: web.Request) -> web.Response:
        return await other(request, CallsQuery.parse, run_calls)

    async def compare(request: web.Request) -> web.Response:
        return await other(request, CompareQuery.parse, run_compare)

    app.router.add_get("/v1/costs", costs)
    app.router.add_get("/v1/notices", notices)
    app.router.add_get("/v1/calls", calls)
    app.router.add_get("/v1/compare", compare)

    async def export_focus(request: web.Request) -> web.Response | web.StreamResponse:
        """The FOCUS file of a range (admin: it holds every tenant), written to a temporary file
        on a worker thread and streamed from it (bounded memory)."""
        refusal = admin_refusal(auth, request.headers.get("Authorization"), "the FOCUS export")
        if refusal is not None:
            return _error(*refusal)
        fmt = request.query.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            return _error(400, f"format: {fmt[:16]!r} is not csv or parquet")
        try:
            query = ReportQuery.parse({k: v for k, v in request.query.items() if k in ("since", "from", "to")})
        except ReportError as exc:
            return _error(400, str(exc))
        handle, path = tempfile.mkstemp(suffix="." + fmt)
        os.close(handle)
        try:
            try:
                await asyncio.to_thread(_write_focus, client(), database, query, fmt, path)
            except Exception as exc:
                _log.error("FOCUS export failed: %s", exc)
                return _error(503, "storage is unavailable; try again")
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
                    "Content-Disposition": f'attachment; filename="otel-costs-focus.{fmt}"',
                }
            )
            await response.prepare(request)
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            os.remove(path)

    app.router.add_get("/v1/export/focus", export_focus)


def _write_focus(client: Any, db: str, query: ReportQuery, fmt: str, path: str) -> None:
    rows = focus_rows(client, db, query.start, query.end)
    if fmt == "parquet":
        write_parquet(rows, path)
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            write_csv(rows, f)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
