"""Re-pricing through a real collector: calls of a model no price list knows are stored unpriced
by the SDK, an override is added, and a dry run then a run put the override's price on exactly
those calls — in the raw rows, both rollups, the reports, the calls API, budgets and
reconciliation — while the old version stays readable and a second run changes nothing.
Expected money is the override's per-token price times the documented tokens, never the
collector's own output."""

from __future__ import annotations

import html
import json
import re
import shlex
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price

from otel_costs_collector.cli.main import main as cli

from ..budgets.test_budgets import send
from ..reconcile.test_reconcile import fake, reconciling, wait_for_rollups  # noqa: F401 (fixture)
from ..spans import SEMCONV

MODEL = "acme-llm-7b"  # no price list knows it: the SDK stores its calls unpriced
CALL = {**SEMCONV, "gen_ai.request.model": MODEL, "_name": f"chat {MODEL}"}
# SEMCONV's usage: 1200 input tokens (1000 of them cache reads), 300 output.
IN, OUT = 1200, 300
KNOWN = calc_price(  # a gpt-4o-mini call, priced when stored: never touched by a re-price
    Usage(input_tokens=IN, cache_read_tokens=1000, output_tokens=OUT), model_ref="gpt-4o-mini", provider_id="openai"
).total_price
MTOK = Decimal(1_000_000)


def override(entries: list[dict]) -> str:
    lines = []
    for e in entries:
        lines.append("[[model]]")
        lines += [f"{k} = {json.dumps(v) if isinstance(v, str) else v}" for k, v in e.items()]
    return "\n".join(lines) + "\n"


def cost(input_per_mtok: str, output_per_mtok: str) -> Decimal:
    """One CALL at an override without a cache price: cache reads bill as input (docs/sdk.md)."""
    return (IN * Decimal(input_per_mtok) + OUT * Decimal(output_per_mtok)) / MTOK


def days_back(n: int) -> date:
    return datetime.now(timezone.utc).date() - timedelta(days=n)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _not_at_midnight():
    """Which days are past depends on the date: a test that would cross midnight UTC waits it out."""
    now = datetime.now(timezone.utc)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
    if midnight - now < timedelta(seconds=120):
        time.sleep((midnight - now).total_seconds() + 1)


#: Per UTC day: cost and unpriced calls in the raw rows (the counted ones) and in each rollup.
SUMS_SQL = {
    "raw": "SELECT toDate(timestamp) AS d, sum(cost_total), countIf(pricing_status NOT IN ('priced', 'overridden'))"
    " FROM {db}.genai_spans WHERE pricing_status NOT IN ('aggregate', 'counted_elsewhere') GROUP BY d",
    "hourly": "SELECT toDate(hour) AS d, sum(cost_total), sum(unpriced_calls) FROM {db}.genai_costs_hourly GROUP BY d",
    "daily": "SELECT day, sum(cost_total), sum(unpriced_calls) FROM {db}.genai_costs_daily GROUP BY day",
}


def sums(c) -> dict[str, dict]:
    """:data:`SUMS_SQL`, read through a running collector's client."""
    return {name: {d: (total, int(n)) for d, total, n in c.query(sql)} for name, sql in SUMS_SQL.items()}


