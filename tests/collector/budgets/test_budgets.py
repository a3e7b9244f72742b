"""Budgets: calendar periods, alerts fired exactly once per threshold (also across a
restart) to a real local webhook, and the SDK refusing a call over a hard budget."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import httpx
import pytest

from otel_costs import BudgetExceeded, BudgetGuard, attribute_to
from otel_costs_collector.budgets.model import Budget, BudgetError, period_bounds

from ..spans import SEMCONV, sdk_request

NY = ZoneInfo("America/New_York")
COST = Decimal("0.000285")  # one SEMCONV span
PROTO = {"Content-Type": "application/x-protobuf"}


@pytest.mark.parametrize(
    "period, tz, now, start, end",
    [
        ("daily", "UTC", "2026-03-08T12:00:00+00:00", "2026-03-08T00:00:00+00:00", "2026-03-09T00:00:00+00:00"),
        # New York's spring-forward day has 23 hours
        (
            "daily",
            "America/New_York",
            "2026-03-08T12:00:00+00:00",
            "2026-03-08T05:00:00+00:00",
            "2026-03-09T04:00:00+00:00",
        ),
        ("weekly", "UTC", "2026-11-22T23:59:59+00:00", "2026-11-16T00:00:00+00:00", "2026-11-23T00:00:00+00:00"),
        (
            "monthly",
            "Asia/Kolkata",
            "2026-12-31T19:00:00+00:00",
            "2026-12-31T18:30:00+00:00",
            "2027-01-31T18:30:00+00:00",
        ),
    ],
)
def test_periods_follow_the_calendar_of_their_time_zone(period, tz, now, start, end):
    assert period_bounds(period, tz, datetime.fromisoformat(now)) == (
        datetime.fromisoformat(start),
        datetime.fromisoformat(end),
    )


def test_invalid_budgets_name_every_problem():
    with pytest.raises(BudgetError) as exc:
        Budget.parse(
            {
                "id": "bad id",
                "amount_usd": 1.5,
                "period": "hourly",
                "timezone": "Mars/Base",
                "thresholds": [0, "x"],
                "color": "red",
            }
        )
    for part in ("id:", "amount_usd", "period", "scope", "timezone", "thresholds", "unknown field 'color'"):
        assert part in str(exc.value)


class Hook(BaseHTTPRequestHandler):
    received: list[dict] = []
    fail = False

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if Hook.fail:
            self.send_response(500)
        else:
            Hook.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Hook.received, Hook.fail = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def send(c, n: int, at: datetime, **attrs) -> None:
    request = sdk_request([dict(SEMCONV, _start=at, **attrs) for _ in range(n)])
    r = httpx.post(c.http_url + "/v1/traces", content=request.SerializeToString(), headers=PROTO, timeout=30)
    assert r.status_code == 200


def thresholds(received):
    return [(a["budget_id"], a["threshold"]) for a in received]


def test_alerts_fire_once_per_threshold_and_period_across_restarts(start_collector, webhook):
    # A day three days ago in New York; the clock sits at its 23:30.
    day = (datetime.now(NY) - timedelta(days=3)).date()
    late = datetime(day.year, day.month, day.day, 23, 30, tzinfo=NY)
    clock = Clock(late.astimezone(timezone.utc))
    c = start_collector(clock=clock, budget_webhook_url=webhook, budget_interval_s=3600)
    budget = {"tenant": "acme", "amount_usd": str(COST * 10), "period": "daily", "timezone": "America/New_York"}
    assert httpx.put(c.http_url + "/v1/budgets/acme-daily", json=budget).status_code == 200

    send(c, 6, late - timedelta(minutes=20), **{"tenant.id": "acme"})  # 60 %
    send(c, 9, late - timedelta(minutes=20), **{"tenant.id": "globex"})  # another tenant: not counted
    c.call(c.collector.evaluate_budgets_now())
    assert thresholds(Hook.received) == [("acme-daily", 50)]
    assert Decimal(Hook.received[0]["spend_usd"]) == COST * 6

    send(c, 4, late - timedelta(minutes=10), **{"tenant.id": "acme"})  # 100 %: 75, 90 and 100 at once
    c.call(c.collector.evaluate_budgets_now())
    c.call(c.collector.evaluate_budgets_now())  # nothing new: nothing fired again
    assert thresholds(Hook.received) == [("acme-daily", 50), ("acme-daily", 100)]  # one alert: the highest
    status = httpx.get(c.http_url + "/v1/budgets/status", params={"tenant": "acme", "user": "u1"}).json()
    (s,) = status["budgets"]
    assert (s["exceeded"], Decimal(s["spend_usd"]), s["percent"]) == (True, COST * 10, "100.00")
    assert s["resets_at"] == (datetime(day.year, day.month, day.day, tzinfo=NY) + timedelta(days=1)).astimezone(
        timezone.utc
    ).isoformat().replace("+00:00", "Z")

    c.stop()  # a restart remembers what it fired
    again = start_collector(clock=clock, budget_webhook_url=webhook, budget_interval_s=3600)
    again.call(again.collector.evaluate_budgets_now())
    assert len(Hook.received) == 2

    clock.now = (late + timedelta(minutes=40)).astimezone(timezone.utc)  # 00:10 the next day in New York
    again.call(again.collector.evaluate_budgets_now())
    (s,) = httpx.get(again.http_url + "/v1/budgets/status", params={"tenant": "acme"}).json()["budgets"]
    assert (s["exceeded"], Decimal(s["spend_usd"])) == (False, 0)  # a new period
    send(again, 5, late + timedelta(minutes=35), **{"tenant.id": "acme"})
    again.call(again.collector.evaluate_budgets_now())
    assert thresholds(Hook.received)[2:] == [("acme-daily", 50)]  # fires again in the new period


def test_undelivered_alerts_are_retried_until_the_webhook_takes_them(start_collector, webhook):
    now = datetime.now(timezone.utc)
    c = start_collector(budget_webhook_url=webhook, budget_interval_s=3600, budget_thresholds=(100,))
    httpx.put(c.http_url + "/v1/budgets/u1", json={"user": "u1", "amount_usd": str(COST), "period": "monthly"})
    send(c, 1, now - timedelta(seconds=5), **{"user.id": "u1"})
    Hook.fail = True
    c.call(c.collector.evaluate_budgets_now())
    assert Hook.received == []
    c.stop()  # not delivered yet: the restart sends it, once
    Hook.fail = False
    again = start_collector(budget_webhook_url=webhook, budget_interval_s=3600, budget_thresholds=(100,))
    again.call(again.collector.evaluate_budgets_now())
    again.call(again.collector.evaluate_budgets_now())
    assert thresholds(Hook.received) == [("u1", 100)]


def test_half_hour_time_zones_read_raw_spans(start_collector):
    now = datetime.now(timezone.utc)
    c = start_collector(budget_interval_s=3600)
    body = {"feature": "search", "amount_usd": "1", "period": "daily", "timezone": "Asia/Kolkata", "hard": False}
    assert httpx.put(c.http_url + "/v1/budgets/search", json=body).status_code == 200
    start, _ = period_bounds("daily", "Asia/Kolkata", now)
    send(c, 2, max(start + timedelta(minutes=1), now - timedelta(minutes=1)), **{"feature.name": "search"})
    send(c, 3, start - timedelta(minutes=1), **{"feature.name": "search"})  # the previous day there
    c.call(c.collector.evaluate_budgets_now())
    (s,) = httpx.get(c.http_url + "/v1/budgets/status", params={"feature": "search"}).json()["budgets"]
    assert Decimal(s["spend_usd"]) == COST * 2 and s["hard"] is False


def test_sdk_refuses_a_call_over_a_hard_budget_before_making_it(start_collector):
    now = datetime.now(timezone.utc)
    c = start_collector(budget_interval_s=3600)
    httpx.put(
        c.http_url + "/v1/budgets/acme-chat",
        json={"tenant": "acme", "feature": "chat", "amount_usd": str(COST * 2), "period": "daily"},
    )
    httpx.put(
        c.http_url + "/v1/budgets/acme-soft",
        json={"tenant": "acme", "amount_usd": str(COST), "period": "daily", "hard": False},
    )
    send(c, 2, now - timedelta(seconds=30), **{"tenant.id": "acme", "feature.name": "chat"})
    c.call(c.collector.evaluate_budgets_now())
    ticks = [0.0]
    guard = BudgetGuard(c.http_url, clock=lambda: ticks[0])
    calls = []

    @guard
    def llm_call():
        calls.append(1)

    with attribute_to(tenant_id="acme", feature="search"):
        llm_call()  # only the soft budget applies, and it only alerts
    with attribute_to(tenant_id="acme", feature="chat"):
        with pytest.raises(BudgetExceeded) as exc:
            llm_call()
    assert calls == [1]
    e = exc.value
    assert (e.budget_id, e.spend_usd, e.limit_usd, e.scope) == (
        "acme-chat",
        COST * 2,
        COST * 2,
        {"tenant": "acme", "feature": "chat"},
    )
    assert e.resets_at == period_bounds("daily", "UTC", now)[1] and "acme-chat" in str(e)

    httpx.delete(c.http_url + "/v1/budgets/acme-chat")
    c.call(c.collector.evaluate_budgets_now())
    with attribute_to(tenant_id="acme", feature="chat"):
        with pytest.raises(BudgetExceeded):
            llm_call()  # the cached answer is reused for cache_s: no request per call
        ticks[0] += 10
        llm_call()
    assert calls == [1, 1]


@pytest.mark.parametrize("mode, raises", [("allow", False), ("deny", True)])
def test_unreachable_collector_allows_or_denies_as_configured(mode, raises, caplog):
    guard = BudgetGuard("http://127.0.0.1:9", on_unreachable=mode, timeout_s=0.5)
    with attribute_to(tenant_id="acme"):
        if raises:
            with pytest.raises(BudgetExceeded, match="unavailable"):
                guard.check()
        else:
            guard.check()
    assert "budget status unavailable" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        '{"tenant": "acme", "amount_usd": "5", "period": "daily", "thresholds": 5}',
        "[" * 50_000,
        '{"a": ' + "[" * 5_000 + "]" * 5_000 + "}",
    ],
    ids=["thresholds-a-number", "deep-array", "deep-object"],
)
def test_budget_api_answers_bad_bodies_with_400(collector, body):
    """These were 500s with a traceback."""
    r = httpx.put(collector.http_url + "/v1/budgets/x", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]


def test_budget_api_validates_and_needs_the_scope(collector):
    r = httpx.put(collector.http_url + "/v1/budgets/x", json={"amount_usd": "-1", "period": "daily"})
    assert r.status_code == 400 and "amount_usd" in r.json()["error"] and "scope" in r.json()["error"]
    assert httpx.delete(collector.http_url + "/v1/budgets/none").status_code == 404
    assert httpx.get(collector.http_url + "/v1/budgets").json() == []


def test_with_auth_budgets_are_managed_by_admins_and_read_per_tenant(start_collector, tmp_path):
    tokens = tmp_path / "tokens.toml"
    tenant, admin = "acme-budget-token-0123456789", "admin-budget-token-0123456789"
    tokens.write_text(f'[[token]]\ntoken = "{tenant}"\ntenant = "acme"\n\n[[token]]\ntoken = "{admin}"\nadmin = true\n')
    c = start_collector(auth_tokens_file=str(tokens), budget_interval_s=3600)
    as_tenant, as_admin = {"Authorization": f"Bearer {tenant}"}, {"Authorization": f"Bearer {admin}"}
    body = {"tenant": "acme", "amount_usd": "5", "period": "weekly"}
    assert httpx.put(c.http_url + "/v1/budgets/a", json=body).status_code == 401
    assert httpx.put(c.http_url + "/v1/budgets/a", json=body, headers=as_tenant).status_code == 403
    assert httpx.put(c.http_url + "/v1/budgets/a", json=body, headers=as_admin).status_code == 200
    assert (
        httpx.put(c.http_url + "/v1/budgets/g", json={**body, "tenant": "globex"}, headers=as_admin).status_code == 200
    )
    # a budget over all tenants (a feature's): its id, amount and all tenants' spend are the operator's
    everyone = {"feature": "chat", "amount_usd": "900", "period": "monthly"}
    assert httpx.put(c.http_url + "/v1/budgets/all", json=everyone, headers=as_admin).status_code == 200
    c.call(c.collector.evaluate_budgets_now())
    assert [b["id"] for b in httpx.get(c.http_url + "/v1/budgets", headers=as_tenant).json()] == ["a"]
    assert (
        httpx.get(c.http_url + "/v1/budgets/status", params={"tenant": "globex"}, headers=as_tenant).status_code == 403
    )
    status = httpx.get(c.http_url + "/v1/budgets/status", headers=as_tenant).json()
    assert [b["id"] for b in status["budgets"]] == ["a"]
    admin_view = httpx.get(
        c.http_url + "/v1/budgets/status", params={"tenant": "acme", "feature": "chat"}, headers=as_admin
    ).json()
    assert sorted(b["id"] for b in admin_view["budgets"]) == ["a", "all"]
    page = httpx.get(c.http_url + "/", params={"feature": "chat"}, headers=as_tenant).text
    assert ">a <small>" in page and ">all <small>" not in page


def test_a_budget_set_below_what_was_spent_fires_one_alert_and_lists_its_spend(start_collector, webhook):
    now = datetime.now(timezone.utc)
    c = start_collector(budget_webhook_url=webhook, budget_interval_s=3600)
    send(c, 3, now - timedelta(seconds=30), **{"tenant.id": "initech"})
    body = {"tenant": "initech", "amount_usd": "0.0004", "period": "monthly"}
    saved = httpx.put(c.http_url + "/v1/budgets/initech", json=body).json()
    assert saved["amount_usd"] == "0.0004"  # as entered
    c.call(c.collector.evaluate_budgets_now())
    c.call(c.collector.evaluate_budgets_now())
    assert thresholds(Hook.received) == [("initech", 100)]
    (listed,) = httpx.get(c.http_url + "/v1/budgets").json()
    assert listed["amount_usd"] == "0.0004" and Decimal(listed["spend_usd"]) == COST * 3
    assert listed["percent"] == str((COST * 3 * 100 / Decimal("0.0004")).quantize(Decimal("0.01")))
