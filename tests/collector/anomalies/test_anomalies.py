"""Cost anomalies through a real collector: four weeks of traffic with a weekly peak, then a
release whose service.version switches one feature's model. The peak is not flagged; the
release's hour is, within one evaluation, naming the feature, the release and the model, with
an impact equal to what ``calc_price`` gives; its alert is sent once, also across a restart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price

from otel_costs_collector.anomalies.baseline import baseline, is_anomaly
from otel_costs_collector.cli.main import main as cli

from ..budgets.test_budgets import Clock, Hook, webhook  # noqa: F401 (fixture)
from ..reconcile.test_reconcile import wait_for_rollups
from ..spans import SEMCONV, sdk_request

UTC = timezone.utc
HOUR, WEEK = timedelta(hours=1), timedelta(days=7)
# The release's hour: yesterday; four weeks of history before it.
RELEASE = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
FIRST = RELEASE - 4 * WEEK
PEAK = RELEASE - HOUR  # the busiest hour of every week: this hour of the week
PROTO = {"Content-Type": "application/x-protobuf"}


def price(model: str) -> Decimal:
    usage = Usage(input_tokens=4000, output_tokens=500)
    return calc_price(usage, model_ref=model, provider_id="openai").total_price


def span(model: str, feature: str, at: datetime) -> dict:
    return {
        **SEMCONV,
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 4000,
        "gen_ai.usage.output_tokens": 500,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "feature.name": feature,
        "tenant.id": "acme",
        "_start": at,
    }


def post(c, spans: list[dict], version: str) -> None:
    request = sdk_request(spans, resource={"service.version": version})
    r = httpx.post(c.http_url + "/v1/traces", content=request.SerializeToString(), headers=PROTO, timeout=60)
    assert r.status_code == 200, r.text


def history(c) -> int:
    """Two summarize calls and one chat call an hour; six summarize calls in the weekly peak hour."""
    sent = 0
    for day in range(28):
        spans = []
        for h in range(24):
            hour = FIRST + timedelta(days=day, hours=h)
            peak = (PEAK - hour) % WEEK == timedelta(0)
            spans += [span("gpt-4o-mini", "summarize", hour + timedelta(minutes=10)) for _ in range(6 if peak else 2)]
            spans.append(span("gpt-4o-mini", "chat", hour + timedelta(minutes=20)))
        post(c, spans, "1.9.0")
        sent += len(spans)
    return sent


def test_a_release_that_switches_a_model_is_an_anomaly_and_the_weekly_peak_is_not(start_collector, webhook):  # noqa: F811
    clock = Clock(RELEASE + timedelta(minutes=1))  # the peak hour just ended
    settings = dict(anomaly_min_usd=Decimal("0.01"), anomaly_interval_s=3600, budget_webhook_url=webhook)
    c = start_collector(clock=clock, **settings)
    sent = history(c)
    wait_for_rollups(c, sent)
    c.call(c.collector.detect_anomalies_now())
    assert httpx.get(c.http_url + "/v1/anomalies").json() == [] and Hook.received == []

    post(c, [span("gpt-4o", "summarize", RELEASE + timedelta(minutes=10)) for _ in range(2)], "2.0.0")
    post(c, [span("gpt-4o-mini", "chat", RELEASE + timedelta(minutes=20))], "2.0.0")
    wait_for_rollups(c, sent + 3)
    clock.now = RELEASE + HOUR + timedelta(minutes=1)
    c.call(c.collector.detect_anomalies_now())  # one evaluation

    found = httpx.get(c.http_url + "/v1/anomalies").json()
    by_scope = {(a["kind"], a["scope"], a["window"]): a for a in found}
    feature = by_scope[("feature", "summarize", "hour")]
    expected, actual = price("gpt-4o-mini") * 2, price("gpt-4o") * 2
    assert (Decimal(feature["actual_usd"]), Decimal(feature["expected_usd"])) == (actual, expected)
    assert Decimal(feature["impact_usd"]) == actual - expected
    assert Decimal(feature["impact_percent"]) == ((actual - expected) * 100 / expected).quantize(Decimal("0.1"))
    assert feature["method"] == "seasonal" and feature["baseline_windows"] == 4
    assert [x["value"] for x in feature["contributors"]["version"]] == ["2.0.0"]
    assert [x["value"] for x in feature["contributors"]["model"]] == ["gpt-4o"]
    assert feature["change"]["model_change"] == {"from": "gpt-4o-mini", "to": "gpt-4o"}
    assert "version 2.0.0, model gpt-4o" in feature["message"]
    assert ("model", "gpt-4o", "hour") not in by_scope  # no history: no baseline
    assert ("feature", "chat", "hour") not in by_scope  # unchanged
    calls = httpx.get(c.http_url + feature["calls_url"]).json()["calls"]
    assert {(x["response_model"] or x["request_model"], x["version"]) for x in calls} == {("gpt-4o", "2.0.0")}
    assert 'otel_costs_anomalies{kind="feature"}' in httpx.get(c.http_url + "/metrics").text
    page = httpx.get(c.http_url + "/", params={"feature": "summarize", "since": "7d"}).text
    assert 'id="anomalies"' in page and 'class="marker"' in page and "the calls</a>" in page

    # The webhook got each anomaly once; a cycle later and a restart later, nothing again
    assert sorted(a["id"] for a in Hook.received) == sorted(a["id"] for a in found)
    c.call(c.collector.detect_anomalies_now())
    c.stop()
    again = start_collector(clock=clock, **settings)
    again.call(again.collector.detect_anomalies_now())
    assert len(Hook.received) == len(found)
    out = CliRunner().invoke(cli, ["anomalies", "--url", again.http_url, "--since", "30d"])
    assert out.exit_code == 0 and "feature summarize" in out.output, out.output


@pytest.mark.parametrize(
    "first_days, expected_method",
    [(20, "seasonal"), (5, "trailing median"), (0, None)],
)
def test_the_baseline_says_which_method_it_used(first_days, expected_method):
    start = datetime(2026, 11, 30, 10, tzinfo=UTC)
    first = start - timedelta(days=first_days, hours=1 if first_days == 0 else 0)
    series = {first + i * HOUR: Decimal(1) for i in range(int((start - first) / HOUR))}
    found = baseline(series, first, start, 1)
    assert (found.method if found else None) == expected_method
    if found:
        assert found.value == Decimal(1)


@pytest.mark.parametrize(
    "actual, expected, flagged",
    [("10", "1", True), ("1.20", "1", False), ("3", "2.99", False), ("1", "10", False), ("6", "0", True)],
)
def test_an_anomaly_needs_both_thresholds(actual, expected, flagged):
    assert is_anomaly(Decimal(actual), Decimal(expected), Decimal(1), Decimal(1)) is flagged
