"""``GET /v1/anomalies``: the cost anomalies found (otel_costs_collector/anomalies/detector.py),
newest first. ``since`` (``24h``, ``7d``; default 7d, at most 30d). An admin token sees all of
them; a tenant's token only its own tenant's. ``GET /v1/forecast``: this month's spend projected
to its end (otel_costs_collector/anomalies/outlook.py; admin). Storage reads run on worker threads."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from aiohttp import web

from otel_costs_collector.anomalies.detector import AnomalyDetector
from otel_costs_collector.anomalies.outlook import month_forecast
from otel_costs_collector.auth import TokenAuth, admin_refusal

__all__ = ["add_anomaly_routes", "parse_since"]

_log = logging.getLogger("otel_costs.collector")
_SINCE = re.compile(r"^(\d{1,4})([hd])$")
MAX_SINCE = timedelta(days=30)


def parse_since(text: str | None, now: datetime) -> datetime:
    """The start of ``since`` (``24h``, ``7d``) before ``now``. Raises ValueError."""
    m = _SINCE.match(text or "7d")
    if m is None:
        raise ValueError(f"since: {str(text)[:32]!r} is not like 24h or 7d")
    span = timedelta(hours=int(m.group(1))) if m.group(2) == "h" else timedelta(days=int(m.group(1)))
    if span > MAX_SINCE:
        raise ValueError("since: at most 30d (anomalies are kept that long)")
    return now - span


def add_anomaly_routes(
    app: web.Application,
    detector: AnomalyDetector,
    client: Callable[[], Any],
    database: str,
    auth: TokenAuth | None = None,
    clock: Callable[[], datetime] | None = None,
) -> None:
    now_of = clock or (lambda: datetime.now(timezone.utc))

    async def anomalies(request: web.Request) -> web.Response:
        tenant = None
        if auth is not None:
            principal = auth.check(request.headers.get("Authorization"))
            if principal is None:
                return _error(401, "missing or unknown bearer token")
            tenant = principal.tenant
        now = now_of()
        try:
            start = parse_since(request.query.get("since"), now)
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            found: list[dict[str, Any]] = await asyncio.to_thread(detector.since, start)
        except Exception as exc:
            _log.error("anomalies query failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        if tenant is not None:
            found = [a for a in found if a["kind"] == "tenant" and a["scope"] == tenant]
        return web.json_response(found)

    async def forecast(request: web.Request) -> web.Response:
        refusal = admin_refusal(auth, request.headers.get("Authorization"), "the forecast")
        if refusal is not None:
            return _error(*refusal)
        try:
            found = await asyncio.to_thread(lambda: month_forecast(client(), database, now_of()))
        except Exception as exc:
            _log.error("forecast query failed: %s", exc)
            return _error(503, "storage is unavailable; try again")
        return web.json_response(found)

    app.router.add_get("/v1/anomalies", anomalies)
    app.router.add_get("/v1/forecast", forecast)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
