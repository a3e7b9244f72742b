"""Durable before acknowledged: batches storage cannot take are spooled (fsynced) and
replayed in order, also after a restart, each counted once; a request storage refuses is
set aside alone."""

from __future__ import annotations

import os
import time
from decimal import Decimal

import httpx

from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.spool import Spool
from otel_costs_collector.pipeline.spooling import MAX_FAILURES
from otel_costs_collector.pipeline.types import PermanentError

from ..spans import SEMCONV, sdk_request

PROTO = {"Content-Type": "application/x-protobuf"}


class Outage:
    """Fault injection: storage writes fail while ``down``."""

    def __init__(self):
        self.down = False
        self.refuse = False

    def wrap(self, write):
        def faulty(batch):
            if self.down:
                raise ConnectionError("ClickHouse is down (simulated)")
            if self.refuse:
                # what storage raises for a batch it refuses (storage.errors.classify)
                raise PermanentError("Code: 53. DB::Exception: Type mismatch (simulated)")
            return write(batch)

        return faulty


def post(c, n):
    return httpx.post(
        c.http_url + "/v1/traces",
        content=sdk_request([dict(SEMCONV)] * n).SerializeToString(),
        headers=PROTO,
        timeout=30,
    )


def stored(c):
    return [
        c.query(f"SELECT sum({n}), sum(cost_total) FROM {{db}}.{t}")[0]
        for t, n in (("genai_spans", "1"), ("genai_costs_hourly", "calls"), ("genai_costs_daily", "calls"))
    ]


def replayed(c, spans):
    """Whether the replayer has written ``spans`` spans: its write returned, so the raw table
    and every rollup have them (a query on its own connection may see the raw rows first)."""
    text = httpx.get(c.http_url + "/metrics").text
    return f'otel_costs_spool_spans_total{{event="replayed"}} {spans:.1f}' in text


def wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_outage_is_spooled_acknowledged_and_replayed_once(start_collector, tmp_path):
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap)
    outage.down = True
    assert post(c, 4).status_code == 200 and post(c, 6).status_code == 200  # acked: on disk
    assert stored(c)[0][0] is None or stored(c)[0][0] == 0
    assert len(Spool(str(tmp_path / "spool"), 1 << 30)) == 2
    outage.down = False
    wait_for(lambda: replayed(c, 10))
    cost = Decimal("0.000285") * 10
    assert stored(c) == [(10, cost)] * 3
    time.sleep(1.5)  # the replayer does not write anything twice
    assert stored(c) == [(10, cost)] * 3
    text = httpx.get(c.http_url + "/metrics").text
    assert 'otel_costs_spool_spans_total{event="spooled"} 10.0' in text
    assert 'otel_costs_spool_spans_total{event="replayed"} 10.0' in text


def test_spool_survives_a_restart(start_collector, tmp_path):
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap)
    outage.down = True
    assert post(c, 5).status_code == 200
    c.stop()  # storage still down: the batch stays on disk
    assert len(Spool(str(tmp_path / "spool"), 1 << 30)) == 1
    again = start_collector(spool_dir=str(tmp_path / "spool"))
    wait_for(lambda: replayed(again, 5))
    assert stored(again) == [(5, Decimal("0.000285") * 5)] * 3


def test_batch_refused_as_invalid_is_moved_aside_not_replayed_forever(start_collector, tmp_path):
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap)
    outage.down = True
    assert post(c, 2).status_code == 200
    outage.down, outage.refuse = False, True
    rejected = tmp_path / "spool" / "rejected"
    wait_for(lambda: [n for n in os.listdir(rejected) if not n.endswith(".reason.txt")])  # the batch
    reason = [n for n in os.listdir(rejected) if n.endswith(".reason.txt")]  # written before it moved
    assert "Type mismatch" in (rejected / reason[0]).read_text()
    wait_for(lambda: len(Spool(str(tmp_path / "spool"), 1 << 30)) == 0)  # set aside, then dropped from the spool


def test_full_spool_turns_into_backpressure(start_collector, tmp_path):
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap, max_spool_bytes=1 << 20)
    outage.down = True
    answers = [post(c, 200).status_code for _ in range(30)]
    assert 200 in answers and 503 in answers  # stored on disk until full, then "retry later"
    assert Spool(str(tmp_path / "spool"), 1 << 30).bytes <= 1 << 20


