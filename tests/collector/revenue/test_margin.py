"""Revenue beside cost through the real collector: spans of four tenants on two plans sent
over OTLP, revenue pulled from a loopback fake of Stripe (customers with metadata, invoices
with line items across a month boundary and on a second page of lines, a discount, a credit
note, a zero-decimal currency, a void invoice, a line without a period, an unknown currency,
several pages, a 429), and the margin report — revenue per day, margin, ratios, the
unprofitable list, the plans' p90 — checked to the last digit against what this test computes
from the fake's amounts and genai-prices' ``calc_price``."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price

from otel_costs_collector.cli.main import main as cli
from otel_costs_collector.revenue import store
from tests.fake_stripe import KEY, FakeStripe

from ..budgets.test_budgets import Hook, send, webhook  # noqa: F401 (fixture)
from ..reconcile.test_reconcile import wait_for_rollups
from ..spans import SEMCONV

UTC = timezone.utc
_today = datetime.now(UTC).date()
# The first day of last month: the window [D0 - 10, D0 + 10) crosses a month boundary, and
# every span in it is younger than the raw rows' TTL (90 days).
D0 = (_today.replace(day=1) - timedelta(days=1)).replace(day=1)
START, END = D0 - timedelta(days=10), D0 + timedelta(days=10)
BIG = {  # one call of $10 and change: margins move with a few calls
    **SEMCONV,
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 4_000_000,
    "gen_ai.usage.output_tokens": 10,
    "gen_ai.usage.cache_read.input_tokens": 0,
}
CALL = calc_price(Usage(input_tokens=4_000_000, output_tokens=10), model_ref="gpt-4o", provider_id="openai").total_price
JPY_RATE = Decimal("0.0067")


def at(day: date, hour: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp())


def line(line_id, amount, currency, start, end, product, **extra):
    period = {"start": at(start), "end": at(end)} if start is not None else None
    item = {"id": line_id, "object": "line_item", "amount": amount, "currency": currency, "period": period}
    item["pricing"] = {"type": "price_details", "price_details": {"price": "price_x", "product": product}}
    return {**item, **extra}


def invoice(invoice_id, customer, currency, status, lines, created):
    return {"id": invoice_id, "object": "invoice", "customer": customer, "currency": currency, "status": status,
            "created": created, "lines": lines}  # fmt: skip


@pytest.fixture()
def stripe():
    fake = FakeStripe(page=2, embedded_lines=1)
    made = at(D0 - timedelta(days=12))
    fake.customers = [
        {"id": "cus_A", "object": "customer", "metadata": {"tenant_id": "acme"}},
        {"id": "cus_B", "object": "customer", "metadata": {"tenant_id": "globex", "other": "x"}},
        {"id": "cus_C", "object": "customer", "metadata": {}},  # no tenant key: its id is the tenant
    ]
    fake.products = [{"id": "prod_pro", "name": "Pro"}, {"id": "prod_team", "name": "Team"}]
    fake.invoices = [
        # $20 less a $2 discount over 9 days across the month boundary: $2 a day
        invoice(
            "in_1",
            "cus_A",
            "usd",
            "paid",
            [
                line(
                    "il_1",
                    2000,
                    "usd",
                    D0 - timedelta(days=5),
                    D0 + timedelta(days=4),
                    "prod_pro",
                    discount_amounts=[{"amount": 200, "discount": "di_1"}],
                )
            ],
            made,
        ),  # fmt: skip
        # two lines, the second only on the invoice's lines endpoint (has_more)
        invoice(
            "in_2",
            "cus_B",
            "usd",
            "paid",
            [
                line("il_2", 10000, "usd", START, END, "prod_team"),  # $100 over 20 days
                line("il_3", 5000, "usd", D0, END, "prod_team"),  # $50 over 10 days
            ],
            made,
        ),  # fmt: skip
        invoice(
            "in_3", "cus_C", "jpy", "open", [line("il_4", 3000, "jpy", START, D0 + timedelta(days=5), "prod_pro")], made
        ),  # fmt: skip  (¥3000, zero-decimal, over 15 days)
        invoice("in_4", "cus_A", "usd", "void", [line("il_5", 5000, "usd", START, END, "prod_pro")], made),
        invoice(
            "in_5",
            "cus_A",
            "usd",
            "paid",
            [line("il_6", 700, "usd", None, None, "prod_pro")],
            at(D0 + timedelta(days=2), 12),
        ),  # fmt: skip  (no period: the invoice's day)
        invoice("in_6", "cus_B", "xyz", "paid", [line("il_7", 100, "xyz", START, END, "prod_team")], made),
        invoice(
            "in_7",
            None,
            "usd",
            "paid",
            [line("il_8", 300, "usd", D0 + timedelta(days=1), D0 + timedelta(days=2), "prod_pro")],
            made,
        ),  # fmt: skip  (no customer: no tenant)
    ]
    fake.credit_notes = [  # $25 back on il_2: over il_2's period
        {"id": "cn_1", "object": "credit_note", "customer": "cus_B", "currency": "usd", "status": "issued",
         "invoice": "in_2", "created": made, "lines": [
            {"id": "cnli_1", "amount": 2500, "invoice_line_item": "il_2", "discount_amounts": []}]},
        {"id": "cn_2", "object": "credit_note", "customer": "cus_B", "currency": "usd", "status": "void",
         "invoice": "in_2", "created": made, "lines": [{"id": "cnli_2", "amount": 9900, "invoice_line_item": "il_2"}]},
    ]  # fmt: skip
    yield fake
    fake.close()


def expected_daily() -> dict[tuple[str, date], dict[str, Decimal]]:
    """(tenant, day) → currency → revenue, from the fake's amounts (whole-day periods: an even share a day)."""
    out: dict[tuple[str, date], dict[str, Decimal]] = {}

    def add(tenant, currency, total, start, days):
        for i in range(days):
            cell = out.setdefault((tenant, start + timedelta(days=i)), {})
            cell[currency] = cell.get(currency, Decimal(0)) + total / days

    add("acme", "USD", Decimal("18"), D0 - timedelta(days=5), 9)
    add("acme", "USD", Decimal("7"), D0 + timedelta(days=2), 1)
    add("globex", "USD", Decimal("100") - Decimal("25"), START, 20)
    add("globex", "USD", Decimal("50"), D0, 10)
    add("cus_C", "JPY", Decimal("3000"), START, 15)
    add("", "USD", Decimal("3"), D0 + timedelta(days=1), 1)
    return out


