"""The cost dashboard at ``/`` on the collector's HTTP port: server-rendered HTML and SVG
over the same report queries as the CLI and ``GET /v1/costs``, so every number on the
page equals the API's. No script, no external asset: it works offline.

Filters (range, time zone, tenant, user, feature, model) are URL parameters, so a view can
be shared; every tenant, user, feature and model links to its own view, and a call to its
trace (``/trace/<id>``). Every panel has a table and a CSV download of exactly what it
shows (``/dashboard/<panel>.csv`` with the same parameters). With auth on, the page asks
for a token (kept in an HttpOnly cookie) and a tenant token sees only its tenant. The HTML
itself is otel_costs_collector/dashboard/page.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta, timezone
from decimal import Decimal
from html import escape
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from aiohttp import web

from otel_costs_collector.anomalies.detector import AnomalyDetector
from otel_costs_collector.auth import TokenAuth
from otel_costs_collector.budgets.alerts import BudgetEvaluator
from otel_costs_collector.dashboard.margin_panel import margin_page, tenant_margin
from otel_costs_collector.dashboard.page import (
    PANELS,
    SCOPES,
    View,
    day_columns,
    filters_form,
    layout,
    login_page,
    overview,
    trace_page,
)
from otel_costs_collector.dashboard.reconcile_panel import tracked_vs_billed
from otel_costs_collector.reconcile.puller import Reconciler
from otel_costs_collector.reconcile.report import DEFAULT_SETTLE, ReconcileQuery, run_reconciliation
from otel_costs_collector.reports.calls import CallsQuery, run_calls
from otel_costs_collector.reports.query import (
    ReportError,
    ReportQuery,
    run_notices,
    run_pricing_problems,
    run_report,
)
from otel_costs_collector.reports.render import notice_lines, render
from otel_costs_collector.reprice.versions import repriced_days
from otel_costs_collector.revenue.margin import MarginError, MarginQuery, run_margin, tenant_days

__all__ = ["add_dashboard_routes", "PANELS"]

_log = logging.getLogger("otel_costs.collector")
COOKIE = "otel_costs_token"
_FILTER_PARAMS = ("since", "from", "to", "tz", "tenant", "feature", "user", "model", "version", "environment")
_BY_ID = {p.id: p for p in PANELS}
_TRACE = re.compile(r"^[0-9a-f]{32}$")


def add_dashboard_routes(
    app: web.Application,
    client: Callable[[], Any],
    database: str,
    budgets: BudgetEvaluator | None,
    auth: TokenAuth | None = None,
    reconciler: Reconciler | None = None,
    settle: timedelta = DEFAULT_SETTLE,
    rates: Mapping[str, Decimal] | None = None,
    anomalies: AnomalyDetector | None = None,
) -> None:
    """``rates``: the exchange rates margins use (USD per unit; OTEL_COSTS_FX_RATES_FILE)."""

    def who(request: web.Request) -> tuple[bool, str | None]:
        """(allowed, tenant the viewer is limited to)."""
        if auth is None:
            return True, None
        header = request.headers.get("Authorization") or (
            f"Bearer {request.cookies[COOKIE]}" if COOKIE in request.cookies else None
        )
        principal = auth.check(header)
        if principal is None:
            return False, None
        return True, None if principal.admin else principal.tenant

    def params_of(request: web.Request, tenant: str | None) -> dict[str, str]:
        params = {k: v for k in _FILTER_PARAMS if (v := request.query.get(k, "").strip())}
        if "from" in params or "to" in params:
            params.pop("since", None)  # dates entered win over the preset the form carried
        elif "since" not in params:
            params["since"] = "7d"
        if tenant is not None:
            params["tenant"] = tenant
        return params

    def problem(params: dict[str, str], tenant: str | None, status: int, message: str) -> web.Response:
        body = f'<p class="error" role="alert">{escape(message)}</p>'
        return _html(layout(filters_form(params, tenant), body, auth is not None), status)

    async def page(request: web.Request) -> web.Response:
        allowed, tenant = who(request)
        if not allowed:
            return _html(login_page(request.query.get("error") == "1"), 401)
        params = params_of(request, tenant)
        try:
            queries = {p.id: _panel_query(p.by, p.top, params) for p in PANELS}
            plans_query = _panel_query("tenant,tag:plan", None, params)
            scoped = any(params.get(k) for k in SCOPES)  # a view of one tenant, user, feature or model
            recent = CallsQuery.parse({**params, "limit": "10"}) if scoped else None
            costly = CallsQuery.parse({**params, "limit": "10", "order": "cost"}) if scoped else None
        except ReportError as exc:
            return problem(params, tenant, 400, str(exc))
        trend = queries["trend"]

        def read() -> View:
            db = client()
            answered: dict[ReportQuery, list[dict[str, Any]]] = {}  # panels asking the same (trend, errors)
            for q in queries.values():
                if q not in answered:
                    answered[q] = run_report(db, database, q)
            results = {pid: answered[q] for pid, q in queries.items()}
            plans: dict[str, list[str]] = {}
            for row in run_report(db, database, plans_query):
                if row["tag:plan"]:
                    plans.setdefault(row["tenant"], []).append(row["tag:plan"])
            return View(
                params=params,
                start=trend.start,
                end=trend.end,
                tz=trend.tz,
                results=results,
                days=day_columns(trend.start, trend.end, trend.tz),
                plans={t: sorted(p) for t, p in plans.items()},
                statuses=_budget_statuses(budgets, params, tenant),
                problems=run_pricing_problems(db, database, trend),
                notices=notice_lines(run_notices(db, database, trend)),
                recent=run_calls(db, database, recent)["calls"] if recent else [],
                costly=run_calls(db, database, costly)["calls"] if costly else [],
                anomalies=_anomalies_for(anomalies, params, tenant),
                repriced=repriced_days(
                    db, database, trend.start.date(), (trend.end - timedelta(microseconds=1)).date() + timedelta(days=1)
                ),
                admin=tenant is None,
            )

        try:
            view = await asyncio.to_thread(read)
            reconciled = None
            if reconciler is not None and reconciler.providers and tenant is None:
                days = ReconcileQuery(
                    trend.start.date(), (trend.end - timedelta(microseconds=1)).date() + timedelta(days=1)
                )
                reconciled = await asyncio.to_thread(
                    lambda: run_reconciliation(client(), database, days, settle=settle)
                )
        except Exception as exc:
            _log.error("dashboard query failed: %s", exc)
            return problem(params, tenant, 503, "Storage is unavailable; try again.")
        body = overview(view)
        if reconciled is not None and reconciler is not None:
            body += tracked_vs_billed(reconciled, reconciler.band)
        if tenant is None and params.get("tenant"):  # an admin's view of one tenant: its revenue beside its cost
            span = _utc_days(trend.start, trend.end, rates)
            try:
                report, per_day = await asyncio.to_thread(
                    lambda: (
                        run_margin(client(), database, span),
                        tenant_days(client(), database, span, params["tenant"]),
                    )
                )
            except Exception as exc:
                _log.error("dashboard margin query failed: %s", exc)
                return problem(params, tenant, 503, "Storage is unavailable; try again.")
            body += tenant_margin(params["tenant"], per_day, report)
        return _html(layout(filters_form(params, tenant), body, auth is not None))

    async def margin(request: web.Request) -> web.Response:
        allowed, tenant = who(request)
        if not allowed:
            return _html(login_page(False), 401)
        params = params_of(request, tenant)
        if tenant is not None:
            return problem(params, tenant, 403, "Margins need an admin token: revenue is the operator's.")
        try:
            query = MarginQuery.parse({k: params[k] for k in ("since", "from", "to") if k in params}, rates)
        except MarginError as exc:
            return problem(params, tenant, 400, str(exc))
        try:
            report = await asyncio.to_thread(run_margin, client(), database, query)
        except Exception as exc:
            _log.error("dashboard margin query failed: %s", exc)
            return problem(params, tenant, 503, "Storage is unavailable; try again.")
        return _html(layout(filters_form(params, tenant), margin_page(report), auth is not None))

    async def trace(request: web.Request) -> web.Response:
        allowed, tenant = who(request)
        if not allowed:
            return _html(login_page(False), 401)
        trace_id = request.match_info["trace_id"].lower()
        params = params_of(request, tenant)
        if not _TRACE.match(trace_id):
            return problem(params, tenant, 404, "A trace id is 32 hexadecimal digits.")
        query = CallsQuery.parse({"trace_id": trace_id, "limit": "1000", **({"tenant": tenant} if tenant else {})})
        try:
            result = await asyncio.to_thread(run_calls, client(), database, query)
        except Exception as exc:
            _log.error("dashboard query failed: %s", exc)
            return problem(params, tenant, 503, "Storage is unavailable; try again.")
        return _html(layout(filters_form(params, tenant), trace_page(trace_id, result, params), auth is not None))

    async def panel_csv(request: web.Request) -> web.Response:
        allowed, tenant = who(request)
        if not allowed:
            return web.Response(status=401, text="missing or unknown token\n")
        panel = _BY_ID.get(request.match_info["panel"])
        if panel is None:
            raise web.HTTPNotFound(text="no such panel\n")
        try:
            query = _panel_query(panel.by, panel.top, params_of(request, tenant))
            rows = await asyncio.to_thread(run_report, client(), database, query)
        except ReportError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        except Exception as exc:
            _log.error("dashboard query failed: %s", exc)
            return web.Response(status=503, text="storage is unavailable; try again\n")
        return web.Response(
            text=render(rows, query.by, "csv"),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="otel-costs-{panel.id}.csv"'},
        )

    def cross_site(request: web.Request) -> bool:
        """A form posted from another site (login CSRF: the victim's browser would hold the
        attacker's token, and see the attacker's tenant). Browsers send Origin on POST."""
        origin = request.headers.get("Origin")
        # The host only: behind a TLS-terminating proxy the scheme differs, the host does not.
        return origin is not None and urlsplit(origin).netloc != request.host

    async def login(request: web.Request) -> web.Response:
        if cross_site(request):
            return web.Response(status=403, text="cross-site login refused\n")
        form = await request.post()
        token = str(form.get("token", ""))
        if auth is None or auth.check(f"Bearer {token}") is None:
            raise web.HTTPSeeOther("/?error=1")
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.secure, path="/")
        raise response

    async def logout(request: web.Request) -> web.Response:
        if cross_site(request):
            return web.Response(status=403, text="cross-site logout refused\n")
        response = web.HTTPSeeOther("/")
        response.del_cookie(COOKIE, path="/")
        raise response

    app.router.add_get("/", page)
    app.router.add_get("/margin", margin)
    app.router.add_get("/trace/{trace_id}", trace)
    app.router.add_get("/dashboard/{panel}.csv", panel_csv)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)


def _panel_query(by: str, top: int | None, params: dict[str, str]) -> ReportQuery:
    query = dict(params, by=by)
    if top:
        query["top"] = str(top)
    return ReportQuery.parse(query)


def _anomalies_for(
    detector: AnomalyDetector | None, params: dict[str, str], tenant: str | None
) -> list[dict[str, Any]]:
    """The last day's anomalies a view shows: all on the overview (an admin's), those of the
    view's feature, tenant or model when it is scoped; a tenant's token sees its tenant's only."""
    if detector is None:
        return []
    shown = []
    for a in detector.recent:
        if tenant is not None and not (a["kind"] == "tenant" and a["scope"] == tenant):
            continue
        scoped = [k for k in ("feature", "tenant", "model") if params.get(k)]
        if scoped and not (a["kind"] in scoped and params[a["kind"]] == a["scope"]):
            continue
        shown.append(a)
    return shown


def _utc_days(start: Any, end: Any, rates: Mapping[str, Decimal] | None) -> MarginQuery:
    """The UTC days a view's range covers, as a margin query."""
    last = (end - timedelta(microseconds=1)).astimezone(timezone.utc).date()
    return MarginQuery(start.astimezone(timezone.utc).date(), last + timedelta(days=1), rates=dict(rates or {}))


def _budget_statuses(budgets: BudgetEvaluator | None, params: dict[str, str], tenant: str | None) -> list[Any]:
    """The budgets a view shows: all on the overview (a tenant's own for a tenant's token),
    those that apply to the view's tenant, user and feature when it is filtered."""
    if budgets is None:
        return []
    if not any(params.get(k) for k in ("tenant", "user", "feature")):
        return [s for s in budgets.statuses if tenant is None or s.budget.tenant_id == tenant]
    return budgets.status_for(
        params.get("tenant", ""), params.get("user", ""), params.get("feature", ""), tenant_only=tenant is not None
    )


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )
