"""Releases as a dimension: service.version and the deployment environment on every row, in
reports, filters and the calls API; and ``compare``: a feature's cost per release with the
change split into calls × tokens per call × price per token, exact against ``calc_price``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
from click.testing import CliRunner
from genai_prices import Usage, calc_price
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_costs_collector.cli.main import main as cli
from otel_costs_collector.reports.compare import MAX_PERIODS

from ..reconcile.test_reconcile import wait_for_rollups
from ..spans import SEMCONV, sdk_request

UTC = timezone.utc
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=n) for n in (6, 5, 4, 3, 2)]  # 1.4.1 on the first three, 1.4.2 after
PROTO = {"Content-Type": "application/x-protobuf"}


def call(model: str, inp: int, out: int, feature: str) -> dict:
    return {
        **SEMCONV,
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "feature.name": feature,
    }


def price(model: str, inp: int, out: int) -> Decimal:
    return calc_price(Usage(input_tokens=inp, output_tokens=out), model_ref=model, provider_id="openai").total_price


def send(c, spans: list[dict], day, version: str, environment: str = "production") -> None:
    at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    request = sdk_request(
        [{**s, "_start": at} for s in spans],
        resource={"service.version": version, "deployment.environment.name": environment},
    )
    r = httpx.post(c.http_url + "/v1/traces", content=request.SerializeToString(), headers=PROTO, timeout=30)
    assert r.status_code == 200, r.text


def test_cost_per_release_and_what_changed_it(collector):
    c = collector
    for day in DAYS[:3]:
        send(
            c,
            [call("gpt-4o-mini", 1000, 200, "summarize")] * 4 + [call("gpt-4o-mini", 500, 50, "chat")] * 2,
            day,
            "1.4.1",
        )
    for day in DAYS[3:]:
        send(c, [call("gpt-4o", 1500, 200, "summarize")] * 5 + [call("gpt-4o-mini", 500, 50, "chat")] * 2, day, "1.4.2")
    send(c, [call("gpt-4o-mini", 500, 50, "chat")], DAYS[4], "1.4.2", environment="staging")
    wait_for_rollups(c, 12 + 6 + 10 + 4 + 1)
    window = {"from": DAYS[0].isoformat(), "to": (TODAY + timedelta(days=1)).isoformat()}

    before = {"calls": 12, "cost": price("gpt-4o-mini", 1000, 200) * 12, "tokens": 1200 * 12}
    after = {"calls": 10, "cost": price("gpt-4o", 1500, 200) * 10, "tokens": 1700 * 10}
    r = httpx.get(c.http_url + "/v1/compare", params={"by": "version", "feature": "summarize", **window})
    assert r.status_code == 200, r.text
    (summarize,) = r.json()
    assert [p["period"] for p in summarize["periods"]] == ["1.4.1", "1.4.2"]
    for shown, want in zip(summarize["periods"], (before, after)):
        assert shown["calls"] == want["calls"] and Decimal(shown["cost_usd"]) == want["cost"]
        assert Decimal(shown["cost_per_call"]) == want["cost"] / want["calls"]
        assert Decimal(shown["tokens_per_call"]) == Decimal(want["tokens"]) / want["calls"]
        assert Decimal(shown["usd_per_mtok"]) == want["cost"] * 1_000_000 / want["tokens"]
    (change,) = summarize["changes"]
    six = Decimal("0.000001")
    assert change["model_change"] == {"from": "gpt-4o-mini", "to": "gpt-4o"}
    assert Decimal(change["cost_delta_usd"]) == after["cost"] - before["cost"]
    assert Decimal(change["calls_ratio"]) == (Decimal(10) / 12).quantize(six)
    assert Decimal(change["tokens_per_call_ratio"]) == (Decimal(1700) / 1200).quantize(six)
    per_token = (after["cost"] / after["tokens"]) / (before["cost"] / before["tokens"])
    assert Decimal(change["price_per_token_ratio"]) == per_token.quantize(six)
    per_call = (after["cost"] / 10) / (before["cost"] / 12)
    assert Decimal(change["cost_per_call_ratio"]) == per_call.quantize(six)
    assert f"cost per call ×{per_call.quantize(six).normalize():f} — model gpt-4o-mini → gpt-4o" in change["summary"]

    # Two ranges instead of releases: the same figures
    ranges = {
        "before_from": DAYS[0].isoformat(),
        "before_to": DAYS[3].isoformat(),
        "after_from": DAYS[3].isoformat(),
        "after_to": (TODAY + timedelta(days=1)).isoformat(),
        "feature": "summarize",
    }
    (by_range,) = httpx.get(c.http_url + "/v1/compare", params=ranges).json()
    assert [p["period"] for p in by_range["periods"]] == ["before", "after"]
    assert by_range["changes"][0]["cost_per_call_ratio"] == change["cost_per_call_ratio"]

    # A report by release and environment, a filter, and the calls API
    rows = httpx.get(c.http_url + "/v1/costs", params={"by": "version,environment", **window}).json()
    got = {(r["version"], r["environment"]): (r["calls"], Decimal(r["cost_usd"])) for r in rows}
    chat = price("gpt-4o-mini", 500, 50)
    assert got == {
        ("1.4.1", "production"): (18, before["cost"] + chat * 6),
        ("1.4.2", "production"): (14, after["cost"] + chat * 4),
        ("1.4.2", "staging"): (1, chat),
    }
    staging = httpx.get(c.http_url + "/v1/calls", params={"environment": "staging", **window}).json()["calls"]
    assert [(x["version"], x["environment"], x["feature"]) for x in staging] == [("1.4.2", "staging", "chat")]
    out = CliRunner().invoke(cli, ["compare", "--url", c.http_url, "--feature", "summarize", "--since", "7d"])
    assert out.exit_code == 0, out.output
    assert "model gpt-4o-mini → gpt-4o" in out.output
    page = httpx.get(c.http_url + "/", params={"version": "1.4.2", **window}).text
    assert 'data-panel="releases"' in page


def test_huge_and_countless_versions_are_capped(collector):
    c = collector
    send(c, [call("gpt-4o-mini", 10, 1, "chat")], DAYS[0], "v" * (4 << 20))  # 4 MiB
    at = datetime(DAYS[1].year, DAYS[1].month, DAYS[1].day, 10, tzinfo=UTC)
    many = ExportTraceServiceRequest()
    for n in range(2000):  # thousands of releases, in one request: a resource each
        one = sdk_request(
            [{**call("gpt-4o-mini", 10, 1, "chat"), "_start": at}], resource={"service.version": f"2.0.{n}"}
        )
        many.resource_spans.extend(one.resource_spans)
    r = httpx.post(c.http_url + "/v1/traces", content=many.SerializeToString(), headers=PROTO, timeout=60)
    assert r.status_code == 200, r.text
    wait_for_rollups(c, 2001)
    by_version = httpx.get(c.http_url + "/v1/costs", params={"by": "version", "since": "30d", "top": "5"}).json()
    assert len(by_version) == 5
    versions = {r[0] for r in c.query("SELECT DISTINCT service_version FROM {db}.genai_spans")}
    assert "v" * 256 in versions and max(len(v) for v in versions) == 256
    (chat,) = httpx.get(c.http_url + "/v1/compare", params={"since": "30d"}).json()
    assert len(chat["periods"]) == MAX_PERIODS and len(chat["changes"]) == MAX_PERIODS - 1
    assert json.dumps(chat).count("v" * 256) <= 1