def test_a_batch_spooled_by_version_0_1_is_replayed_with_its_tenant_and_tokens(start_collector, tmp_path):
    """0.1 framed a batch with fields appended to each request (spool magic 2)."""
    import json

    from .test_batch_file import _field, _varint

    body = sdk_request([dict(SEMCONV, **{"tenant.id": "claimed"}) for _ in range(3)]).SerializeToString()
    request_token = batch_file.request_token(body, "acme")
    tail = (
        _field(1001, 0, b"\x01")
        + _field(1002, 2, b"acme")
        + _field(1003, 0, b"\x01")
        + _field(1004, 2, request_token.encode())
    )
    header = json.dumps({"token": "batch-0.1", "requests": [request_token], "spans": 3}).encode()
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "00000000000000000004.batch").write_bytes(
        b"otel-costs spooled batch 2\n" + header + b"\n" + _varint(len(body) + len(tail)) + body + tail
    )
    c = start_collector(spool_dir=str(spool_dir))
    wait_for(lambda: replayed(c, 3))
    assert c.query("SELECT tenant_id, request_token, count() FROM {db}.genai_spans GROUP BY ALL") == [
        ("acme", request_token, 3)
    ]
    assert stored(c) == [(3, Decimal("0.000285") * 3)] * 3


class Poison:
    """Storage that fails any batch holding a span named "poison": with an error nothing
    ``error`` (a type, or a function of the text), e.g. refused (PermanentError, as
    storage.errors classifies it) or "not now" (ConnectionError)."""

    def __init__(self, error: type[Exception]):
        self.error = error

    def wrap(self, write):
        def faulty(batch):
            if b"poison" in batch.data:
                raise self.error("storage cannot take this batch")
            return write(batch)

        return faulty


def export(c, spans):
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    with grpc.insecure_channel(c.grpc_target) as channel:
        return trace_service_pb2_grpc.TraceServiceStub(channel).Export(sdk_request(spans), timeout=60)


def rejected_batches(tmp_path) -> list[str]:
    return [n for n in os.listdir(tmp_path / "spool" / "rejected") if n.endswith(".batch")]


def metric(c, name: str) -> float:
    lines = httpx.get(c.http_url + "/metrics").text.splitlines()
    return float(next(text for text in lines if text.startswith(name + " ")).split()[1])


def test_storage_refusing_every_insert_while_it_answers_queries_sets_nothing_aside(start_collector, tmp_path):
    """ClickHouse under TOO_MANY_PARTS, a read-only replica or a full disk: inserts fail while
    SELECT 1 answers. Batches wait in the spool for as long as it lasts (here past two rounds
    of MAX_FAILURES replays, each probing request by request), then are stored once."""
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap)
    outage.down = True
    assert post(c, 3).status_code == 200 and post(c, 4).status_code == 200
    time.sleep(2 * MAX_FAILURES + 2)
    assert rejected_batches(tmp_path) == [] and len(Spool(str(tmp_path / "spool"), 1 << 30)) == 2
    outage.down = False
    wait_for(lambda: replayed(c, 7))
    assert stored(c) == [(7, Decimal("0.000285") * 7)] * 3
    assert rejected_batches(tmp_path) == []
    assert 'otel_costs_spool_spans_total{event="rejected"}' not in httpx.get(c.http_url + "/metrics").text


class Bug:
    """A bug in our own write path (a TypeError raised by our code, not by storage) for any
    batch holding a span named "poison", until ``fixed``."""

    def __init__(self):
        self.fixed = False

    def wrap(self, write):
        def buggy(batch):
            if b"poison" in batch.data and not self.fixed:
                raise TypeError("unsupported operand type(s) for +: 'int' and 'str' (injected)")
            return write(batch)

        return buggy


def test_a_bug_in_the_write_path_keeps_the_batch_and_fails_loudly(start_collector, tmp_path, caplog):
    """Never taken for bad data: the request is acknowledged (spooled), the error logged with
    its traceback and counted, nothing set aside however often it fails; once the bug is gone
    the batch and everything queued behind it are stored."""
    bug = Bug()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=bug.wrap)
    export(c, [{**SEMCONV, "_name": "poison"}])  # acknowledged once spooled
    export(c, [dict(SEMCONV)] * 3)  # queued behind it, in order
    time.sleep(MAX_FAILURES + 2)
    assert rejected_batches(tmp_path) == [] and stored(c)[0][0] in (None, 0)
    assert metric(c, "otel_costs_pipeline_bugs_total") >= MAX_FAILURES
    loud = [r for r in caplog.records if "error in otel-costs itself" in r.getMessage()]
    assert loud and loud[0].exc_info and "TypeError" in caplog.text
    bug.fixed = True
    wait_for(lambda: replayed(c, 4))
    assert stored(c) == [(4, Decimal("0.000285") * 4)] * 3 and rejected_batches(tmp_path) == []