def costs(c, **params) -> dict:
    r = httpx.get(c.http_url + "/v1/costs", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_unpriced_calls_get_the_override_price_everywhere_and_the_old_version_is_kept(start_collector, fake, tmp_path):  # noqa: F811
    d1, d2, today = days_back(2), days_back(1), days_back(0)
    c = start_collector()
    send(c, 3, at(d1, 9), **{**CALL, "tenant.id": "acme"})
    send(c, 2, at(d1, 15), **{**CALL, "tenant.id": "globex"})
    send(c, 4, at(d2, 10), **{**CALL, "tenant.id": "acme"})
    send(c, 2, at(d2, 10), **{"tenant.id": "acme"})  # gpt-4o-mini, priced when stored
    send(c, 2, at(today, 0) + timedelta(seconds=1), **{**CALL, "tenant.id": "acme"})  # today: acme's budget
    wait_for_rollups(c, 13)
    assert c.query(
        "SELECT DISTINCT pricing_status, priced_by FROM {db}.genai_spans WHERE request_model = {{m:String}}", m=MODEL
    ) == [("unpriced", "sdk")]
    before = sums(c)
    c.stop()

    # The override, added; the provider's bill for d1 names the model.
    prices = tmp_path / "prices.toml"
    prices.write_text(
        override(
            [
                {
                    "provider": "openai",
                    "model": MODEL,
                    "id": "acme-rate",
                    "input_per_mtok": "0.30",
                    "output_per_mtok": "1.20",
                }
            ]
        )
    )
    one = cost("0.30", "1.20")
    fake.billed["openai"][d1] = [(f"{MODEL}, input", None, str(one * 5))]
    c = reconciling(start_collector, fake, prices_file=str(prices))
    c.call(c.collector.reconcile_now())
    budget = {"tenant": "acme", "amount_usd": "1", "period": "daily", "timezone": "UTC"}
    assert httpx.put(c.http_url + "/v1/budgets/acme-daily", json=budget, timeout=30).status_code == 200
    assert tracked(c, d1) == (one * 5, Decimal(0))  # billed, tracked
    assert spent(c) == 0
    end = today + timedelta(days=1)
    line = {"id": "acme-1", "tenant": "acme", "amount": "10", "currency": "USD", "period_start": d1.isoformat(),
            "period_end": end.isoformat()}  # fmt: skip
    assert httpx.put(c.http_url + "/v1/revenue", json=[line], timeout=30).json() == {"imported": 1, "problems": []}
    assert margin_cost(c, d1, end) == KNOWN * 2

    runner = CliRunner()
    args = ["reprice", "--url", c.http_url, "--from", d1.isoformat(), "--to", (today + timedelta(days=1)).isoformat()]

    # The dry run: per day, model and tenant, what would change; nothing changes.
    out = runner.invoke(cli, [*args, "--dry-run", "--format", "json"])
    assert out.exit_code == 0, out.output
    plan = json.loads(out.stdout)
    assert plan["dry_run"] is True and plan["run"] is None
    assert [
        (ch["day"], ch["model"], ch["tenant"], ch["rows"], Decimal(ch["cost_before"]), Decimal(ch["difference"]))
        for ch in plan["changes"]
    ] == [
        (d1.isoformat(), MODEL, "acme", 3, 0, one * 3),
        (d1.isoformat(), MODEL, "globex", 2, 0, one * 2),
        (d2.isoformat(), MODEL, "acme", 4, 0, one * 4),
        (today.isoformat(), MODEL, "acme", 2, 0, one * 2),
    ]
    assert Decimal(plan["difference"]) == one * 11 and plan["rows"] == 11
    assert plan["kept"] == {"unchanged": 2}  # the gpt-4o-mini calls
    assert sums(c) == before

    # The dashboard names the unpriced calls and the command that prices them; it does.
    page = httpx.get(c.http_url + "/", params={"since": "7d"}, timeout=30).text
    fix = html.unescape(re.search(r'<code data-testid="fix">(.*?)</code>', page).group(1))
    assert fix.startswith("otel-costs reprice --from ") and f"--model '{MODEL}' --only unpriced" in fix
    fixed = runner.invoke(cli, [*shlex.split(fix)[1:], "--url", c.http_url, "--dry-run", "--format", "json"])
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)["rows"] == 11
    assert 'data-testid="repriced"' not in page

    table = runner.invoke(cli, [*args, "--dry-run"])
    assert table.exit_code == 0 and "dry run: nothing changed" in table.stdout and "globex" in table.stdout

    # Apply, through the API.
    r = httpx.post(
        c.http_url + "/v1/reprice",
        json={"from": d1.isoformat(), "to": (today + timedelta(days=1)).isoformat(), "dry_run": False, "by": "alice"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    done = r.json()
    run = done["run"]
    assert done["rows"] == 11 and Decimal(done["cost_after"]) == one * 11 and Decimal(done["cost_before"]) == 0

    # Raw rows: the override's price, its entry named; the gpt-4o-mini calls untouched.
    rows = c.query(
        "SELECT cost_total, pricing_status, pricing_source, priced_by FROM {db}.genai_spans"
        " WHERE request_model = {{m:String}}",
        m=MODEL,
    )
    assert len(rows) == 11
    assert {(r[0], r[1], r[3]) for r in rows} == {(one, "overridden", "collector")}
    assert all(r[2].endswith(" acme-rate") for r in rows)
    assert (
        c.query("SELECT cost_total, pricing_status FROM {db}.genai_spans WHERE request_model = 'gpt-4o-mini'")
        == [(KNOWN, "priced")] * 2
    )

    # Raw = hourly = daily, per day, with the new totals and no unpriced call left.
    after = sums(c)
    assert after["raw"] == after["hourly"] == after["daily"]
    assert after["raw"] == {d1: (one * 5, 0), d2: (one * 4 + KNOWN * 2, 0), today: (one * 2, 0)}

    # Reports (rollups and raw), the calls API, budgets and reconciliation: the new version at once.
    by_tenant = {row["tenant"]: Decimal(row["cost_usd"]) for row in costs(c, by="tenant", **{"from": d1.isoformat()})}
    assert by_tenant == {"acme": one * 9 + KNOWN * 2, "globex": one * 2}
    hours = costs(c, by="model", **{"from": at(d1, 9).isoformat(), "to": at(d1, 16).isoformat()})  # raw rows
    assert {row["model"]: Decimal(row["cost_usd"]) for row in hours} == {MODEL: one * 5}
    calls = httpx.get(c.http_url + "/v1/calls", params={"model": MODEL, "since": "7d", "limit": 100}, timeout=30).json()
    assert sorted(Decimal(call["cost_usd"]) for call in calls["calls"]) == [one] * 11
    assert tracked(c, d1) == (one * 5, one * 5)
    assert spent(c) == one * 2
    assert margin_cost(c, d1, end) == one * 9 + KNOWN * 2
    page = httpx.get(c.http_url + "/", params={"since": "7d"}, timeout=30).text
    notes = re.findall(r'<p class="note" data-testid="repriced">(.*?)</p>', page)
    assert [n.split(" were re-priced")[0] for n in notes] == [f"Costs of {d}" for d in (d1, d2, today)]
    assert all("by alice: " in n and run in n for n in notes)
    assert "with no known price" not in page

    # The old version, kept; the run, recorded.
    shown = httpx.get(c.http_url + f"/v1/reprice/{run}", params={"calls": 100}, timeout=30).json()
    assert shown["by"] == "alice" and shown["state"] == "done"
    assert [(d["day"], d["state"]) for d in shown["days"]] == [(d.isoformat(), "applied") for d in (d1, d2, today)]
    assert len(shown["calls"]) == 11
    assert {
        (Decimal(x["old"]["cost_total"]), x["old"]["pricing_status"], Decimal(x["new"]["cost_total"]))
        for x in shown["calls"]
    } == {(Decimal(0), "unpriced", one)}
    history = runner.invoke(cli, ["reprice", "--url", c.http_url, "--history", "--format", "json"])
    assert history.exit_code == 0, history.output
    assert [(h["run"], h["rows"], Decimal(h["difference"])) for h in json.loads(history.stdout)["runs"]] == [
        (run, 11, one * 11)
    ]

    shown_table = runner.invoke(cli, ["reprice", "--url", c.http_url, "--show", run, "--calls", "2"])
    assert shown_table.exit_code == 0, shown_table.output
    assert f"run {run} by alice" in shown_table.stdout and "(unpriced) -> " in shown_table.stdout
    listed = runner.invoke(cli, ["reprice", "--url", c.http_url, "--history"])
    assert listed.exit_code == 0 and run in listed.stdout and "done" in listed.stdout

    # Again: nothing left to change.
    again = runner.invoke(cli, [*args, "--format", "json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["rows"] == 0
    assert sums(c) == after


def tracked(c, day: date) -> tuple[Decimal, Decimal]:
    """The reconciliation's billed and tracked cost of MODEL on ``day``."""
    r = httpx.get(
        c.http_url + "/v1/reconciliation",
        params={"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat(), "by": "day,provider,model"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    row = next(r for r in r.json() if r["model"] == MODEL)
    return Decimal(row["billed_usd"]), Decimal(row["tracked_usd"])


def margin_cost(c, start: date, end: date) -> Decimal:
    """acme's AI cost beside its revenue (/v1/margin)."""
    r = httpx.get(c.http_url + "/v1/margin", params={"from": start.isoformat(), "to": end.isoformat()}, timeout=30)
    assert r.status_code == 200, r.text
    (row,) = [row for row in r.json()["rows"] if row["tenant"] == "acme"]
    return Decimal(row["ai_cost_usd"])


def spent(c) -> Decimal:
    c.call(c.collector.evaluate_budgets_now())
    status = httpx.get(c.http_url + "/v1/budgets/status", params={"tenant": "acme"}, timeout=30).json()
    return Decimal(status["budgets"][0]["spend_usd"])


def test_a_price_change_inside_the_range_prices_each_call_with_its_own(start_collector, storage, database, tmp_path):
    d1, d2 = days_back(3), days_back(1)
    c = start_collector()
    send(c, 2, at(d1, 12), **{**CALL, "tenant.id": "acme"})
    send(c, 3, at(d2, 12), **{**CALL, "tenant.id": "acme"})
    wait_for_rollups(c, 5)
    c.stop()
    # The negotiated rate changes at the start of d2: calls before keep the old one.
    prices = tmp_path / "prices.toml"
    model = {"provider": "openai", "model": MODEL}
    prices.write_text(
        override(
            [
                {**model, "id": "rate-1", "input_per_mtok": "0.30", "output_per_mtok": "1.20", "until": d2.isoformat()},
                {**model, "id": "rate-2", "input_per_mtok": "0.20", "output_per_mtok": "0.80", "from": d2.isoformat()},
            ]
        ).replace(f'"{d2.isoformat()}"', d2.isoformat())  # TOML dates
    )
    # Directly on storage, no collector running: a file that does not load is one error, nothing done.
    bad = tmp_path / "bad.toml"
    bad.write_text(override([{"model": MODEL, "id": "x", "input_per_mtok": "-1", "output_per_mtok": "1"}]))
    refused = CliRunner().invoke(
        cli, ["reprice", "--storage", storage, "--database", database, "--prices-file", str(bad), "--since", "7d"]
    )
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: the price overrides file does not load, nothing was re-priced")
    assert "id 'x'" in refused.stderr
    out = CliRunner().invoke(
        cli,
        ["reprice", "--storage", storage, "--database", database, "--prices-file", str(prices), "--since", "7d"],
    )
    assert out.exit_code == 0, out.output
    assert "applied" in out.stdout
    runs = CliRunner().invoke(
        cli, ["reprice", "--storage", storage, "--database", database, "--history", "--format", "json"]
    )
    assert [(r["state"], r["rows"], r["days"]) for r in json.loads(runs.stdout)["runs"]] == [("done", 5, 2)]
    c = start_collector()
    rows = c.query("SELECT toDate(timestamp), cost_total, pricing_source FROM {db}.genai_spans ORDER BY timestamp")
    assert [(d, total, source.rsplit(" ", 1)[1]) for d, total, source in rows] == [
        (d1, cost("0.30", "1.20"), "rate-1")
    ] * 2 + [(d2, cost("0.20", "0.80"), "rate-2")] * 3
    after = sums(c)
    assert after["raw"] == after["hourly"] == after["daily"]


@pytest.mark.parametrize(
    "entries, words",
    [
        (
            [
                {
                    "model": MODEL,
                    "id": "q1",
                    "input_per_mtok": 1,
                    "output_per_mtok": 1,
                    "from": "2026-01-01",
                    "until": "2026-04-01",
                },
                {"model": MODEL, "id": "q2", "input_per_mtok": 1, "output_per_mtok": 1, "from": "2026-03-01"},
            ],
            "entries 'q1' and 'q2' price */acme-llm-7b over overlapping dates",
        ),
        (
            [
                {
                    "model": MODEL,
                    "id": "late",
                    "input_per_mtok": 1,
                    "output_per_mtok": 1,
                    "from": "2026-05-01",
                    "until": "2026-04-01",
                }
            ],
            "(acme-llm-7b, id 'late'): 'until' must be after 'from'",
        ),
        (
            [{"model": MODEL, "id": "minus", "input_per_mtok": "-0.5", "output_per_mtok": 1}],
            "(acme-llm-7b, id 'minus'): input_per_mtok: '-0.5' must be a finite, non-negative price",
        ),
    ],
)
def test_a_bad_overrides_file_is_one_error_naming_the_entry_and_nothing_is_applied(
    start_collector, tmp_path, entries, words
):
    prices = tmp_path / "prices.toml"
    prices.write_text(override([{"model": MODEL, "input_per_mtok": 1, "output_per_mtok": 2}]))
    c = start_collector(prices_file=str(prices))
    send(c, 2, at(days_back(1), 12), **CALL)
    wait_for_rollups(c, 2)
    before = sums(c)
    prices.write_text(override(entries))  # edited while the collector runs: read again by the re-price
    r = httpx.post(c.http_url + "/v1/reprice", json={"since": "7d", "dry_run": False}, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith("the price overrides file does not load, nothing was re-priced") and words in error
    assert len(error.splitlines()) == 2  # the file, then its one problem
    assert sums(c) == before
    assert httpx.get(c.http_url + "/v1/reprice", timeout=30).json() == {"runs": []}


def test_a_run_beside_live_ingestion_loses_and_doubles_nothing(start_collector, tmp_path):
    d1 = days_back(1)
    prices = tmp_path / "prices.toml"
    prices.write_text(override([{"model": MODEL, "input_per_mtok": "0.4", "output_per_mtok": "1.6"}]))
    one = cost("0.4", "1.6")
    c = start_collector(prices_file=str(prices))
    for _ in range(10):
        send(c, 50, at(d1, 9), **CALL)  # priced by the SDK, which knows no price: unpriced
    wait_for_rollups(c, 500)
    sent, stop = [0], threading.Event()

    def feed() -> None:  # more calls of the same day, while it is re-priced
        while not stop.is_set():
            send(c, 10, at(d1, 13), **CALL)
            sent[0] += 10

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        while sent[0] < 20:
            time.sleep(0.01)
        during = sent[0]
        r = httpx.post(c.http_url + "/v1/reprice", json={"since": "3d", "dry_run": False}, timeout=120)
        during = sent[0] - during
    finally:
        stop.set()
        feeder.join(60)
    assert r.status_code == 200, r.text
    assert during > 0  # calls arrived while it ran
    total = 500 + sent[0]
    wait_for_rollups(c, total)
    # Every call stored once; rollups = raw; the calls staged got the new price, the later ones
    # kept theirs until the next run.
    assert c.query("SELECT count(), uniqExact(trace_id, span_id) FROM {db}.genai_spans") == [(total, total)]
    after = sums(c)
    assert after["raw"] == after["hourly"] == after["daily"]
    repriced = r.json()["rows"]
    assert 500 <= repriced <= total
    assert after["raw"][d1] == (one * repriced, total - repriced)
    again = httpx.post(c.http_url + "/v1/reprice", json={"since": "3d", "dry_run": False}, timeout=120).json()
    assert again["rows"] == total - repriced
    after = sums(c)
    assert after["raw"] == after["hourly"] == after["daily"] == {d1: (one * total, 0)}


def test_copies_are_each_repriced_differing_copies_and_billed_costs_left_alone(start_collector, tmp_path):
    d1 = days_back(1)
    prices = tmp_path / "prices.toml"
    prices.write_text(override([{"model": MODEL, "input_per_mtok": "0.4", "output_per_mtok": "1.6"}]))
    c = start_collector(prices_file=str(prices))
    send(c, 3, at(d1, 9), **CALL)
    wait_for_rollups(c, 3)
    first, second, _ = [r[0] for r in c.query("SELECT span_id FROM {db}.genai_spans ORDER BY span_id")]
    send(c, 1, at(d1, 10), **{**CALL, "otel_costs.cost.provider": "0.0042"})  # what the provider billed: kept
    wait_for_rollups(c, 4)
    # A call stored twice (as a replay outside the deduplication window would), and one whose
    # second copy says other tokens: both through the raw table's insert, so the rollups hold them.
    copy = (
        "INSERT INTO {db}.genai_spans SELECT * REPLACE ({{n:UInt64}} AS input_tokens)"
        " FROM {db}.genai_spans WHERE span_id = {{s:String}}"
    )
    c.collector.client.command(copy.format(db=c.db), parameters={"n": IN, "s": first})
    c.collector.client.command(copy.format(db=c.db), parameters={"n": IN * 2, "s": second})
    wait_for_rollups(c, 6)
    r = httpx.post(c.http_url + "/v1/reprice", json={"since": "3d", "dry_run": False}, timeout=60).json()
    assert r["rows"] == 3 and r["kept"] == {"copies differ": 2}
    assert Decimal(r["difference"]) == cost("0.4", "1.6") * 3
    after = sums(c)
    assert after["raw"] == after["hourly"] == after["daily"] == {d1: (cost("0.4", "1.6") * 3 + Decimal("0.0042"), 2)}
    assert c.query("SELECT cost_total, cost_source FROM {db}.genai_spans WHERE cost_source = 'provider'") == [
        (Decimal("0.0042"), "provider")
    ]
