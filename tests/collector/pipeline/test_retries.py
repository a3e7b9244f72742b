"""Exactly once across client retries: a request resent because its answer was lost is
answered "stored" and not counted again, also after a restart."""

from __future__ import annotations

import threading
from decimal import Decimal

import httpx

from otel_costs_collector.receive.dedup import RecentRequests

from ..spans import SEMCONV, sdk_request

PROTO = {"Content-Type": "application/x-protobuf"}
COST = Decimal("0.000285")


def send(c, body):
    return httpx.post(c.http_url + "/v1/traces", content=body, headers=PROTO, timeout=30)


def totals(c):
    return [
        c.query(f"SELECT sum({n}), sum(cost_total) FROM {{db}}.{t}")[0]
        for t, n in (("genai_spans", "1"), ("genai_costs_hourly", "calls"), ("genai_costs_daily", "calls"))
    ]


def test_resent_request_is_stored_once(collector):
    body = sdk_request([dict(SEMCONV)] * 5).SerializeToString()
    assert send(collector, body).status_code == 200
    assert send(collector, body).status_code == 200  # the exporter did not get the first answer
    assert totals(collector) == [(5, 5 * COST)] * 3
    assert "otel_costs_spans_duplicate_total 5.0" in httpx.get(collector.http_url + "/metrics").text


def test_retry_while_the_first_attempt_is_queued(start_collector):
    c = start_collector(batch_max_age_ms=1500, batch_min_rows=1_000_000)
    body = sdk_request([dict(SEMCONV)] * 3).SerializeToString()
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(send(c, body).status_code)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == [200, 200, 200]
    assert totals(c) == [(3, 3 * COST)] * 3


def test_retry_after_a_restart_is_recognised(start_collector):
    first = start_collector()
    body = sdk_request([dict(SEMCONV)] * 4).SerializeToString()
    assert send(first, body).status_code == 200
    first.stop()
    second = start_collector()
    assert send(second, body).status_code == 200
    assert totals(second) == [(4, 4 * COST)] * 3


def test_other_requests_are_not_mistaken_for_retries(collector):
    for _ in range(3):
        assert send(collector, sdk_request([dict(SEMCONV)] * 2).SerializeToString()).status_code == 200
    assert totals(collector)[0][0] == 6


def test_recent_requests_expire():
    now = [0.0]
    recent = RecentRequests(window=60, clock=lambda: now[0])
    recent.add(["a", "b"])
    now[0] = 30
    recent.add(["c"])
    assert "a" in recent and "c" in recent
    now[0] = 61
    assert "a" not in recent and "b" not in recent and "c" in recent
    assert len(recent) == 1
