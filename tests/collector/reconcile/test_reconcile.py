"""Tracked vs billed through the real collector: spans sent over OTLP, the providers' cost
reports pulled from a loopback fake of both APIs (several pages, a day that changes between
pulls, errors), and the report, the alert and the gauge checked to the last digit against
genai-prices' price of the spans and the fake's bill."""

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
from tests.fake_billing import KEYS, FakeBilling

from ..budgets.test_budgets import Hook, send, webhook  # noqa: F401 (fixture)
from ..spans import SEMCONV

TODAY = datetime.now(timezone.utc).date()
# Complete days (ended more than a day ago) and one the providers may still change.
D1, D2, D3 = TODAY - timedelta(days=3), TODAY - timedelta(days=2), TODAY - timedelta(days=1)
CALL = calc_price(  # one SEMCONV span: OpenAI's input includes the cached tokens
    Usage(input_tokens=1200, cache_read_tokens=1000, output_tokens=300), model_ref="gpt-4o-mini", provider_id="openai"
).total_price
SONNET = {
    **SEMCONV,
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 2000,
    "gen_ai.usage.output_tokens": 100,
    "gen_ai.usage.cache_read.input_tokens": 0,
}
ANTHROPIC_CALL = calc_price(
    Usage(input_tokens=2000, output_tokens=100), model_ref="claude-sonnet-4-5", provider_id="anthropic"
).total_price


@pytest.fixture(autouse=True)
def _days():
    """The days are those of the moment the test starts (a run crossing midnight UTC moves them),
    and a test that would cross midnight waits for it first: which days are complete depends
    on the date."""
    global TODAY, D1, D2, D3
    now = datetime.now(timezone.utc)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
    if midnight - now < timedelta(seconds=90):
        time.sleep((midnight - now).total_seconds() + 1)
    TODAY = datetime.now(timezone.utc).date()
    D1, D2, D3 = TODAY - timedelta(days=3), TODAY - timedelta(days=2), TODAY - timedelta(days=1)


@pytest.fixture()
def fake():
    fake = FakeBilling(page_days=2)
    yield fake
    fake.close()


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)


def reconciling(start_collector, fake, **overrides):
    return start_collector(
        openai_admin_key=KEYS["openai"],
        anthropic_admin_key=KEYS["anthropic"],
        openai_api_base=fake.bases["openai"],
        anthropic_api_base=fake.bases["anthropic"],
        reconcile_interval_s=3600,
        budget_interval_s=3600,
        **overrides,
    )


