"""Durable before acknowledged: batches storage cannot take are spooled (fsynced) and
replayed in order, also after a restart, each counted once."""

from __future__ import annotations

import os
import time
from decimal import Decimal

import httpx
import pytest

from collector.mapping import map_request
from collector.spool import Spool, SpoolFull, is_invalid_batch
from otel_costs.pricing import Pricer

from .spans import SEMCONV, sdk_request

PROTO = {"Content-Type": "application/x-protobuf"}


def rows(n=3, **extra):
    return map_request(sdk_request([dict(SEMCONV, **extra) for _ in range(n)]), Pricer()).rows


def test_spool_round_trip_is_exact_and_ordered(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=10 << 20)
    first, second = rows(2, **{"otel_costs.tag.plan": "pro"}), rows(3)
    spool.append(first, "t1")
    spool.append(second, "t2")
    name, back, token = spool.oldest()
    assert token == "t1" and back.data == first.data  # Decimals, maps, ints all exact
    spool.remove(name)
    assert spool.oldest()[2] == "t2"
    reopened = Spool(str(tmp_path), max_bytes=10 << 20)  # as after a restart
    assert len(reopened) == 1 and reopened.bytes == spool.bytes > 0


def test_spool_is_bounded(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    with pytest.raises(SpoolFull):
        for _ in range(1000):
            spool.append(rows(20), "t")
    assert spool.bytes <= 1 << 20


def test_unreadable_spool_file_is_moved_aside(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    spool.append(rows(1), "t")
    (name,) = [n for n in os.listdir(tmp_path) if n.endswith(".batch.json")]
    (tmp_path / name).write_text("{broken")
    assert spool.oldest() is None
    assert name in os.listdir(tmp_path / "rejected")
    assert "unreadable" in (tmp_path / "rejected" / (name + ".reason.txt")).read_text()


@pytest.mark.parametrize(
    "error, invalid",
    [(ConnectionError("refused"), False), (TimeoutError(), False),
     (Exception("Code: 53. DB::Exception: Type mismatch"), True),
     (Exception("Code: 241. DB::Exception: Memory limit exceeded"), False), (TypeError("bad value"), True)],
)
def test_invalid_versus_unavailable(error, invalid):
    assert is_invalid_batch(error) is invalid


class Outage:
    """Fault injection: storage writes fail while ``down``."""

    def __init__(self):
        self.down = False
        self.refuse = False

    def wrap(self, write):
        def faulty(batch, token=None):
            if self.down:
                raise ConnectionError("ClickHouse is down (simulated)")
            if self.refuse:
                raise Exception("Code: 53. DB::Exception: Type mismatch (simulated)")
            return write(batch, token)
        return faulty


def post(c, n):
    return httpx.post(c.http_url + "/v1/traces", content=sdk_request([dict(SEMCONV)] * n).SerializeToString(),
                      headers=PROTO, timeout=30)


def stored(c):
    return [c.query(f"SELECT sum({n}), sum(cost_total) FROM {{db}}.{t}")[0]
            for t, n in (("genai_spans", "1"), ("genai_costs_hourly", "calls"), ("genai_costs_daily", "calls"))]


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
    wait_for(lambda: (stored(c)[0][0] or 0) == 10)
    cost = Decimal("0.000285") * 10
    assert stored(c) == [(10, cost)] * 3
    time.sleep(1.5)  # the replayer does not write anything twice
    assert stored(c) == [(10, cost)] * 3
    text = httpx.get(c.http_url + "/metrics").text
    assert 'otel_costs_spool_rows_total{event="spooled"} 10.0' in text
    assert 'otel_costs_spool_rows_total{event="replayed"} 10.0' in text


def test_spool_survives_a_restart(start_collector, tmp_path):
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap)
    outage.down = True
    assert post(c, 5).status_code == 200
    c.stop()  # storage still down: the batch stays on disk
    assert len(Spool(str(tmp_path / "spool"), 1 << 30)) == 1
    again = start_collector(spool_dir=str(tmp_path / "spool"))
    wait_for(lambda: (stored(again)[0][0] or 0) == 5)
    assert stored(again) == [(5, Decimal("0.000285") * 5)] * 3


def test_batch_refused_as_invalid_is_moved_aside_not_replayed_forever(start_collector, tmp_path):
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap)
    outage.down = True
    assert post(c, 2).status_code == 200
    outage.down, outage.refuse = False, True
    wait_for(lambda: os.listdir(tmp_path / "spool" / "rejected"))
    reason = [n for n in os.listdir(tmp_path / "spool" / "rejected") if n.endswith(".reason.txt")]
    assert "Type mismatch" in (tmp_path / "spool" / "rejected" / reason[0]).read_text()
    assert len(Spool(str(tmp_path / "spool"), 1 << 30)) == 0


def test_full_spool_turns_into_backpressure(start_collector, tmp_path):
    outage = Outage()
    c = start_collector(spool_dir=str(tmp_path / "spool"), wrap_write=outage.wrap, max_spool_bytes=1 << 20)
    outage.down = True
    answers = [post(c, 200).status_code for _ in range(30)]
    assert 200 in answers and 503 in answers  # stored on disk until full, then "retry later"
    assert Spool(str(tmp_path / "spool"), 1 << 30).bytes <= 1 << 20


def test_batch_in_flight_at_a_crash_is_replayed_after_it(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=10 << 20)
    batch = rows(4)
    name = spool.begin(batch, "t-inflight")
    assert len(spool) == 0  # written ahead, not spooled: the replayer leaves it alone
    (tmp_path / "00000000000000000099.inflight.json.tmp").write_bytes(b'{"tok')  # torn write
    reopened = Spool(str(tmp_path), max_bytes=10 << 20)  # the restart after the crash
    assert len(reopened) == 1 and not any(n.endswith((".tmp", ".inflight.json")) for n in os.listdir(tmp_path))
    spooled, back, token = reopened.oldest()
    assert token == "t-inflight" and back.data == batch.data and spooled == name.replace("inflight", "batch")
    assert reopened.request_tokens() == set(batch.column("request_token"))


def test_finished_and_kept_in_flight_batches(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=10 << 20)
    spool.finish(spool.begin(rows(1), "done"))
    assert os.listdir(tmp_path) == ["rejected"]
    kept = spool.keep(spool.begin(rows(2), "failed"))
    assert len(spool) == 1 and spool.bytes == os.path.getsize(tmp_path / kept) and spool.oldest()[2] == "failed"
