"""Margin: revenue beside AI cost, per tenant, plan or month, over UTC days. One parameter set
for ``otel-costs margin`` and ``GET /v1/margin``, one reading of storage.

Revenue: the revenue lines' daily shares (revenue/store.py). AI cost: the same daily rollups as
every cost report (otel_costs_collector/reports/query.py), in USD. Margin needs one currency:
revenue in USD counts as it is; revenue in another currency is converted with the rates the
user supplies (USD per unit, a file) and is otherwise listed as ``unconverted``, never
subtracted from a USD cost and never dropped. Every figure says which (``basis``).

* ``margin_usd`` = revenue − AI cost; ``cost_to_revenue`` = AI cost / revenue, rounded half-even
  to 6 decimal places (None without revenue).
* A tenant is ``unprofitable`` when its cost-to-revenue ratio is above ``max_ratio`` (default
  1.0), ``warning`` above ``warn_ratio`` (default 0.8); tenants with cost and no revenue (free
  or unmapped) are listed apart, as is revenue with no tenant.
* A tenant's plan is the plan that brought it the most revenue in the range. Per plan: tenants,
  revenue, and the AI cost per tenant: median, p90 (nearest rank: the ⌈0.9·n⌉-th smallest) and
  max.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Mapping

from otel_costs_collector.reconcile.report import ReconcileError, ReconcileQuery
from otel_costs_collector.reports.query import ReportQuery, money_text, run_report
from otel_costs_collector.revenue.money import MoneyError, amount_of, currency_of
from otel_costs_collector.revenue.store import revenue_days

__all__ = [
    "MarginError",
    "MarginQuery",
    "run_margin",
    "read_rates",
    "inline_rates",
    "VIEWS",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_WARN_RATIO",
]

VIEWS = ("tenant", "plan", "month")
DEFAULT_MAX_RATIO = Decimal(1)
DEFAULT_WARN_RATIO = Decimal("0.8")
_RATIO = Decimal("0.000001")
_ZERO = Decimal(0)
NO_PLAN = "(none)"


class MarginError(ValueError):
    """A margin parameter or the rates are invalid; the message names every problem."""


@dataclass(frozen=True)
class MarginQuery:
    start: date  # UTC day, inclusive
    end: date  # UTC day, exclusive
    by: str = "tenant"
    max_ratio: Decimal = DEFAULT_MAX_RATIO
    warn_ratio: Decimal = DEFAULT_WARN_RATIO
    rates: Mapping[str, Decimal] = field(default_factory=dict)  # currency → USD per unit

    @classmethod
    def parse(
        cls, params: Mapping[str, Any], rates: Mapping[str, Decimal] | None = None, now: datetime | None = None
    ) -> "MarginQuery":
        """``since``/``from``/``to`` (UTC days, as ``otel-costs reconcile``), ``by`` (tenant,
        plan or month), ``max_ratio`` and ``warn_ratio``. Raises MarginError naming every problem."""
        problems: list[str] = []
        unknown = set(params) - {"since", "from", "to", "by", "max_ratio", "warn_ratio", "format"}
        if unknown:
            problems.append(f"unknown parameter(s): {', '.join(sorted(str(u)[:32] for u in unknown))}")
        start = end = date.today()
        try:
            days = ReconcileQuery.parse({k: params[k] for k in ("since", "from", "to") if params.get(k)}, now)
            start, end = days.start, days.end
        except ReconcileError as exc:
            problems.append(str(exc))
        by = str(params.get("by") or "tenant")
        if by not in VIEWS:
            problems.append(f"by: {by[:32]!r} is not one of {', '.join(VIEWS)}")
        ratios = []
        for name, default in (("max_ratio", DEFAULT_MAX_RATIO), ("warn_ratio", DEFAULT_WARN_RATIO)):
            try:
                value = amount_of(params[name]) if params.get(name) not in (None, "") else default
                if value <= 0:
                    raise MoneyError("must be above 0")
            except MoneyError as exc:
                problems.append(f"{name}: {exc}")
                value = default
            ratios.append(value)
        if ratios[1] > ratios[0]:
            problems.append("warn_ratio: must not be above max_ratio")
        if problems:
            raise MarginError("; ".join(problems))
        return cls(start, end, by, ratios[0], ratios[1], dict(rates or {}))


def read_rates(text: str) -> dict[str, Decimal]:
    """Exchange rates to USD (USD per unit of the currency) from a JSON object
    (``{"EUR": "1.08"}``) or CSV lines (``EUR,1.08``). Raises MarginError naming every problem."""
    problems: list[str] = []
    pairs: list[tuple[Any, Any]]
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            raise MarginError(f"rates: not JSON ({exc})") from None
        pairs = list(doc.items())
    else:
        pairs = []
        for number, raw in enumerate(text.splitlines(), 1):
            parts = [p.strip() for p in raw.split(",")]
            if not raw.strip() or parts[0].lower() == "currency":
                continue
            if len(parts) != 2:
                problems.append(f"rates line {number}: not 'CURRENCY,USD_PER_UNIT'")
                continue
            pairs.append((parts[0], parts[1]))
    rates: dict[str, Decimal] = {}
    for code, value in pairs:
        try:
            rate = amount_of(value)
            if rate <= 0:
                raise MoneyError(f"rate {value} must be above 0")
            rates[currency_of(code)] = rate
        except MoneyError as exc:
            problems.append(f"rates {str(code)[:16]}: {exc}")
    if problems:
        raise MarginError("; ".join(problems))
    rates["USD"] = Decimal(1)
    return rates


def inline_rates(text: str) -> dict[str, Decimal]:
    """Rates written inline, ``EUR=1.08,JPY=0.0067`` (a request's ``rates``, ``--rate``).
    Raises MarginError."""
    return read_rates("\n".join(part.replace("=", ",", 1) for part in text.split(",")))


def run_margin(client: Any, db: str, query: MarginQuery) -> dict[str, Any]:
    """The margin report as a JSON-ready dict (exact decimal strings): ``rows`` (per ``by``),
    ``unprofitable`` (ranked by loss), ``no_revenue``, ``no_tenant_revenue``, ``unconverted``,
    ``plans``, ``features``. Raises on a storage error."""
    rates = {"USD": Decimal(1), **query.rates}
    revenue: dict[str, Decimal] = {}  # tenant → USD
    by_month: dict[str, list[Decimal]] = {}  # month → [revenue, cost]
    plan_revenue: dict[tuple[str, str], Decimal] = {}  # (tenant, plan) → USD
    unconverted: dict[tuple[str, str], Decimal] = {}  # (tenant, currency) → amount
    for tenant, plan, currency, day, amount in revenue_days(client, db, query.start, query.end):
        rate = rates.get(currency)
        if rate is None:
            unconverted[(tenant, currency)] = unconverted.get((tenant, currency), _ZERO) + Decimal(amount)
            plan_revenue.setdefault((tenant, plan), _ZERO)  # its plan is known all the same
            continue
        usd = Decimal(amount) * rate
        revenue[tenant] = revenue.get(tenant, _ZERO) + usd
        plan_revenue[(tenant, plan)] = plan_revenue.get((tenant, plan), _ZERO) + usd
        by_month.setdefault(day.strftime("%Y-%m"), [_ZERO, _ZERO])[0] += usd
    cost: dict[str, Decimal] = {}
    for row in _costs(client, db, query, "tenant,day"):
        amount = Decimal(row["cost_usd"])
        cost[row["tenant"]] = cost.get(row["tenant"], _ZERO) + amount
        by_month.setdefault(row["day"][:7], [_ZERO, _ZERO])[1] += amount
    plan_of: dict[str, str] = {}  # the plan that brought the tenant the most revenue (USD)
    for (tenant, plan), _amount in sorted(plan_revenue.items(), key=lambda kv: (-kv[1], kv[0][1])):
        plan_of.setdefault(tenant, plan or NO_PLAN)
    tenants = sorted(set(revenue) | set(cost) | {t for t, _ in unconverted})
    foreign = {t for t, _ in unconverted}
    tenant_rows = []
    for t in tenants:
        if t in revenue or t in cost or t in foreign:
            row = _figures({"tenant": t, "plan": plan_of.get(t, NO_PLAN)}, revenue.get(t), cost.get(t, _ZERO), query)
            if t in foreign and t not in revenue:
                row["status"] = "no rate"  # its revenue is in a currency without a rate (unconverted)
            tenant_rows.append(row)
    rows: list[dict[str, Any]]
    if query.by == "tenant":  # the least profitable first
        rows = sorted(tenant_rows, key=lambda r: (Decimal(r["margin_usd"]), r["tenant"]))
    elif query.by == "month":
        rows = [_figures({"month": m}, r, c, query) for m, (r, c) in sorted(by_month.items())]
    else:
        rows = _plan_rows(revenue, cost, plan_of)
    unprofitable = sorted(
        (r for r in tenant_rows if r["status"] == "unprofitable"),
        key=lambda r: (Decimal(r["margin_usd"]), r["tenant"]),
    )
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "by": query.by,
        "basis": "USD"
        + (f" (rates for {', '.join(sorted(c for c in rates if c != 'USD'))})" if len(rates) > 1 else ""),
        "rates": {c: format(r, "f") for c, r in sorted(rates.items()) if c != "USD"},
        "max_ratio": format(query.max_ratio, "f"),
        "warn_ratio": format(query.warn_ratio, "f"),
        "rows": rows,
        "unprofitable": unprofitable,
        "no_revenue": [r for r in tenant_rows if r["status"] == "no revenue" and r["tenant"]],
        "no_tenant_revenue": money_text(revenue.get("", _ZERO)),
        "unconverted": [
            {"tenant": t, "currency": c, "revenue": money_text(a)} for (t, c), a in sorted(unconverted.items())
        ],
        "plans": _plan_rows(revenue, cost, plan_of),
        "features": _features(client, db, query, revenue),
    }


def _costs(client: Any, db: str, query: MarginQuery, by: str) -> list[dict[str, Any]]:
    report = ReportQuery.parse({"by": by, "from": query.start.isoformat(), "to": query.end.isoformat()})
    return run_report(client, db, report)


def _figures(keys: dict[str, Any], revenue: Decimal | None, cost: Decimal, query: MarginQuery) -> dict[str, Any]:
    ratio = (cost / revenue).quantize(_RATIO, rounding=ROUND_HALF_EVEN) if revenue and revenue > 0 else None
    if ratio is None:
        status = "no revenue" if cost else "ok"
    elif ratio > query.max_ratio:
        status = "unprofitable"
    elif ratio > query.warn_ratio:
        status = "warning"
    else:
        status = "ok"
    return {
        **keys,
        "revenue_usd": money_text(revenue or _ZERO),
        "ai_cost_usd": money_text(cost),
        "margin_usd": money_text((revenue or _ZERO) - cost),
        "cost_to_revenue": None if ratio is None else format(ratio, "f"),
        "status": status,
    }


def _plan_rows(revenue: dict[str, Decimal], cost: dict[str, Decimal], plan_of: dict[str, str]) -> list[dict[str, Any]]:
    plans: dict[str, list[str]] = {}
    for tenant in set(revenue) | set(cost) | set(plan_of):
        if tenant:
            plans.setdefault(plan_of.get(tenant, NO_PLAN), []).append(tenant)
    out = []
    for plan, members in sorted(plans.items()):
        costs = sorted(cost.get(t, _ZERO) for t in members)
        out.append(
            {
                "plan": plan,
                "tenants": len(members),
                "revenue_usd": money_text(sum((revenue.get(t, _ZERO) for t in members), _ZERO)),
                "ai_cost_usd": money_text(sum(costs, _ZERO)),
                "cost_per_tenant_median": money_text(statistics.median(costs)),
                "cost_per_tenant_p90": money_text(costs[(9 * len(costs) + 9) // 10 - 1]),
                "cost_per_tenant_max": money_text(costs[-1]),
            }
        )
    return out


def _features(client: Any, db: str, query: MarginQuery, revenue: dict[str, Decimal]) -> list[dict[str, Any]]:
    out = []
    for row in _costs(client, db, query, "tenant,feature"):
        tenant_revenue = revenue.get(row["tenant"], _ZERO)
        share = Decimal(row["cost_usd"]) / tenant_revenue if tenant_revenue > 0 else None
        out.append(
            {
                "tenant": row["tenant"],
                "feature": row["feature"],
                "ai_cost_usd": row["cost_usd"],
                "share_of_revenue": None if share is None else format(share.quantize(_RATIO, ROUND_HALF_EVEN), "f"),
            }
        )
    return out


def tenant_days(client: Any, db: str, query: MarginQuery, tenant: str) -> list[tuple[str, str, str]]:
    """(day, revenue in USD, AI cost in USD) of each UTC day of the range for ``tenant``
    (revenue in a currency without a rate left out, as in :func:`run_margin`). Raises on a
    storage error."""
    rates = {"USD": Decimal(1), **query.rates}
    days: dict[str, list[Decimal]] = {}
    for _, _, currency, day, amount in revenue_days(client, db, query.start, query.end, tenant):
        if currency in rates:
            days.setdefault(day.isoformat(), [_ZERO, _ZERO])[0] += Decimal(amount) * rates[currency]
    report = ReportQuery.parse(
        {"by": "day", "from": query.start.isoformat(), "to": query.end.isoformat(), "tenant": tenant}
    )
    for row in run_report(client, db, report):
        days.setdefault(row["day"], [_ZERO, _ZERO])[1] += Decimal(row["cost_usd"])
    return [(day, money_text(r), money_text(c)) for day, (r, c) in sorted(days.items())]
