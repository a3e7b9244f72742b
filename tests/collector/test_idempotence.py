"""A batch written twice (a retry after a timeout, a replay) is stored once: raw rows and
both rollups."""

from __future__ import annotations

from decimal import Decimal

import pytest

from collector.mapping import map_request
from collector.retry import retrying
from collector.writer import ClickHouseWriter, batch_token
from otel_costs.pricing import Pricer

from .spans import SEMCONV, sdk_request


def counts(c):
    return tuple(c.query(f"SELECT sum({n}), sum(cost_total) FROM {{db}}.{t}")[0]
                 for t, n in (("genai_spans", "1"), ("genai_costs_hourly", "calls"), ("genai_costs_daily", "calls")))


def batch(n=20, seed_model="gpt-4o-mini"):
    return map_request(sdk_request([dict(SEMCONV, **{"gen_ai.request.model": seed_model}) for _ in range(n)]),
                       Pricer()).rows


def test_same_batch_twice_is_counted_once(collector):
    writer = ClickHouseWriter(collector.collector.client, collector.db)
    rows = batch()
    writer.write(rows)
    once = counts(collector)
    writer.write(rows)  # the retry after a timeout whose insert had in fact succeeded
    assert counts(collector) == once
    assert once[0][0] == 20 and once[1] == once[2] == (20, once[0][1])


def test_a_different_batch_is_not_mistaken_for_a_retry(collector):
    writer = ClickHouseWriter(collector.collector.client, collector.db)
    writer.write(batch())
    writer.write(batch())  # new spans, new ids
    assert counts(collector)[0][0] == 40


def test_token_is_deterministic_and_content_based():
    rows = batch(5)
    assert batch_token(rows) == batch_token(rows)
    assert batch_token(rows) != batch_token(batch(5))


def test_retry_after_a_timeout_that_succeeded_stores_once(collector):
    writer = ClickHouseWriter(collector.collector.client, collector.db)
    calls = []

    def flaky(rows, token):
        writer.write(rows, token)
        calls.append(token)
        if len(calls) == 1:
            raise TimeoutError("read timed out after the insert was applied")

    retrying(flaky, sleep=lambda s: None)(batch(7))
    assert len(calls) == 2 and calls[0] == calls[1]
    raw, hourly, daily = counts(collector)
    assert raw[0] == hourly[0] == daily[0] == 7
    assert raw[1] == hourly[1] == daily[1] == Decimal("0.000285") * 7


def test_retries_give_up_with_the_last_error():
    attempts = []

    def failing(rows, token):
        attempts.append(token)
        raise ConnectionError("storage down")

    with pytest.raises(ConnectionError):
        retrying(failing, attempts=3, sleep=lambda s: None)(batch(1))
    assert len(attempts) == 3 and len(set(attempts)) == 1


@pytest.mark.parametrize("missed", ["genai_costs_hourly_mv", "genai_costs_daily_mv"])
def test_replay_completes_a_rollup_a_crash_left_without_the_batch(collector, missed):
    """The raw table and each rollup commit one after the other; a crash in between leaves
    the batch in some of them. Replaying it with its token fills only the ones that missed it."""
    writer = ClickHouseWriter(collector.collector.client, collector.db)
    rows = batch(9)
    collector.collector.client.command(f"DETACH TABLE {collector.db}.{missed}")
    try:
        writer.write(rows)  # reaches raw and the other rollup, not this one
    finally:
        collector.collector.client.command(f"ATTACH TABLE {collector.db}.{missed}")
    partial = counts(collector)
    assert sorted(c[0] or 0 for c in partial) == [0, 9, 9]
    writer.write(rows)  # the replay after the restart
    cost = Decimal("0.000285") * 9
    assert counts(collector) == ((9, cost),) * 3
    writer.write(rows)
    assert counts(collector) == ((9, cost),) * 3