def margin(c, **params):
    r = httpx.get(c.http_url + "/v1/margin", params={"from": START.isoformat(), "to": END.isoformat(), **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_margin_per_tenant_plan_and_month_from_stripe_exactly(start_collector, stripe, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "INSERT_ROWS", 7)  # a pull's lines in several inserts, a line's days in one
    stripe.fail = [(429, 60)]  # the pull as the collector starts is rate limited
    c = start_collector(stripe_key=KEY, stripe_api_base=stripe.url, revenue_interval_s=3600)
    deadline = time.monotonic() + 20
    while not (c.collector.revenue and c.collector.revenue.failing) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "rate limited (429)" in c.collector.revenue.failing
    asked = len(stripe.requests)
    c.call(c.collector.pull_revenue_now())  # the next cycle waits for Stripe's retry-after
    assert len(stripe.requests) == asked

    send(c, 3, datetime(D0.year, D0.month, D0.day, 9, tzinfo=UTC) - timedelta(days=3), **BIG,
         **{"tenant.id": "acme", "feature.name": "chat"})  # fmt: skip
    send(
        c,
        1,
        datetime(D0.year, D0.month, D0.day, 9, tzinfo=UTC),
        **BIG,
        **{"tenant.id": "globex", "feature.name": "search"},
    )
    send(
        c,
        2,
        datetime(D0.year, D0.month, D0.day, 9, tzinfo=UTC),
        **BIG,
        **{"tenant.id": "cus_C", "feature.name": "chat"},
    )
    send(
        c,
        1,
        datetime(D0.year, D0.month, D0.day, 9, tzinfo=UTC),
        **BIG,
        **{"tenant.id": "initech", "feature.name": "chat"},
    )
    send(c, 1, datetime(D0.year, D0.month, D0.day, 9, tzinfo=UTC) + timedelta(days=20), **BIG, **{"tenant.id": "acme"})
    wait_for_rollups(c, 8)

    pulled = httpx.post(c.http_url + "/v1/revenue/pull", timeout=60).json()  # now, whatever retry-after said
    assert pulled["error"] == "" and pulled["lines"] == 9, pulled  # 7 invoice lines counted or void, 2 credits
    assert any("il_6" in p and "no service period" in p for p in pulled["problems"])
    assert any("il_7" in p and "unknown currency" in p for p in pulled["problems"])
    assert c.collector.revenue.failing == ""
    paths = [p for p, _ in stripe.requests]
    assert "/v1/invoices/in_2/lines" in paths and paths.count("/v1/invoices") >= 4  # pages of 2
    assert httpx.post(c.http_url + "/v1/revenue/pull", timeout=60).json()["lines"] == 9  # re-pulled: replaced

    # Revenue per tenant and day, as stored: exactly the fake's amounts spread over the days
    stored = c.query(
        "SELECT tenant_id, currency, day, sum(amount) FROM {db}.revenue_daily WHERE active = 1 AND "
        "(source, line_id, version) IN (SELECT source, line_id, max(version) FROM {db}.revenue_daily "
        "GROUP BY source, line_id) GROUP BY tenant_id, currency, day"
    )
    got = {(t, d): {} for t, _, d, _ in stored}
    for tenant, currency, day, amount in stored:
        got[(tenant, day)][currency] = Decimal(amount)
    assert got == expected_daily()

    # Margin per tenant in USD: JPY revenue without a rate is listed, never subtracted
    cost = {"acme": CALL * 3, "globex": CALL, "cus_C": CALL * 2, "initech": CALL}
    revenue = {"acme": Decimal(25), "globex": Decimal(125), "": Decimal(3)}
    report = margin(c)
    rows = {r["tenant"]: r for r in report["rows"]}
    assert set(rows) == {"acme", "globex", "cus_C", "initech", ""}
    for tenant in ("acme", "globex"):
        r = rows[tenant]
        assert Decimal(r["revenue_usd"]) == revenue[tenant] and Decimal(r["ai_cost_usd"]) == cost[tenant]
        assert Decimal(r["margin_usd"]) == revenue[tenant] - cost[tenant]
        assert Decimal(r["cost_to_revenue"]) == (cost[tenant] / revenue[tenant]).quantize(Decimal("0.000001"))
    assert (rows["acme"]["status"], rows["globex"]["status"]) == ("unprofitable", "ok")
    assert (rows["acme"]["plan"], rows["globex"]["plan"], rows["cus_C"]["plan"]) == ("Pro", "Team", "Pro")
    assert rows["cus_C"]["status"] == "no rate" and rows["initech"]["status"] == "no revenue"
    assert report["unconverted"] == [{"tenant": "cus_C", "currency": "JPY", "revenue": "3000"}]
    assert [r["tenant"] for r in report["unprofitable"]] == ["acme"]
    assert [r["tenant"] for r in report["no_revenue"]] == ["initech"]
    assert Decimal(report["no_tenant_revenue"]) == 3 and report["basis"] == "USD"

    # With a rate for JPY: cus_C's ¥3000 is $20.10 against $20 and change of calls — the warning band
    rated = margin(c, rates=f"JPY={JPY_RATE}")
    rows = {r["tenant"]: r for r in rated["rows"]}
    jpy_usd = Decimal(3000) * JPY_RATE
    assert Decimal(rows["cus_C"]["revenue_usd"]) == jpy_usd
    assert Decimal(rows["cus_C"]["cost_to_revenue"]) == (cost["cus_C"] / jpy_usd).quantize(Decimal("0.000001"))
    assert rows["cus_C"]["status"] == ("unprofitable" if cost["cus_C"] > jpy_usd else "warning")
    assert rated["unconverted"] == [] and rated["rates"] == {"JPY": str(JPY_RATE)}

    # Plans: tenants, revenue, cost per tenant (median, nearest-rank p90, max)
    plans = {p["plan"]: p for p in rated["plans"]}
    for plan, members in {"Pro": ["acme", "cus_C"], "Team": ["globex"], "(none)": ["initech"]}.items():
        costs = sorted(cost[t] for t in members)
        p = plans[plan]
        assert p["tenants"] == len(members)
        assert Decimal(p["cost_per_tenant_max"]) == costs[-1]
        assert Decimal(p["cost_per_tenant_p90"]) == costs[-(-9 * len(costs) // 10) - 1]
        middle = len(costs) // 2
        median = costs[middle] if len(costs) % 2 else (costs[middle - 1] + costs[middle]) / 2
        assert Decimal(p["cost_per_tenant_median"]) == median
    assert Decimal(plans["Pro"]["revenue_usd"]) == revenue["acme"] + jpy_usd

    # By month: all revenue and all cost of each month of the window
    by_month = margin(c, by="month", rates=f"JPY={JPY_RATE}")["rows"]
    months: dict[str, list[Decimal]] = {}
    for (_, day), amounts in expected_daily().items():
        if START <= day < END:
            months.setdefault(day.strftime("%Y-%m"), [Decimal(0), Decimal(0)])[0] += (
                amounts.get("USD", Decimal(0)) + amounts.get("JPY", Decimal(0)) * JPY_RATE
            )
    months[(D0 - timedelta(days=3)).strftime("%Y-%m")][1] += cost["acme"]
    months[D0.strftime("%Y-%m")][1] += cost["globex"] + cost["cus_C"] + cost["initech"]
    assert [r["month"] for r in by_month] == sorted(months)
    for r in by_month:
        assert Decimal(r["revenue_usd"]) == months[r["month"]][0]
        assert Decimal(r["ai_cost_usd"]) == months[r["month"]][1]

    # AI cost per feature as a share of the tenant's revenue
    features = {(f["tenant"], f["feature"]): f for f in rated["features"]}
    assert Decimal(features[("acme", "chat")]["share_of_revenue"]) == (cost["acme"] / 25).quantize(Decimal("1e-6"))
    assert features[("initech", "chat")]["share_of_revenue"] is None

    # The dashboard: tenants ranked by margin, the unprofitable called out, the plans; and a
    # tenant's page with its revenue beside its cost per day
    page = httpx.get(c.http_url + "/margin", params={"from": START.isoformat(), "to": END.isoformat()}).text
    assert 'data-testid="unprofitable">Unprofitable: acme (loses $' + str(cost["acme"] - 25) in page
    ranked = [r["tenant"] for r in report["rows"]]
    assert [page.index(f">{t}</a>") for t in ranked if t] == sorted(page.index(f">{t}</a>") for t in ranked if t)
    assert 'data-panel="plans"' in page and "3000 JPY" in page
    day = (D0 - timedelta(days=3)).isoformat()
    tenant_page = httpx.get(
        c.http_url + "/", params={"tenant": "acme", "from": START.isoformat(), "to": END.isoformat()}
    )
    assert tenant_page.status_code == 200 and 'id="tenant-margin"' in tenant_page.text
    assert f"<tr><td>{day}</td><td class='num'>2</td><td class='num'>{cost['acme']}</td></tr>" in tenant_page.text

    # The CLI asks the running collector (it holds the embedded storage)
    rates_file = tmp_path / "rates.csv"
    rates_file.write_text(f"currency,usd_per_unit\nJPY,{JPY_RATE}\n")
    out = CliRunner().invoke(
        cli,
        [
            "margin",
            "--url",
            c.http_url,
            "--from",
            START.isoformat(),
            "--to",
            END.isoformat(),
            "--format",
            "json",
            "--rates",
            str(rates_file),
        ],  # fmt: skip
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["rows"] == rated["rows"]
    table = CliRunner().invoke(
        cli, ["margin", "--url", c.http_url, "--from", START.isoformat(), "--to", END.isoformat()]
    )
    assert table.exit_code == 0 and "unprofitable" in table.output and "acme" in table.output
    assert "3000 JPY" in table.output  # without rates: listed, not converted


def test_imported_revenue_is_idempotent_and_bad_lines_are_reported(start_collector, tmp_path):
    c = start_collector()
    send(c, 2, datetime(D0.year, D0.month, D0.day, 9, tzinfo=UTC), **BIG, **{"tenant.id": "acme"})
    wait_for_rollups(c, 2)
    first = tmp_path / "revenue.csv"
    first.write_text(
        "id,tenant,amount,currency,period_start,period_end,plan\n"
        f"r1,acme,40.00,USD,{START},{END},pro\n"
        f"r2,acme,-,USD,{START},{END},pro\n"
        f"r3,acme,2,EUR,{D0},,pro\n"
    )
    out = CliRunner().invoke(cli, ["revenue", "import", str(first), "--url", c.http_url])
    assert out.exit_code == 1 and "imported 2 revenue lines" in out.output
    assert "line 3:" in out.output and "not a number" in out.output
    # The same id again replaces the line; nothing is added
    again = tmp_path / "again.jsonl"
    again.write_text(
        json.dumps(
            {
                "id": "r1",
                "tenant": "acme",
                "amount": "60",
                "currency": "USD",
                "period_start": str(START),
                "period_end": str(END),
                "plan": "pro",
            }
        )
        + "\n"  # fmt: skip
    )
    assert CliRunner().invoke(cli, ["revenue", "import", str(again), "--url", c.http_url]).exit_code == 0
    (row,) = [r for r in margin(c)["rows"] if r["tenant"] == "acme"]
    assert Decimal(row["revenue_usd"]) == 60 and Decimal(row["ai_cost_usd"]) == CALL * 2
    assert margin(c)["unconverted"] == [{"tenant": "acme", "currency": "EUR", "revenue": "2"}]
    # PUT /v1/revenue: each bad line said, the good ones stored; all bad is a 400
    r = httpx.put(c.http_url + "/v1/revenue", json=[{"id": "r9", "tenant": "acme", "amount": "1e99", "currency": "USD",
                                                     "period_start": str(D0)}])  # fmt: skip
    assert r.status_code == 400 and "15 digits" in r.json()["problems"][0]
    r = httpx.put(c.http_url + "/v1/revenue", content=b"{not json")
    assert r.status_code == 400
    # Lines of ten-year periods: a row a day each; a request may not make millions of them
    decade = {"tenant": "acme", "amount": "1", "currency": "USD", "period_start": "2020-01-01",
              "period_end": "2029-12-31"}  # fmt: skip
    r = httpx.put(c.http_url + "/v1/revenue", json=[{**decade, "id": f"d{n}"} for n in range(300)], timeout=60)
    assert r.status_code == 413 and "line-days" in r.json()["error"]
    assert Decimal([x for x in margin(c)["rows"] if x["tenant"] == "acme"][0]["revenue_usd"]) == 60  # nothing stored


def test_a_ratio_budget_alerts_on_ai_cost_as_a_share_of_revenue(start_collector, webhook):  # noqa: F811
    month = datetime.now(UTC).date().replace(day=1)
    # The calls' time: inside this month even in its first minutes
    now = max(datetime.now(UTC), datetime(month.year, month.month, month.day, tzinfo=UTC) + timedelta(minutes=3))
    after = (month + timedelta(days=32)).replace(day=1)
    c = start_collector(budget_webhook_url=webhook, budget_interval_s=3600)
    line = {"id": "acme-" + month.isoformat(), "tenant": "acme", "amount": "100", "currency": "USD",
            "period_start": month.isoformat(), "period_end": after.isoformat(), "plan": "pro"}  # fmt: skip
    assert httpx.put(c.http_url + "/v1/revenue", json=[line]).json() == {"imported": 1, "problems": []}
    out = CliRunner().invoke(
        cli,
        [
            "budget",
            "set",
            "acme-ratio",
            "--url",
            c.http_url,
            "--tenant",
            "acme",
            "--period",
            "monthly",
            "--max-ratio",
            "0.3",
        ],  # fmt: skip
    )
    assert out.exit_code == 0, out.output
    saved = json.loads(out.output)
    assert saved["max_ratio"] == "0.3" and saved["hard"] is False and "amount_usd" not in saved
    for tenant in ("acme", "globex"):
        body = {"tenant": tenant, "period": "monthly", "max_ratio": "0.3"}
        assert httpx.put(c.http_url + f"/v1/budgets/{tenant}-ratio", json=body).status_code == 200
    # $20 of calls against $100 of revenue: 67 % of the 0.3 cap
    send(c, 2, now - timedelta(minutes=2), **BIG, **{"tenant.id": "acme"})
    send(c, 1, now - timedelta(minutes=2), **BIG, **{"tenant.id": "globex"})  # no revenue at all
    wait_for_rollups(c, 3)
    c.call(c.collector.evaluate_budgets_now())
    fired = {a["budget_id"]: a for a in Hook.received}
    assert (fired["acme-ratio"]["threshold"], fired["acme-ratio"]["type"]) == (50, "otel_costs.budget.ratio")
    assert Decimal(fired["acme-ratio"]["spend_usd"]) == CALL * 2
    assert Decimal(fired["acme-ratio"]["revenue_usd"]) == 100 and Decimal(fired["acme-ratio"]["amount_usd"]) == 30
    assert fired["globex-ratio"]["threshold"] == 100  # any cost against no revenue exceeds it
    status = httpx.get(c.http_url + "/v1/budgets/status", params={"tenant": "acme"}).json()["budgets"]
    (acme,) = [s for s in status if s["id"] == "acme-ratio"]
    assert acme["ratio"] == format((CALL * 2 / 100).quantize(Decimal("0.000001")), "f") and not acme["exceeded"]
    send(c, 1, now - timedelta(minutes=1), **BIG, **{"tenant.id": "acme"})  # $30 and change: past the cap
    wait_for_rollups(c, 4)
    c.call(c.collector.evaluate_budgets_now())
    assert [a["threshold"] for a in Hook.received if a["budget_id"] == "acme-ratio"] == [50, 100]
    wrong = {"period": "monthly", "max_ratio": "0.3", "amount_usd": "5", "user": "u1", "hard": True}
    bad = httpx.put(c.http_url + "/v1/budgets/x", json={**wrong, "timezone": "Europe/Paris"})
    problems = bad.json()["error"]
    for words in ("not both", "tenant: a ratio budget", "user: a ratio budget", "only alerts", "periods are UTC"):
        assert words in problems, problems


@pytest.mark.parametrize(
    "params, words",
    [
        ({"by": "user"}, "by: 'user' is not one of"),
        ({"max_ratio": "-1"}, "max_ratio: must be above 0"),
        ({"max_ratio": "0.5", "warn_ratio": "0.9"}, "warn_ratio: must not be above max_ratio"),
        ({"rates": "JPY=abc"}, "rates JPY"),
        ({"since": "forever"}, "since:"),
    ],
)
def test_bad_margin_parameters_are_named(collector, params, words):
    r = httpx.get(collector.http_url + "/v1/margin", params=params)
    assert r.status_code == 400 and words in r.json()["error"], r.text