def test_a_request_that_fails_while_its_batch_mates_are_stored_alone_is_set_aside(start_collector, tmp_path):
    """Storage fails any batch holding the poison request, with an error that says "not now",
    again and again while it answers queries: after MAX_FAILURES replays the batch's requests
    are written one by one; the good ones are stored, the one that keeps failing alone while
    they were stored is set aside with the reason and answered as rejected."""
    from concurrent.futures import ThreadPoolExecutor

    c = start_collector(
        spool_dir=str(tmp_path / "spool"), wrap_write=Poison(ConnectionError).wrap, batch_max_age_ms=1000
    )
    with ThreadPoolExecutor(3) as pool:  # in one batch, most likely
        answers = [pool.submit(export, c, spans) for spans in ([{**SEMCONV, "_name": "poison"}], [dict(SEMCONV)] * 3)]
        answers.append(pool.submit(export, c, [dict(SEMCONV)] * 3))
        assert all(a.result().partial_success.rejected_spans == 0 for a in answers)  # all acknowledged (spooled)
    wait_for(lambda: stored(c)[0][0] == 6, timeout=60)
    wait_for(lambda: len(Spool(str(tmp_path / "spool"), 1 << 30)) == 0)
    assert stored(c) == [(6, Decimal("0.000285") * 6)] * 3
    rejected = tmp_path / "spool" / "rejected"
    reasons = [(rejected / n).read_text() for n in os.listdir(rejected) if n.endswith(".reason.txt")]
    assert len(reasons) == 1 and "while it stored its batch-mates" in reasons[0], reasons
    assert 'otel_costs_spool_spans_total{event="rejected"} 1.0' in httpx.get(c.http_url + "/metrics").text


def test_a_request_storage_refuses_does_not_take_its_batch_mates_down(start_collector, tmp_path):
    """Refused as invalid: the batch is written request by request; the good requests are
    stored and answered as such, the bad one answered as rejected (the exporter does not
    resend it) and kept in rejected/."""
    from concurrent.futures import ThreadPoolExecutor

    c = start_collector(
        spool_dir=str(tmp_path / "spool"), wrap_write=Poison(PermanentError).wrap, batch_max_age_ms=1000
    )
    with ThreadPoolExecutor(3) as pool:  # in one batch, most likely
        bad = pool.submit(export, c, [{**SEMCONV, "_name": "poison"}] * 2)
        good = [pool.submit(export, c, [dict(SEMCONV)] * 2) for _ in range(2)]
        answers = [f.result() for f in good]
        refused = bad.result()
    assert refused.partial_success.rejected_spans == 2
    assert "storage cannot take this batch" in refused.partial_success.error_message
    assert all(a.partial_success.rejected_spans == 0 for a in answers)
    assert stored(c) == [(4, Decimal("0.000285") * 4)] * 3
    assert len([n for n in os.listdir(tmp_path / "spool" / "rejected") if n.endswith(".batch")]) == 1


def test_health_says_when_storage_has_not_taken_the_spool_and_written_counts_only_clickhouse(start_collector, tmp_path):
    """While storage is down, spans are acknowledged (spooled) but not written: the written
    counter waits for the replay, and /healthz turns 503 with the reason once the oldest
    spooled batch waited longer than OTEL_COSTS_HEALTH_SPOOL_AGE_S; healthy again after."""
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap, health_spool_age_s=1)

    def metric(name):
        lines = httpx.get(c.http_url + "/metrics").text.splitlines()
        line = next(text for text in lines if text.startswith(name + " "))
        return float(line.split()[1])

    assert httpx.get(c.http_url + "/healthz").status_code == 200
    outage.down = True
    assert post(c, 4).status_code == 200
    assert metric("otel_costs_spans_written_total") == 0
    wait_for(lambda: httpx.get(c.http_url + "/healthz").status_code == 503)
    health = httpx.get(c.http_url + "/healthz").json()
    assert health["status"] == "unhealthy" and "spooled batch has waited" in health["problems"][0]
    assert metric("otel_costs_spool_oldest_seconds") > 1
    outage.down = False
    wait_for(lambda: replayed(c, 4))
    wait_for(lambda: httpx.get(c.http_url + "/healthz").status_code == 200)
    assert metric("otel_costs_spans_written_total") == 4 and metric("otel_costs_spool_oldest_seconds") == 0


def test_entries_the_collector_did_not_write_do_not_stop_start_up(start_collector, tmp_path):
    """A dangling symlink named like a batch, or a directory named *.batch / *.inflight, in
    the spool stopped start-up; they are moved to rejected/ and the collector serves."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "00000000000000000001.batch").symlink_to(tmp_path / "nowhere")
    (spool / "00000000000000000002.batch").mkdir()
    (spool / "00000000000000000003.inflight").mkdir()
    c = start_collector(spool_dir=str(spool))
    assert post(c, 2).status_code == 200
    assert stored(c)[0] == (2, Decimal("0.000285") * 2)
    assert sorted(os.listdir(spool / "rejected")) == [
        "00000000000000000001.batch",
        "00000000000000000002.batch",
        "00000000000000000003.inflight",
    ]
