"""The dashboard's HTML: pure functions from report rows to markup (otel_costs_collector/dashboard/
routes.py runs the queries). Money is shown for people (``for_people``) with the exact
amount in tooltips and tables; every name links to its own view (the same page, filtered:
a URL that can be shared); a filtered view lists its most recent and most expensive calls,
each linking to its trace. Every value is escaped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from otel_costs_collector.dashboard.reprice_notes import fix_command, repriced_notes
from otel_costs_collector.dashboard.svg import exact, for_people, hbars, stacked_bars

__all__ = ["Panel", "PANELS", "View", "overview", "trace_page", "layout", "login_page", "NONE"]

#: The one label of a missing tenant, user, feature or model.
NONE = "(none)"
RANGES = (("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("90d", "Last 90 days"))
#: The filters that make a view, in breadcrumb order.
SCOPES = ("tenant", "user", "feature", "model", "version")


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    by: str
    top: int | None = None


PANELS = (
    Panel("trend", "Spend per day", "day"),
    Panel("features", "Cost over time by feature", "day,feature"),
    Panel("errors", "Failed calls per day", "day"),
    Panel("tenants", "Top tenants", "tenant", 10),
    Panel("users", "Top users", "tenant,user", 10),
    Panel("models", "Cost by model and provider", "model,provider", 15),
    Panel("releases", "Cost by release", "version,environment", 15),
    Panel("per_call", "Cost per priced call by feature", "feature"),
)


@dataclass(frozen=True)
class View:
    """What one page shows: the parameters in its URL and the rows read for them."""

    params: dict[str, str]
    start: datetime
    end: datetime
    tz: str
    results: dict[str, list[dict[str, Any]]]
    days: list[str]
    plans: dict[str, list[str]]  # tenant → its plan tags
    statuses: list[Any]  # budgets (otel_costs_collector/budgets/alerts.py BudgetStatus)
    problems: list[dict[str, Any]]  # calls without a cost, by why
    notices: list[str]
    recent: list[dict[str, Any]]  # calls, when the view is scoped
    costly: list[dict[str, Any]]
    anomalies: list[dict[str, Any]] = field(default_factory=list)  # otel_costs_collector/anomalies, newest first
    repriced: list[dict[str, Any]] = field(default_factory=list)  # days re-priced (otel_costs_collector/reprice)
    admin: bool = True


def _q(params: dict[str, str], **change: str | None) -> str:
    merged = {**params, **change}
    return "?" + urlencode({k: v for k, v in merged.items() if v})


def _name(value: Any) -> str:
    return str(value) if value not in (None, "") else NONE


def _link(params: dict[str, str], what: str, value: str) -> str:
    """A name linking to its own view (the same range and filters, and this one)."""
    if what == "tenant":
        href = _q(params, tenant=value, user=None)
    elif what == "user":
        href = _q(params, user=value)
    else:
        href = _q(params, **{what: value})
    return f'<a href="/{escape(href)}">{escape(_name(value))}</a>'


def _money(amount: Any) -> str:
    value = Decimal(amount)
    return f'<span class="money" title="{escape(exact(value))}">{escape(for_people(value))}</span>'


def _per_call(total: Decimal, calls: int) -> str:
    return "–" if not calls else for_people(total / calls)


def overview(view: View) -> str:
    params = view.params
    trend = view.results["trend"]
    total = sum((Decimal(r["cost_usd"]) for r in trend), Decimal(0))
    calls = sum(r["calls"] for r in trend)
    unpriced = sum(r["unpriced_calls"] for r in trend)
    errors = sum(r["error_calls"] for r in trend)
    priced = calls - unpriced
    out = [_breadcrumbs(params), _range_line(view)]
    out.append(
        _kpis(
            _kpi("Total spend", for_people(total), "total", exact(total)),
            _kpi("Calls", f"{calls:,}", "calls"),
            _kpi("Cost per priced call", _per_call(total, priced), "per-call"),
            _kpi("Calls without a cost", f"{unpriced:,}", "unpriced", warn=bool(unpriced)),
            _kpi("Failed calls", f"{errors:,}", "errors", warn=bool(errors)),
        )
    )
    out.extend(
        _problems(
            view.problems,
            fix_command(
                view.start.astimezone(timezone.utc),
                view.end.astimezone(timezone.utc),
                [m for p in view.problems if p["status"] == "unpriced" for m in p["models"]],
            ),
        )
    )
    out.extend(repriced_notes(view.repriced, view.admin))
    out.extend(f'<p class="warn" role="alert" data-testid="notice">{escape(line)}</p>' for line in view.notices)
    if view.statuses:
        out.append(_budgets(view.statuses))
    if view.anomalies:
        out.append(_anomalies(view.anomalies))
    if view.recent or view.costly:
        out.append(_calls_panel("recent", "Most recent calls", view.recent, params))
        out.append(_calls_panel("costly", "Most expensive calls", view.costly, params))
    qs = urlencode({k: v for k, v in params.items() if v})
    for panel in PANELS:
        rows = view.results[panel.id]
        out.append(f'<section class="panel" id="{panel.id}"><h2>{escape(panel.title)}</h2>')
        chart = _chart(panel, rows, view.days, params, view.plans, view.anomalies)
        out.append(chart if rows else '<p class="empty">No calls.</p>')
        out.append(
            f"<details><summary>Table</summary>{_table(panel, rows, params, view.plans)}</details>"
            f'<a class="csv" href="/dashboard/{panel.id}.csv?{escape(qs)}" download>Download CSV</a></section>'
        )
    return "".join(out)


def _kpis(*kpis: str) -> str:
    return f'<section class="kpis">{"".join(kpis)}</section>'


def _kpi(label: str, value: str, testid: str = "", title: str = "", warn: bool = False) -> str:
    attrs = (f' data-testid="{testid}"' if testid else "") + (f' title="{escape(title)}"' if title else "")
    kind = "kpi warn" if warn else "kpi"
    return f'<div class="{kind}"><span>{escape(label)}</span><strong{attrs}>{escape(value)}</strong></div>'


def _breadcrumbs(params: dict[str, str]) -> str:
    base = {k: v for k, v in params.items() if k not in SCOPES}
    crumbs = [f'<a href="/{escape(_q(base))}">All</a>']
    scope: dict[str, str] = dict(base)
    for name in SCOPES:
        if params.get(name):
            scope[name] = params[name]
            crumbs.append(f'<a href="/{escape(_q(scope))}">{name} {escape(params[name])}</a>')
    return f'<nav class="crumbs" aria-label="Breadcrumbs">{" › ".join(crumbs)}</nav>'


def _range_line(view: View) -> str:
    tz = ZoneInfo(view.tz)
    start = view.start.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    end = view.end.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return f'<p class="range" data-testid="range">{start} → {end} {escape(view.tz)} (end excluded)</p>'


def _problems(problems: list[dict[str, Any]], fix: str) -> list[str]:
    out = []
    for p in problems:
        n, models = p["calls"], ", ".join(escape(_name(m)) for m in p["models"])
        plural = "s" if n > 1 else ""
        if p["status"] == "unpriced":
            text = (
                f"<strong>{n:,} call{plural} with no known price</strong> ({models}), not in the totals: add the "
                f'model to a price overrides file, then <code data-testid="fix">{escape(fix)}</code> prices '
                "them (a dry run first with --dry-run)."
            )
        elif p["status"] == "incomplete":
            text = (
                f"<strong>{n:,} incomplete call{plural}</strong> ({models}): the response was not read to its "
                f"end, so its usage is not known ({escape(p['example'] or 'no usage')}); not in the totals."
            )
        else:
            text = (
                f"<strong>{n:,} call{plural} with unreadable usage</strong> ({models}): "
                f"{escape(p['example'] or p['status'])}; not in the totals."
            )
        out.append(f'<p class="warn" role="alert" data-testid="problem-{escape(p["status"])}">{text}</p>')
    return out


def _budgets(statuses: list[Any]) -> str:
    out = ['<section class="panel" id="budgets"><h2>Budgets</h2>']
    for s in statuses:
        pct = min(float(s.percent), 100.0)
        scope = ", ".join(f"{k}={v}" for k, v in s.budget.scope().items()) or "everything"
        out.append(
            f'<div class="budget"><div>{escape(s.budget.id)} <small>({escape(scope)}; '
            f"{'hard' if s.budget.hard else 'soft'}, {s.budget.period})</small></div>"
            f'<div class="bar"><div class="{"over" if s.exceeded else "fill"}" style="width:{pct:.1f}%">'
            f"</div></div><div>{_money(s.spend_usd)} of {_money(s.limit_usd)} · {s.percent}%{_pace(s)}</div></div>"
        )
    out.append("</section>")
    return "".join(out)


def _markers(anomalies: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """The trend chart's markers: the largest anomaly of each day (UTC), linked to its view."""
    out: dict[str, tuple[str, str, Decimal]] = {}
    for a in anomalies:
        day, impact = a["start"][:10], Decimal(a["impact_usd"])
        if day not in out or impact > out[day][2]:
            out[day] = (a["message"], a["dashboard_url"], impact)
    return {day: (what, link) for day, (what, link, _) in out.items()}


