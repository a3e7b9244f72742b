"""A batch written twice (a retry after a timeout, a replay) is stored once: raw rows and
both rollups, by one writer or by a pool writing at once."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from otel_costs.pricing import Pricer
from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.batch_writer import WriterPool, writer
from otel_costs_collector.pipeline.retry import Retrying
from otel_costs_collector.pipeline.types import Batch, PermanentError, WriteFunction
from otel_costs_collector.storage.client import open_client

from ..spans import SEMCONV, sdk_request

# Spans an SDK priced keep their price; bare ones (other languages) are priced by the collector.
BARE = {k: v for k, v in SEMCONV.items() if not k.startswith("otel_costs.")}


def counts(c):
    return tuple(
        c.query(f"SELECT sum({n}), sum(cost_total) FROM {{db}}.{t}")[0]
        for t, n in (("genai_spans", "1"), ("genai_costs_hourly", "calls"), ("genai_costs_daily", "calls"))
    )


def batch(n=20, bare=0):
    """A batch file of one request: ``n`` SDK-priced spans and ``bare`` unpriced ones."""
    request = sdk_request([dict(SEMCONV) for _ in range(n)] + [dict(BARE) for _ in range(bare)])
    records = [
        batch_file.Record(
            request.SerializeToString(), None, batch_file.request_token(request.SerializeToString(), None)
        )
    ]
    return Batch.of(records, n + bare)


@pytest.fixture
def one(collector):
    """map → insert on the collector's query connection (no count-once stage)."""
    return writer(collector.collector.client, collector.db, Pricer())


def test_same_batch_twice_is_counted_once(collector, one):
    b = batch(20, bare=3)
    (outcome,) = one.write(b)
    assert (outcome.received, outcome.accepted, outcome.non_genai, outcome.rejected) == (23, 23, 0, 0)
    once = counts(collector)
    one.write(b)  # the retry after a timeout whose insert had in fact succeeded
    assert counts(collector) == once
    assert once[0][0] == 23 and once[1] == once[2] == (23, once[0][1])


def test_a_different_batch_is_not_mistaken_for_a_retry(collector, one):
    one.write(batch())
    one.write(batch())  # new spans, new ids
    assert counts(collector)[0][0] == 40


def test_token_is_deterministic_and_content_based():
    b = batch(5)
    assert batch_file.insert_token_of(list(_records(b.data))) == b.insert_token
    assert batch(5).insert_token != b.insert_token


def _records(data):
    for _request, tenant, token in batch_file.decode(data):
        yield batch_file.Record(b"", tenant, token)


def test_retry_after_a_timeout_that_succeeded_stores_once(collector, one):
    calls = []

    def flaky(b):
        outcomes = one.write(b)
        calls.append(b.insert_token)
        if len(calls) == 1:
            raise TimeoutError("read timed out after the insert was applied")
        return outcomes

    Retrying(WriteFunction(flaky), sleep=lambda s: None).write(batch(7))
    assert len(calls) == 2 and calls[0] == calls[1]
    raw, hourly, daily = counts(collector)
    assert raw[0] == hourly[0] == daily[0] == 7
    assert raw[1] == hourly[1] == daily[1] == Decimal("0.000285") * 7


@pytest.mark.parametrize(
    "error, tries",
    [(ConnectionError("storage down"), 3), (PermanentError("Code: 53. DB::Exception: Type mismatch"), 1)],
    ids=["not now: every attempt", "permanent: at once"],
)
def test_retries_give_up_with_the_last_error(error, tries):
    attempts = []

    def failing(b):
        attempts.append(b.insert_token)
        raise error

    with pytest.raises(type(error)):
        Retrying(WriteFunction(failing), attempts=3, sleep=lambda s: None).write(batch(1))
    assert len(attempts) == tries and len(set(attempts)) == 1


# Without the hourly view the daily rollup misses the batch too: it sums the hourly inserts.
@pytest.mark.parametrize(
    "missed, stored", [("genai_costs_hourly_mv", [0, 0, 11]), ("genai_costs_daily_mv", [0, 11, 11])]
)
def test_replay_completes_a_rollup_a_crash_left_without_the_batch(collector, one, missed, stored):
    """The raw table and each rollup commit one after the other; a crash in between leaves
    the batch in some of them. Replaying it with its token fills only the ones that missed it."""
    b = batch(9, bare=2)
    collector.collector.client.command(f"DETACH TABLE {collector.db}.{missed}")
    try:
        one.write(b)  # reaches raw (and the hourly rollup), not this view's table
    finally:
        collector.collector.client.command(f"ATTACH TABLE {collector.db}.{missed}")
    partial = counts(collector)
    assert sorted(c[0] or 0 for c in partial) == stored
    one.write(b)  # the replay after the restart
    cost = Decimal("0.000285") * 11  # the bare spans were priced by the collector, alike
    assert counts(collector) == ((11, cost),) * 3
    one.write(b)
    assert counts(collector) == ((11, cost),) * 3


