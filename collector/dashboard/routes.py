"""The cost dashboard at ``/`` on the collector's HTTP port: server-rendered HTML and SVG
over the same report queries as the CLI and ``GET /v1/costs``, so every number on the
page equals the API's. No script, no external asset: it works offline.

Filters (range, time zone, tenant, feature, user, model) are URL parameters, so a view
can be shared. Every panel has a table and a CSV download of exactly what it shows
(``/dashboard/<panel>.csv`` with the same parameters). With auth on, the page asks for a
token (kept in an HttpOnly cookie) and a tenant token sees only its tenant.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from html import escape
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web

from otel_costs_collector.auth import TokenAuth
from otel_costs_collector.budgets.alerts import BudgetEvaluator
from otel_costs_collector.dashboard.reconcile_panel import tracked_vs_billed
from otel_costs_collector.dashboard.svg import hbars, stacked_bars
from otel_costs_collector.reconcile.puller import Reconciler
from otel_costs_collector.reconcile.report import DEFAULT_SETTLE, ReconcileQuery, run_reconciliation
from otel_costs_collector.reports.query import ReportError, ReportQuery, run_notices, run_report
from otel_costs_collector.reports.render import notice_lines, render

__all__ = ["add_dashboard_routes", "PANELS"]

_log = logging.getLogger("otel_costs.collector")
COOKIE = "otel_costs_token"
_FILTER_PARAMS = ("since", "from", "to", "tz", "tenant", "feature", "user", "model")
_RANGES = (("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days"))


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    by: str
    top: int | None = None


PANELS = (
    Panel("trend", "Spend per day", "day"),
    Panel("features", "Cost over time by feature", "day,feature"),
    Panel("tenants", "Top tenants", "tenant,tag:plan", 10),
    Panel("users", "Top users", "user", 10),
    Panel("models", "Cost by model and provider", "model,provider", 15),
    Panel("per_call", "Cost per call by feature", "feature"),
)
_BY_ID = {p.id: p for p in PANELS}


def add_dashboard_routes(
    app: web.Application,
    client: Callable[[], Any],
    database: str,
    budgets: BudgetEvaluator | None,
    auth: TokenAuth | None = None,
    reconciler: Reconciler | None = None,
    settle: timedelta = DEFAULT_SETTLE,
) -> None:

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
        if "since" not in params and "from" not in params:
            params["since"] = "7d"
        if tenant is not None:
            params["tenant"] = tenant
        return params

    async def page(request: web.Request) -> web.Response:
        allowed, tenant = who(request)
        if not allowed:
            return _html(_login_page(request.query.get("error") == "1"), 401)
        params = params_of(request, tenant)
        try:
            queries = {p.id: _panel_query(p, params) for p in PANELS}
        except ReportError as exc:
            return _html(
                _layout(
                    _filters(params, tenant), f'<p class="error" role="alert">{escape(str(exc))}</p>', auth is not None
                ),
                400,
            )
        try:
            results = await asyncio.to_thread(
                lambda: {pid: run_report(client(), database, q) for pid, q in queries.items()}
            )
            notices = await asyncio.to_thread(run_notices, client(), database, queries["trend"])
            reconciled = None
            if reconciler is not None and reconciler.providers and tenant is None:
                trend = queries["trend"]
                days = ReconcileQuery(
                    trend.start.date(), (trend.end - timedelta(microseconds=1)).date() + timedelta(days=1)
                )
                reconciled = await asyncio.to_thread(
                    lambda: run_reconciliation(client(), database, days, settle=settle)
                )
        except Exception as exc:
            _log.error("dashboard query failed: %s", exc)
            return _html(
                _layout(
                    _filters(params, tenant),
                    '<p class="error" role="alert">Storage is unavailable; try again.</p>',
                    auth is not None,
                ),
                503,
            )
        statuses = []
        if budgets is not None:
            statuses = budgets.status_for(
                params.get("tenant", ""),
                params.get("user", ""),
                params.get("feature", ""),
                tenant_only=tenant is not None,
            )
        body = _body(results, params, statuses, _days(queries["trend"]), notice_lines(notices))
        if reconciled is not None and reconciler is not None:
            body += tracked_vs_billed(reconciled, reconciler.band)
        return _html(_layout(_filters(params, tenant), body, auth is not None))

    async def panel_csv(request: web.Request) -> web.Response:
        allowed, tenant = who(request)
        if not allowed:
            return web.Response(status=401, text="missing or unknown token\n")
        panel = _BY_ID.get(request.match_info["panel"])
        if panel is None:
            raise web.HTTPNotFound(text="no such panel\n")
        try:
            query = _panel_query(panel, params_of(request, tenant))
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
    app.router.add_get("/dashboard/{panel}.csv", panel_csv)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)


def _panel_query(panel: Panel, params: dict[str, str]) -> ReportQuery:
    query = dict(params, by=panel.by)
    if panel.top:
        query["top"] = str(panel.top)
    return ReportQuery.parse(query)


def _money(value: Any) -> str:
    amount = Decimal(value)
    return f"${amount.normalize():f}" if amount else "$0"


def _per_call(total: Decimal, calls: int) -> str:
    """A derived average, so rounded (to 6 significant digits); totals never are."""
    if not calls:
        return "–"
    average = total / calls
    return f"≈ ${average:.6g}" if average < 1 else f"≈ ${average:,.4f}"


def _days(query: ReportQuery) -> list[str]:
    """Every calendar day of the range in its time zone (so days without spend show)."""
    tz = ZoneInfo(query.tz)
    day, last = query.start.astimezone(tz).date(), (query.end - timedelta(microseconds=1)).astimezone(tz).date()
    days: list[str] = []
    while day <= last and len(days) < 400:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days


def _body(
    results: dict[str, list[dict[str, Any]]],
    params: dict[str, str],
    statuses: list[Any],
    days: list[str],
    notices: list[str],
) -> str:
    qs = urlencode(params)
    trend = results["trend"]
    total = sum((Decimal(r["cost_usd"]) for r in trend), Decimal(0))
    calls = sum(r["calls"] for r in trend)
    unpriced = sum(r["unpriced_calls"] for r in trend)
    out = [
        '<section class="kpis">',
        f'<div class="kpi"><span>Total spend</span><strong data-testid="total">{_money(total)}</strong></div>',
        f'<div class="kpi"><span>Calls</span><strong data-testid="calls">{calls:,}</strong></div>',
        f'<div class="kpi"><span>Cost per call</span><strong>{_per_call(total, calls)}</strong></div>',
        f'<div class="kpi{" warn" if unpriced else ""}"><span>Unpriced calls</span>'
        f'<strong data-testid="unpriced">{unpriced:,}</strong></div></section>',
    ]
    if unpriced:
        models = [r for r in results["models"] if r["unpriced_calls"]]
        names = ", ".join(escape(f"{r['model']} ({r['provider']})") for r in models) or "see the models table"
        out.append(
            f'<p class="warn" role="alert"><strong>{unpriced:,} call{"s" if unpriced > 1 else ""} with no '
            f"known price</strong>, not in the totals: {names}. Add the model to a price overrides file.</p>"
        )
    out.extend(f'<p class="warn" role="alert" data-testid="notice">{escape(line)}</p>' for line in notices)
    if statuses:
        out.append('<section class="panel" id="budgets"><h2>Budgets</h2>')
        for s in statuses:
            pct = min(float(s.percent), 100.0)
            scope = ", ".join(f"{k}={v}" for k, v in s.budget.scope().items())
            out.append(
                f'<div class="budget"><div>{escape(s.budget.id)} <small>({escape(scope)}; '
                f"{'hard' if s.budget.hard else 'soft'}, {s.budget.period})</small></div>"
                f'<div class="bar"><div class="{"over" if s.exceeded else "fill"}" style="width:{pct:.1f}%">'
                f"</div></div><div>{_money(s.spend_usd)} of {_money(s.budget.amount_usd)} · {s.percent}%</div>"
                f"</div>"
            )
        out.append("</section>")
    for panel in PANELS:
        rows = results[panel.id]
        out.append(f'<section class="panel" id="{panel.id}"><h2>{escape(panel.title)}</h2>')
        out.append(_chart(panel, rows, days) if rows else '<p class="empty">No calls in this range.</p>')
        out.append(
            f"<details><summary>Table</summary>{_table(panel, rows)}</details>"
            f'<a class="csv" href="/dashboard/{panel.id}.csv?{escape(qs)}" download>Download CSV</a></section>'
        )
    return "".join(out)


def _chart(panel: Panel, rows: list[dict[str, Any]], days: list[str]) -> str:
    days = sorted(set(days) | {r["day"] for r in rows if "day" in r})
    if panel.id == "trend":
        by_day = {r["day"]: Decimal(r["cost_usd"]) for r in rows}
        return stacked_bars(days, [("spend", [by_day.get(d, Decimal(0)) for d in days])], title=panel.title)
    if panel.id == "features":
        totals: dict[str, Decimal] = {}
        for r in rows:
            totals[r["feature"]] = totals.get(r["feature"], Decimal(0)) + Decimal(r["cost_usd"])
        features = sorted(totals, key=lambda f: -totals[f])
        cells = {(r["day"], r["feature"]): Decimal(r["cost_usd"]) for r in rows}
        return stacked_bars(
            days, [(f, [cells.get((d, f), Decimal(0)) for d in days]) for f in features], title=panel.title
        )
    if panel.id == "per_call":
        per_call = [(r["feature"], Decimal(r["cost_usd"]) / r["calls"]) for r in rows if r["calls"]]
        per_call.sort(key=lambda x: -x[1])
        return hbars([(f, v, f"{_per_call(v, 1)} / call") for f, v in per_call], title=panel.title)
    label = {
        "tenants": lambda r: f"{r['tenant']} · {r['tag:plan'] or 'no plan'}",
        "users": lambda r: r["user"],
        "models": lambda r: f"{r['model']} ({r['provider']})",
    }[panel.id]
    return hbars([(label(r), Decimal(r["cost_usd"]), _money(r["cost_usd"])) for r in rows], title=panel.title)


def _table(panel: Panel, rows: list[dict[str, Any]]) -> str:
    keys = [k for k in panel.by.split(",")]
    head = "".join(f"<th>{escape(k)}</th>" for k in keys) + "<th>cost (USD)</th><th>calls</th><th>unpriced</th>"
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(str(r.get(k) or ''))}</td>" for k in keys)
        + f'<td class="num">{escape(r["cost_usd"])}</td><td class="num">{r["calls"]}</td>'
        f'<td class="num">{r["unpriced_calls"]}</td></tr>'
        for r in rows
    )
    return f'<table data-panel="{panel.id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _filters(params: dict[str, str], tenant: str | None) -> str:
    options = "".join(
        f'<option value="{v}"{" selected" if params.get("since") == v else ""}>{label}</option>' for v, label in _RANGES
    )

    def field(name: str, label: str, locked: bool = False) -> str:
        value = escape(params.get(name, ""))
        return f'<label>{label}<input name="{name}" value="{value}"{" readonly" if locked else ""}></label>'

    return (
        f'<form class="filters" method="get" action="/"><label>Range<select name="since">{options}</select>'
        f"</label>{field('tz', 'Time zone')}{field('tenant', 'Tenant', tenant is not None)}"
        f"{field('feature', 'Feature')}{field('user', 'User')}{field('model', 'Model')}"
        f'<button type="submit">Apply</button></form>'
    )


_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1b1f24;color:#fff;padding:12px 20px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:18px;margin:0}main{max-width:1100px;margin:0 auto;padding:16px}
.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end;margin-bottom:16px}
.filters label{display:flex;flex-direction:column;font-size:12px;color:#555}
.filters input,.filters select{font-size:14px;padding:5px 6px;min-width:110px;border:1px solid #bbb;border-radius:4px}
button{padding:6px 14px;border:0;border-radius:4px;background:#0072B2;color:#fff;font-size:14px;cursor:pointer}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin-bottom:16px}
.kpi{background:#fff;border-radius:6px;padding:12px;box-shadow:0 1px 2px #0001}
.kpi span{display:block;font-size:12px;color:#555}.kpi strong{font-size:22px;overflow-wrap:anywhere}.kpi.warn strong{color:#b35900}
.panel{background:#fff;border-radius:6px;padding:12px 16px;margin-bottom:16px;box-shadow:0 1px 2px #0001}
.panel h2{font-size:16px;margin:0 0 8px}.chart{width:100%;height:auto}
.grid{stroke:#e3e3e3}.axis,.legend,.label,.value{font-size:12px;fill:#333}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:8px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee}td.num{text-align:right;font-variant-numeric:tabular-nums}
details{margin-top:6px}.csv{font-size:13px}.warn{background:#fff4e5;border-left:4px solid #E69F00;padding:8px 12px}
.error{background:#fdecea;border-left:4px solid #D55E00;padding:8px 12px}
.budget{display:grid;grid-template-columns:minmax(180px,1fr) 2fr minmax(160px,1fr);gap:8px;align-items:center;margin:6px 0}
.bar{background:#eee;border-radius:4px;height:12px;overflow:hidden}.fill{background:#009E73;height:100%}
.over{background:#D55E00;height:100%}
@media (max-width:640px){.budget{grid-template-columns:1fr}.filters input,.filters select{min-width:90px}}
"""


def _layout(filters: str, body: str, with_auth: bool) -> str:
    logout = '<form method="post" action="/logout"><button type="submit">Sign out</button></form>' if with_auth else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>otel-costs</title>'
        f"<style>{_STYLE}</style></head><body><header><h1>otel-costs</h1>{logout}</header>"
        f"<main>{filters}{body}</main></body></html>"
    )


def _login_page(failed: bool) -> str:
    note = '<p class="error" role="alert">That token is not valid.</p>' if failed else ""
    return _layout(
        "",
        f'<section class="panel"><h2>Sign in</h2>{note}<form method="post" action="/login">'
        f'<label>Token <input name="token" type="password" autocomplete="current-password" required>'
        f'</label> <button type="submit">Sign in</button></form></section>',
        False,
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