def _anomalies(anomalies: list[dict[str, Any]]) -> str:
    items = "".join(
        f'<li><a href="{escape(a["dashboard_url"])}">{escape(a["message"])}</a> '
        f'(<a href="{escape(a["calls_url"])}">the calls</a>)</li>'
        for a in anomalies[:20]
    )
    return f'<section class="panel" id="anomalies"><h2>Cost anomalies</h2><ul>{items}</ul></section>'


def _pace(status: Any) -> str:
    """Where the budget's period is heading (its forecast), when it is known."""
    if status.forecast is None:
        return ""
    crosses = status.crosses_on
    if crosses is not None and not status.exceeded:
        return f' · <strong class="warn">at this pace crosses 100 % on {crosses:%b %d}</strong>'
    return f" · heading for {_money(status.forecast.expected)}"


def _calls_panel(pid: str, title: str, calls: list[dict[str, Any]], params: dict[str, str]) -> str:
    return (
        f'<section class="panel" id="{pid}"><h2>{escape(title)}</h2>'
        + (_calls_table(calls, params) if calls else '<p class="empty">No calls.</p>')
        + "</section>"
    )


def _calls_table(calls: list[dict[str, Any]], params: dict[str, str]) -> str:
    head = "<th>time (UTC)</th><th>model</th><th>tenant</th><th>user</th><th>feature</th>"
    head += '<th class="num">tokens in</th><th class="num">tokens out</th><th class="num">cost (USD)</th>'
    head += "<th>status</th><th>trace</th>"
    rows = []
    for c in calls:
        priced = c["pricing_status"] in ("priced", "overridden")
        status = "error" if c["status"] == "error" else ("ok" if priced else c["pricing_status"])
        rows.append(
            f"<tr><td>{escape(c['timestamp'][:19].replace('T', ' '))}</td>"
            f"<td>{escape(_name(c['response_model'] or c['request_model']))}</td>"
            f"<td>{_link(params, 'tenant', c['tenant'])}</td><td>{_link(params, 'user', c['user'])}</td>"
            f"<td>{_link(params, 'feature', c['feature'])}</td>"
            f'<td class="num">{c["input_tokens"]:,}</td><td class="num">{c["output_tokens"]:,}</td>'
            f'<td class="num">{escape(c["cost_usd"]) if priced else "–"}</td><td>{escape(status)}</td>'
            f'<td><a href="/trace/{escape(c["trace_id"])}">{escape(c["trace_id"][:8])}…</a></td></tr>'
        )
    table = f'<table class="calls"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def _chart(
    panel: Panel,
    rows: list[dict[str, Any]],
    days: list[str],
    params: dict[str, str],
    plans: dict[str, list[str]],
    anomalies: list[dict[str, Any]] = [],  # noqa: B006 (read only)
) -> str:
    days = sorted(set(days) | {r["day"] for r in rows if "day" in r})
    if panel.id == "trend":
        by_day = {r["day"]: Decimal(r["cost_usd"]) for r in rows}
        series = [("spend", [by_day.get(d, Decimal(0)) for d in days])]
        return stacked_bars(days, series, title=panel.title, markers=_markers(anomalies))
    if panel.id == "features":
        totals: dict[str, Decimal] = {}
        for r in rows:
            totals[r["feature"]] = totals.get(r["feature"], Decimal(0)) + Decimal(r["cost_usd"])
        features = sorted(totals, key=lambda f: -totals[f])
        cells = {(r["day"], r["feature"]): Decimal(r["cost_usd"]) for r in rows}
        series = [(_name(f), [cells.get((d, f), Decimal(0)) for d in days]) for f in features]
        return stacked_bars(days, series, title=panel.title, hrefs=["/" + _q(params, feature=f) for f in features])
    if panel.id == "errors":
        bars = []
        for r in sorted(rows, key=lambda r: r["day"]):
            rate = Decimal(r["error_calls"]) / r["calls"] if r["calls"] else Decimal(0)
            bars.append((r["day"], rate, f"{rate:.1%} ({r['error_calls']:,} of {r['calls']:,})"))
        return hbars(bars, title=panel.title, money=False)
    if panel.id == "per_call":
        per_call = [
            (_name(r["feature"]), Decimal(r["cost_usd"]) / (r["calls"] - r["unpriced_calls"]))
            for r in rows
            if r["calls"] > r["unpriced_calls"]
        ]
        per_call.sort(key=lambda x: -x[1])
        hrefs = ["/" + _q(params, feature="" if f == NONE else f) for f, _ in per_call]
        return hbars([(f, v, f"{for_people(v)} / call") for f, v in per_call], title=panel.title, hrefs=hrefs)
    label = {
        "tenants": lambda r: _name(r["tenant"]),
        "users": lambda r: f"{_name(r['user'])} · {_name(r['tenant'])}",
        "models": lambda r: f"{_name(r['model'])} ({r['provider']})",
        "releases": lambda r: f"{_name(r['version'])}" + (f" ({r['environment']})" if r["environment"] else ""),
    }[panel.id]
    view = {
        "tenants": lambda r: _q(params, tenant=r["tenant"], user=None),
        "users": lambda r: _q(params, tenant=r["tenant"], user=r["user"]),
        "models": lambda r: _q(params, model=r["model"]),
        "releases": lambda r: _q(params, version=r["version"]),
    }[panel.id]
    hrefs = ["/" + view(r) for r in rows]
    bars = [(label(r), Decimal(r["cost_usd"]), for_people(Decimal(r["cost_usd"]))) for r in rows]
    return hbars(bars, title=panel.title, hrefs=hrefs)