@pytest.mark.parametrize(
    "extra",
    [b"\xa3\x1f\x08\x01\xa4\x1f", b"\xd2\x3e\x04evil\xd8\x3e\x01"],
    ids=["a group", "fields 1002-1003, once the collector's"],
)
def test_requests_with_fields_the_collector_does_not_know_are_stored_as_sent(collector, one, extra):
    """protobuf keeps unknown fields (a group, field numbers version 0.1 appended itself);
    they mean nothing to the mapping, and the request is stored with its batch-mates."""
    good = sdk_request([dict(SEMCONV) for _ in range(4)]).SerializeToString()
    odd = sdk_request([dict(BARE) for _ in range(2)]).SerializeToString() + extra
    records = [batch_file.Record(body, None, batch_file.request_token(body, None)) for body in (good, odd)]
    b = Batch.of(records, 6)
    outcomes = one.write(b)
    assert [(o.received, o.accepted) for o in outcomes] == [(4, 4), (2, 2)]
    one.write(b)  # a replay takes the same route: stored once
    assert counts(collector) == ((6, Decimal("0.000285") * 6),) * 3


def test_batches_written_at_once_by_a_pool_are_each_stored_once(collector):
    """The collector's writers (one storage connection each) write batches concurrently;
    each batch and its replay are still stored once."""
    clients = [open_client(collector.collector.config.target) for _ in range(2)]
    try:
        writers = [writer(client, collector.db, Pricer()) for client in clients]
        pool = WriterPool(writers)
        batches = [batch(15, bare=2), batch(25, bare=1)]
        start = threading.Barrier(len(batches))
        outcomes: dict[int, list] = {}

        def write_twice(i: int) -> None:
            start.wait(10)
            for _ in range(2):  # the batch and its replay
                outcomes.setdefault(i, []).append(pool.write(batches[i]))

        threads = [threading.Thread(target=write_twice, args=(i,)) for i in range(len(batches))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [[o.accepted for (o,) in outcomes[i]] for i in range(2)] == [[17, 17], [26, 26]]
        assert counts(collector) == ((43, Decimal("0.000285") * 43),) * 3
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("restart", [False, True], ids=["running", "after a restart"])
def test_a_span_sent_again_in_another_request_is_stored_once(start_collector, tmp_path, restart):
    import httpx
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    first = sdk_request([dict(SEMCONV), dict(SEMCONV)])
    again = ExportTraceServiceRequest()
    again.CopyFrom(first)
    # The second request holds one span of the first and a new one: another request token.
    again.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01" * 8
    proto = {"Content-Type": "application/x-protobuf"}
    c = start_collector()
    assert httpx.post(c.http_url + "/v1/traces", content=first.SerializeToString(), headers=proto).status_code == 200
    if restart:
        c.stop()
        c = start_collector()
    assert httpx.post(c.http_url + "/v1/traces", content=again.SerializeToString(), headers=proto).status_code == 200
    c.stop()
    c = start_collector()
    assert counts(c)[0][0] == 3  # two from the first request, the new one of the second
    kept = first.resource_spans[0].scope_spans[0].spans[1].span_id.hex()
    assert c.query("SELECT count() FROM {db}.genai_spans WHERE span_id = {{s:String}}", s=kept)[0][0] == 1
    assert all(n == 3 for n, _ in counts(c))


@pytest.mark.parametrize("where", ["same scope", "another resource"])
def test_a_span_repeated_inside_one_request_is_stored_once(start_collector, where):
    """An exporter that puts a span in a request twice (same trace and span id): stored and
    counted once, like a resend across requests; the request is not refused for it."""
    import httpx
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = sdk_request([dict(SEMCONV), dict(SEMCONV)])
    first = request.resource_spans[0].scope_spans[0].spans[0]
    if where == "same scope":
        request.resource_spans[0].scope_spans[0].spans.add().CopyFrom(first)
    else:
        request.resource_spans.add().CopyFrom(request.resource_spans[0])
        del request.resource_spans[1].scope_spans[0].spans[1]
    c = start_collector()
    answer = httpx.post(
        c.http_url + "/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert answer.status_code == 200
    parsed = ExportTraceServiceRequest.FromString(request.SerializeToString())
    assert sum(len(s.spans) for r in parsed.resource_spans for s in r.scope_spans) == 3
    assert counts(c) == ((2, Decimal("0.000285") * 2),) * 3
    assert c.query("SELECT uniqExact(span_id) FROM {db}.genai_spans")[0][0] == 2
    assert "otel_costs_spans_repeated_total 1.0" in httpx.get(c.http_url + "/metrics").text
