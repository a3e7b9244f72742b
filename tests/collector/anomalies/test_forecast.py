"""Forecasts: a month with a known daily spend gives the projection computed here — by the pure
projection and through a real collector (``GET /v1/forecast``, a budget's "crosses 100 % on",
its early alert, once)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price

from otel_costs_collector.anomalies.forecast import month_bounds, project
from otel_costs_collector.cli.main import main as cli

from ..budgets.test_budgets import Clock, Hook, webhook  # noqa: F401 (fixture)
from ..reconcile.test_reconcile import wait_for_rollups
from ..spans import SEMCONV, sdk_request

UTC = timezone.utc
PROTO = {"Content-Type": "application/x-protobuf"}


def daily(first: datetime, last: datetime, amount: Decimal) -> dict[datetime, Decimal]:
    """``amount`` at 10:00 UTC of every day from ``first`` to ``last``."""
    out = {}
    day = first.replace(hour=10, minute=0, second=0, microsecond=0)
    while day <= last:
        out[day] = amount
        day += timedelta(days=1)
    return out


@pytest.mark.parametrize("history_days, method", [(40, "seasonal"), (5, "trailing median")])
def test_a_known_daily_spend_projects_to_the_month_end(history_days, method):
    now = datetime(2026, 11, 12, 15, 30, tzinfo=UTC)
    start, end = month_bounds(now)
    series = daily(now - timedelta(days=history_days), now, Decimal("2.5"))
    first = min(series)
    p = project(series, first, start, now, end, amounts=(Decimal(50), Decimal(1000)))
    assert p is not None and p.method == method
    days = min(12, history_days + 1)  # the days of the month with spend so far, each at 10:00
    spent = Decimal("2.5") * days
    rest = Decimal("2.5") * 18  # the 13th to the 30th
    assert (p.spent, p.expected, p.low, p.high) == (spent, spent + rest, spent + rest, spent + rest)
    crossing = 12 + -(-(Decimal(50) - spent) // Decimal("2.5"))  # the day the $50 is reached
    assert p.crossing(Decimal(50)) == datetime(2026, 11, int(crossing)).date()
    assert p.crossing(Decimal(1000)) is None


def test_too_little_history_gives_no_projection():
    now = datetime(2026, 11, 12, 15, tzinfo=UTC)
    start, end = month_bounds(now)
    series = daily(now - timedelta(days=1), now, Decimal(1))
    assert project(series, min(series), start, now, end) is None
    assert project({}, None, start, now, end) is None


def test_budget_forecast_and_its_early_alert(start_collector, webhook):  # noqa: F811
    now = datetime.now(UTC)
    clock = Clock(now)
    c = start_collector(clock=clock, budget_webhook_url=webhook, budget_interval_s=3600, anomaly_interval_s=3600)
    spend = {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 400_000,
        "gen_ai.usage.output_tokens": 0,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "tenant.id": "acme",
    }
    call = calc_price(Usage(input_tokens=400_000), model_ref="gpt-4o", provider_id="openai").total_price
    at = timedelta(minutes=5)  # a call at 10:05 of every day up to now
    hours = [h for h in sorted(daily(now - timedelta(days=30), now, call)) if h + at < now]
    request = sdk_request([{**SEMCONV, **spend, "_start": h + at} for h in hours])
    r = httpx.post(c.http_url + "/v1/traces", content=request.SerializeToString(), headers=PROTO, timeout=60)
    assert r.status_code == 200
    wait_for_rollups(c, len(hours))

    start, end = month_bounds(now)
    spent = call * len([h for h in hours if h >= start])
    future = [h for h in sorted(daily(start, end, call)) if h + at >= now and h < end]
    limit = spent + call * 3 if len(future) >= 3 else spent + call * 1000  # crosses on the third day ahead
    budget = {"tenant": "acme", "amount_usd": str(limit), "period": "monthly", "hard": False}
    assert httpx.put(c.http_url + "/v1/budgets/acme-month", json=budget).status_code == 200
    c.call(c.collector.evaluate_budgets_now())
    (status,) = httpx.get(c.http_url + "/v1/budgets/status", params={"tenant": "acme"}).json()["budgets"]
    forecast = status["forecast"]
    assert Decimal(status["spend_usd"]) == spent
    assert Decimal(forecast["expected_usd"]) == spent + call * len(future) and forecast["method"] == "seasonal"
    crosses = future[2].date().isoformat() if len(future) >= 3 else None
    assert forecast["crosses_limit_on"] == crosses
    early = [a for a in Hook.received if a["type"] == "otel_costs.budget.forecast"]
    assert [a["crosses_on"] for a in early] == ([crosses] if crosses else [])
    c.call(c.collector.evaluate_budgets_now())
    assert len([a for a in Hook.received if a["type"] == "otel_costs.budget.forecast"]) == len(early)

    month = httpx.get(c.http_url + "/v1/forecast").json()
    assert Decimal(month["total"]["spent_usd"]) == spent
    assert Decimal(month["total"]["expected_usd"]) == spent + call * len(future)
    out = CliRunner().invoke(cli, ["forecast", "--url", c.http_url])
    assert out.exit_code == 0 and "TOTAL" in out.output, out.output
    page = httpx.get(c.http_url + "/", params={"tenant": "acme"}).text
    assert ("at this pace crosses 100 %" in page) == (crosses is not None)