def _table(panel: Panel, rows: list[dict[str, Any]], params: dict[str, str], plans: dict[str, list[str]]) -> str:
    keys = panel.by.split(",")
    extra = ["plan"] if panel.id == "tenants" else []
    head = "".join(f"<th>{escape(k)}</th>" for k in [*keys, *extra])
    head += '<th class="num">cost (USD)</th><th class="num">calls</th><th class="num">without a cost</th>'
    head += '<th class="num">failed</th>'
    body = []
    for r in rows:
        cells = []
        for k in keys:
            value = r.get(k)
            cells.append(f"<td>{_link(params, k, str(value or '')) if k in SCOPES else escape(_name(value))}</td>")
        if extra:
            cells.append(f"<td>{escape(', '.join(plans.get(r['tenant'], [])) or NONE)}</td>")
        body.append(
            "<tr>" + "".join(cells) + f'<td class="num">{escape(r["cost_usd"])}</td><td class="num">{r["calls"]:,}</td>'
            f'<td class="num">{r["unpriced_calls"]:,}</td><td class="num">{r["error_calls"]:,}</td></tr>'
        )
    return (
        f'<div class="scroll"><table data-panel="{panel.id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def trace_page(trace_id: str, page: dict[str, Any], params: dict[str, str]) -> str:
    """One trace's calls step by step (oldest first) and its totals."""
    trace = page["trace"]
    cost = Decimal(trace["cost_usd"])
    steps = list(reversed(page["calls"]))
    base = {k: v for k, v in params.items() if k not in SCOPES}
    return (
        f'<nav class="crumbs" aria-label="Breadcrumbs"><a href="/{escape(_q(base))}">All</a> › trace '
        f"{escape(trace_id)}</nav>"
        + _kpis(
            _kpi("Trace cost", for_people(cost), "trace-cost", exact(cost)),
            _kpi("Calls", f"{trace['calls']:,}", "trace-calls"),
            _kpi("Tokens in / out", f"{trace['input_tokens']:,} / {trace['output_tokens']:,}"),
            _kpi("Duration", f"{trace['duration_ms'] / 1000:,.2f} s"),
        )
        + '<section class="panel" id="steps"><h2>Calls, step by step</h2>'
        '<section class="panel" id="steps"><h2>Calls, step by step</h2>'
        + (_calls_table(steps, base) if steps else '<p class="empty">No calls in this trace.</p>')
        + (
            '<p class="warn">More calls than shown: <code>otel-costs calls --trace-id '
            f"{escape(trace_id)}</code> lists them all.</p>"
            if page.get("next_cursor")
            else ""
        )
        + "</section>"
    )


def filters_form(params: dict[str, str], tenant: str | None) -> str:
    """Range presets as links; dates (``from``/``to``, which win over a preset) and filters in a
    form whose Apply keeps them all."""
    presets = " ".join(
        f'<a class="preset{" on" if params.get("since") == v and "from" not in params else ""}" '
        f'href="/{escape(_q({k: x for k, x in params.items() if k not in ("since", "from", "to")}, since=v))}">'
        f"{label}</a>"
        for v, label in RANGES
    )

    def field(name: str, label: str, kind: str = "text", locked: bool = False) -> str:
        value = escape(params.get(name, ""))
        return (
            f'<label>{label}<input name="{name}" type="{kind}" value="{value}"{" readonly" if locked else ""}></label>'
        )

    hidden = (
        f'<input type="hidden" name="since" value="{escape(params["since"])}">'
        if params.get("since") and not params.get("from")
        else ""
    )
    return (
        f'<nav class="presets" aria-label="Range">{presets}</nav>'
        f'<form class="filters" method="get" action="/">{hidden}'
        f"{field('from', 'From', 'date')}{field('to', 'To (excluded)', 'date')}{field('tz', 'Time zone')}"
        f"{field('tenant', 'Tenant', locked=tenant is not None)}{field('feature', 'Feature')}"
        f"{field('user', 'User')}{field('model', 'Model')}{field('version', 'Release')}"
        f'<button type="submit">Apply</button></form>'
    )


#: The stylesheet, inlined into every page (the page loads nothing else).
STYLE = resources.files(__package__).joinpath("dashboard.css").read_text(encoding="utf-8")


def layout(filters: str, body: str, with_auth: bool) -> str:
    logout = '<form method="post" action="/logout"><button type="submit">Sign out</button></form>' if with_auth else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>otel-costs</title>'
        f'<style>{STYLE}</style></head><body><header><h1><a href="/">otel-costs</a></h1>{logout}</header>'
        f"<main>{filters}{body}</main></body></html>"
    )


def login_page(failed: bool) -> str:
    note = '<p class="error" role="alert">That token is not valid.</p>' if failed else ""
    return layout(
        "",
        f'<section class="panel"><h2>Sign in</h2>{note}<form method="post" action="/login">'
        f'<label>Token <input name="token" type="password" autocomplete="current-password" required>'
        f'</label> <button type="submit">Sign in</button></form></section>',
        False,
    )


def day_columns(start: datetime, end: datetime, tz: str) -> list[str]:
    """Every calendar day of the range in its time zone (so days without spend show)."""
    zone = ZoneInfo(tz)
    day, last = start.astimezone(zone).date(), (end - timedelta(microseconds=1)).astimezone(zone).date()
    days: list[str] = []
    while day <= last and len(days) < 400:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days