def report(c, **params):
    r = httpx.get(c.http_url + "/v1/reconciliation", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for_rollups(c, calls: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if c.query("SELECT sum(calls) FROM {db}.genai_costs_daily")[0][0] == calls:
            return
        time.sleep(0.1)
    raise AssertionError("the rollups never held every call")


def test_billed_and_tracked_per_day_and_provider_exactly(start_collector, fake, webhook):  # noqa: F811
    # The calls of the past days are stored first, as they would have been on those days.
    calls = start_collector()
    send(calls, 4, noon(D1), **{"tenant.id": "acme"})
    send(calls, 2, noon(D1))  # no tenant: tracked, not attributed
    send(calls, 5, noon(D2), **{"tenant.id": "acme"})
    send(calls, 3, noon(D3), **{"tenant.id": "acme"})
    send(calls, 2, noon(D2), **{**SONNET, "tenant.id": "acme"})
    wait_for_rollups(calls, 16)
    calls.stop()
    # D1 billed exactly what was tracked, D2 a cent more (OpenAI) and exactly (Anthropic)
    fake.billed["openai"][D1] = [
        ("gpt-4o-mini-2024-07-18, input", None, str(CALL * 6 - Decimal("0.0001"))),
        ("gpt-4o-mini-2024-07-18, output", None, "0.0001"),
    ]
    fake.billed["openai"][D2] = [("gpt-4o-mini-2024-07-18, input", None, str(CALL * 5 + Decimal("0.01")))]
    fake.billed["openai"][D3] = [("gpt-4o-mini-2024-07-18, input", None, str(CALL * 3))]
    fake.billed["anthropic"][D2] = [
        ("Claude Sonnet 4.5 Usage - Input Tokens", "claude-sonnet-4-5-20250929", str(ANTHROPIC_CALL * 2)),
    ]
    c = reconciling(start_collector, fake, budget_webhook_url=webhook)  # pulls as it starts
    c.call(c.collector.reconcile_now())
    c.call(c.collector.reconcile_now())  # pulled again: replaced, never added

    rows = report(c, **{"from": D1.isoformat(), "to": TODAY.isoformat()})
    expected = [
        (D1, "openai", CALL * 6, CALL * 6, CALL * 4, True),
        (D2, "anthropic", ANTHROPIC_CALL * 2, ANTHROPIC_CALL * 2, ANTHROPIC_CALL * 2, True),
        (D2, "openai", CALL * 5 + Decimal("0.01"), CALL * 5, CALL * 5, True),
        (D3, "openai", CALL * 3, CALL * 3, CALL * 3, False),
    ]
    assert len(rows) == len(expected), rows
    for row, (day, provider, billed, tracked, attributed, complete) in zip(rows, expected):
        assert (row["day"], row["provider"], row["complete"]) == (day.isoformat(), provider, complete)
        assert Decimal(row["billed_usd"]) == billed and Decimal(row["tracked_usd"]) == tracked
        assert Decimal(row["untracked_usd"]) == billed - tracked
        assert Decimal(row["attributed_usd"]) == attributed
        assert Decimal(row["capture_rate"]) == (tracked / billed).quantize(Decimal("0.000001"))

    # One alert, for the complete day out of the band; once, also across a restart
    assert [(a["provider"], a["day"]) for a in Hook.received] == [("openai", D2.isoformat())]
    assert Decimal(Hook.received[0]["untracked_usd"]) == Decimal("0.01")
    metrics = httpx.get(c.http_url + "/metrics").text
    rate = (CALL * 5 / (CALL * 5 + Decimal("0.01"))).quantize(Decimal("0.000001"))
    assert f'otel_costs_capture_rate{{provider="openai"}} {float(rate)}' in metrics
    c.stop()
    again = reconciling(start_collector, fake, budget_webhook_url=webhook)
    again.call(again.collector.reconcile_now())
    assert len(Hook.received) == 1

    # The provider changes a day that was not complete: the next pull replaces it
    fake.billed["openai"][D3] = [("gpt-4o-mini-2024-07-18, input", None, str(CALL * 4))]
    again.call(again.collector.reconcile_now())
    (d3,) = report(again, **{"from": D3.isoformat(), "to": TODAY.isoformat(), "by": "day,provider"})
    assert Decimal(d3["billed_usd"]) == CALL * 4 and Decimal(d3["tracked_usd"]) == CALL * 3

    # By model: a line's model and the calls' model meet as genai-prices' id
    by_model = report(again, **{"from": D2.isoformat(), "to": D3.isoformat(), "by": "provider,model"})
    assert [(r["provider"], r["model"]) for r in by_model] == [
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-4o-mini"),
    ]

    # The CLI prints the same rows
    result = CliRunner().invoke(
        cli,
        ["reconcile", "--url", again.http_url, "--from", D1.isoformat(), "--to", TODAY.isoformat(), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == report(again, **{"from": D1.isoformat(), "to": TODAY.isoformat()})


def test_a_provider_failing_is_logged_and_retried_never_blocking_ingestion(start_collector, fake, caplog):
    fake.billed["openai"][D1] = [("gpt-4o-mini, input", None, str(CALL))]
    fake.fail["openai"] += [401, 401]
    fake.fail["anthropic"] += [(429, 2)]
    c = reconciling(start_collector, fake)  # the first pull, as it starts: both fail
    deadline = time.monotonic() + 20
    while len(fake.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    c.call(c.collector.reconcile_now())  # OpenAI fails again; Anthropic waits for its retry-after
    send(c, 1, noon(D1))  # ingestion goes on
    wait_for_rollups(c, 1)
    errors = [r.getMessage() for r in caplog.records if "cost report" in r.getMessage()]
    assert any("openai" in e and "401" in e for e in errors), errors
    assert sum("401" in e for e in errors) == 1  # logged once while it lasts
    assert any("anthropic" in e and "429" in e for e in errors), errors
    assert KEYS["openai"] not in caplog.text and KEYS["anthropic"] not in caplog.text
    c.call(c.collector.reconcile_now())  # the key works again: pulled
    assert fake.fail == {"openai": [], "anthropic": []}
    (row,) = report(c, **{"from": D1.isoformat(), "to": D2.isoformat(), "by": "provider"})
    assert row["provider"] == "openai" and Decimal(row["billed_usd"]) == CALL == Decimal(row["tracked_usd"])
    assert row["capture_rate"] == "1.000000"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"by": "tenant"}, "by:"),
        ({"since": "3y"}, "since:"),
        ({"from": "2026-13-01"}, "from:"),
        ({"since": "7d", "from": "2026-01-01"}, "either since or from/to"),
        ({"color": "red"}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_named(start_collector, fake, params, words):
    c = reconciling(start_collector, fake)
    r = httpx.get(c.http_url + "/v1/reconciliation", params=params)
    assert r.status_code == 400 and words in r.json()["error"]


def test_a_pull_on_demand_replaces_even_a_complete_day_and_the_dashboard_calls_out_the_gap(start_collector, fake):
    calls = start_collector()
    send(calls, 2, noon(D2), **{"tenant.id": "acme"})
    wait_for_rollups(calls, 2)
    calls.stop()
    fake.billed["openai"][D2] = [("gpt-4o-mini-2024-07-18, input", None, str(CALL * 2))]
    c = reconciling(start_collector, fake)
    c.call(c.collector.reconcile_now())
    fake.billed["openai"][D2] = [("gpt-4o-mini-2024-07-18, input", None, str(CALL * 2 + Decimal("0.05")))]
    c.call(c.collector.reconcile_now())  # a complete day is not pulled again by the cycle
    (row,) = report(c, **{"from": D2.isoformat(), "to": D3.isoformat(), "by": "provider"})
    assert Decimal(row["billed_usd"]) == CALL * 2

    result = CliRunner().invoke(cli, ["reconcile", "pull", "--url", c.http_url, "--since", "7d"])
    assert result.exit_code == 0, result.output
    assert "openai: 7 days, 1 billed lines" in result.output and "anthropic: 7 days, 0 billed lines" in result.output
    (row,) = report(c, **{"from": D2.isoformat(), "to": D3.isoformat(), "by": "provider"})
    assert Decimal(row["billed_usd"]) == CALL * 2 + Decimal("0.05")
    assert Decimal(row["untracked_usd"]) == Decimal("0.05")

    page = httpx.get(c.http_url + "/", params={"since": "7d"}).text
    assert "Tracked vs billed" in page
    gap = page.split('data-testid="reconcile-gap">', 1)[1].split("</p>", 1)[0]
    assert f"openai on {D2.isoformat()}: $0.05" in gap

    table = CliRunner().invoke(cli, ["reconcile", "--url", c.http_url, "--since", "7d"])
    assert table.exit_code == 0, table.output
    total = table.output.strip().splitlines()[-1].split()
    assert total[0] == "TOTAL" and Decimal(total[1]) == CALL * 2 + Decimal("0.05") and Decimal(total[2]) == CALL * 2


def test_without_an_admin_key_nothing_is_pulled_and_a_pull_says_why(start_collector):
    c = start_collector()
    assert c.collector.reconciler is None
    r = httpx.post(c.http_url + "/v1/reconciliation/pull", json={"since": "7d"})
    assert r.status_code == 409 and "OTEL_COSTS_OPENAI_ADMIN_KEY" in r.json()["error"]
    result = CliRunner().invoke(cli, ["reconcile", "pull", "--url", c.http_url])
    assert result.exit_code == 1 and "OTEL_COSTS_OPENAI_ADMIN_KEY" in result.output
    assert report(c) == []
    assert "Tracked vs billed" not in httpx.get(c.http_url + "/").text


def test_concurrent_pulls_of_the_same_days_never_add_up(start_collector, fake):
    """Two pullers at once (the collector's cycle and `reconcile pull`, or two collectors on
    one server): each writes whole days under its own pull id; readers take the newest."""
    from concurrent.futures import ThreadPoolExecutor

    from otel_costs_collector.reconcile.puller import Reconciler

    fake.billed["openai"][D2] = [
        ("gpt-4o-mini-2024-07-18, input", None, "1.25"),
        ("web search tool calls", None, "0.5"),
    ]
    c = start_collector()
    pullers = [
        Reconciler(lambda: c.collector.client, c.db, {"openai": KEYS["openai"]}, bases=fake.bases) for _ in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: p.pull(D1, TODAY, alert=False), pullers))
    assert all(r[0].days == (TODAY - D1).days and not r[0].error for r in results)
    assert len(c.query("SELECT DISTINCT pull_id FROM {db}.provider_costs")) == 4
    (row,) = report(c, **{"from": D1.isoformat(), "to": TODAY.isoformat(), "by": "provider"})
    assert Decimal(row["billed_usd"]) == Decimal("1.75")


GPT4O = {**SEMCONV, "gen_ai.request.model": "gpt-4o"}
CALL_4O = calc_price(
    Usage(input_tokens=1200, cache_read_tokens=1000, output_tokens=300), model_ref="gpt-4o", provider_id="openai"
).total_price


def test_tracked_models_keep_their_rows_and_projects_sum_to_the_bill(start_collector, fake):
    calls = start_collector()
    for day in (D1, D2):
        send(calls, 2, noon(day), **{"tenant.id": "acme"})  # gpt-4o-mini, through project a's key
        send(calls, 1, noon(day), **{**GPT4O, "tenant.id": "globex"})  # gpt-4o, project b's
    wait_for_rollups(calls, 6)
    calls.stop()
    # D1: pulled, nothing billed. D2: the bill names gpt-4o-mini only, and lines of three projects.
    fake.billed["openai"][D2] = [
        ("gpt-4o-mini-2024-07-18, input", None, str(CALL * 2), "proj_a"),
        ("web search tool calls", None, "0.03", "proj_b"),
        ("gpt-4o-mini-2024-07-18, output", None, "0.01", "proj_c"),  # a project nobody mapped
    ]
    projects = {"proj_a": ("tenant", "acme"), "proj_b": ("tenant", "globex")}
    c = reconciling(start_collector, fake, openai_projects=projects)
    c.call(c.collector.reconcile_now())
    assert all(q["group_by"] == ["line_item", "project_id"] for p, _, q, _ in fake.requests if p == "openai")

    rows = report(c, **{"from": D1.isoformat(), "to": D3.isoformat(), "by": "day,provider,model"})
    got = {
        (r["day"], r["model"]): (Decimal(r["billed_usd"]), Decimal(r["tracked_usd"]), r["capture_rate"]) for r in rows
    }
    assert got == {
        (D1.isoformat(), "gpt-4o"): (Decimal(0), CALL_4O, None),
        (D1.isoformat(), "gpt-4o-mini"): (Decimal(0), CALL * 2, None),
        (D2.isoformat(), "gpt-4o"): (Decimal(0), CALL_4O, None),
        (D2.isoformat(), "gpt-4o-mini"): (
            CALL * 2 + Decimal("0.01"),
            CALL * 2,
            got[(D2.isoformat(), "gpt-4o-mini")][2],
        ),
        (D2.isoformat(), ""): (Decimal("0.03"), Decimal(0), "0.000000"),
    }

    by_project = report(c, **{"from": D2.isoformat(), "to": D3.isoformat(), "by": "provider,project"})
    got = {r["project"]: (Decimal(r["billed_usd"]), Decimal(r["tracked_usd"])) for r in by_project}
    assert got == {
        "proj_a": (CALL * 2, CALL * 2),
        "proj_b": (Decimal("0.03"), CALL_4O),
        "proj_c": (Decimal("0.01"), Decimal(0)),  # unmapped: listed, not dropped
    }
    assert sum(b for b, _ in got.values()) == CALL * 2 + Decimal("0.04")  # the day's bill, exactly

    # A re-pull with changed amounts replaces them
    fake.billed["openai"][D2][0] = ("gpt-4o-mini-2024-07-18, input", None, str(CALL * 3), "proj_a")
    assert CliRunner().invoke(cli, ["reconcile", "pull", "--url", c.http_url, "--since", "7d"]).exit_code == 0
    again = report(c, **{"from": D2.isoformat(), "to": D3.isoformat(), "by": "project"})
    assert {r["project"]: Decimal(r["billed_usd"]) for r in again}["proj_a"] == CALL * 3
