"""The dashboard's Margin view (``/margin``): tenants ranked by margin, the unprofitable ones
called out, the plans' cost per tenant, and what could not be compared; and the panel on a
tenant's page that puts its revenue beside its cost per day. Admin viewers only: revenue is
the operator's. The figures are otel_costs_collector/revenue/margin.py's, as the API gives them."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlencode

__all__ = ["margin_page", "tenant_margin"]

_HEAD = ("tenant", "plan", "revenue (USD)", "AI cost (USD)", "margin (USD)", "cost / revenue", "status")


def margin_page(report: dict[str, Any]) -> str:
    """The Margin view's HTML for a margin report by tenant."""
    out = [
        '<section class="panel" id="margin"><h2>Margin after AI cost</h2>',
        f"<p>{escape(report['from'])} to {escape(report['to'])} (UTC days, the end exclusive), in "
        f"{escape(report['basis'])}. Unprofitable: AI cost above {escape(report['max_ratio'])} of revenue; "
        f"warning above {escape(report['warn_ratio'])}.</p>",
    ]
    if report["unprofitable"]:
        names = ", ".join(
            f"{escape(r['tenant'])} (loses ${escape(r['margin_usd'].lstrip('-'))})" for r in report["unprofitable"]
        )
        out.append(f'<p class="warn" role="alert" data-testid="unprofitable">Unprofitable: {names}</p>')
    body = []
    for r in report["rows"]:
        link = "/?" + urlencode({"tenant": r["tenant"], "from": report["from"], "to": report["to"]})
        name = f'<a href="{escape(link)}">{escape(r["tenant"])}</a>' if r["tenant"] else "(no tenant)"
        body.append(
            f'<tr class="{"gap" if r["status"] in ("unprofitable", "no revenue") else ""}"><td>{name}</td>'
            f"<td>{escape(r['plan'])}</td><td class='num'>{escape(r['revenue_usd'])}</td>"
            f"<td class='num'>{escape(r['ai_cost_usd'])}</td><td class='num'>{escape(r['margin_usd'])}</td>"
            f"<td class='num'>{escape(r['cost_to_revenue'] or '–')}</td><td>{escape(r['status'])}</td></tr>"
        )
    if not body:
        out.append('<p class="empty">No revenue or cost in this range. Set OTEL_COSTS_STRIPE_KEY or run '
                   "<code>otel-costs revenue import</code>.</p>")  # fmt: skip
    else:
        head = "".join(f"<th>{h}</th>" for h in _HEAD)
        out.append(f'<table data-panel="margin"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
    if report["unconverted"]:
        items = ", ".join(
            f"{escape(r['tenant'] or '(no tenant)')}: {escape(r['revenue'])} {escape(r['currency'])}"
            for r in report["unconverted"]
        )
        out.append(f"<p>Revenue in currencies without a rate (OTEL_COSTS_FX_RATES_FILE), not compared: {items}</p>")
    out.append("</section>")
    out.append(_plans(report["plans"]))
    return "".join(out)


def _plans(plans: list[dict[str, Any]]) -> str:
    if not plans:
        return ""
    rows = "".join(
        f"<tr><td>{escape(p['plan'])}</td><td class='num'>{p['tenants']}</td>"
        f"<td class='num'>{escape(p['revenue_usd'])}</td><td class='num'>{escape(p['cost_per_tenant_median'])}</td>"
        f"<td class='num'>{escape(p['cost_per_tenant_p90'])}</td>"
        f"<td class='num'>{escape(p['cost_per_tenant_max'])}</td></tr>"
        for p in plans
    )
    return (
        '<section class="panel" id="plans"><h2>Plans: AI cost per tenant</h2><table data-panel="plans"><thead><tr>'
        "<th>plan</th><th>tenants</th><th>revenue (USD)</th><th>median</th><th>p90</th><th>max</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def tenant_margin(tenant: str, days: list[tuple[str, str, str]], report: dict[str, Any]) -> str:
    """A tenant page's panel: ``days`` of (day, revenue USD, AI cost USD), and its margin row."""
    (row,) = [r for r in report["rows"] if r["tenant"] == tenant] or [None]
    if row is None:
        return ""
    link = "/margin?" + urlencode({"from": report["from"], "to": report["to"]})
    body = "".join(
        f"<tr><td>{escape(day)}</td><td class='num'>{escape(revenue)}</td><td class='num'>{escape(cost)}</td></tr>"
        for day, revenue, cost in days
    )
    return (
        f'<section class="panel" id="tenant-margin"><h2>Revenue beside cost</h2><p>{escape(tenant)} '
        f"({escape(row['plan'])}): revenue ${escape(row['revenue_usd'])}, AI cost ${escape(row['ai_cost_usd'])}, "
        f"margin ${escape(row['margin_usd'])}, cost / revenue {escape(row['cost_to_revenue'] or '–')} "
        f'({escape(row["status"])}). <a href="{escape(link)}">All tenants\' margins</a></p>'
        '<table data-panel="tenant-margin"><thead><tr><th>day (UTC)</th><th>revenue (USD)</th>'
        f"<th>AI cost (USD)</th></tr></thead><tbody>{body}</tbody></table></section>"
    )
