"""The write-ahead log: a batch in flight at a crash is spooled on the next start (and
replayed); one whose insert returned is forgotten, one whose insert failed is spooled."""

from __future__ import annotations

import os

from otel_costs_collector.pipeline.spool import Spool
from otel_costs_collector.pipeline.write_ahead import WriteAheadLog

from .test_spool import batch


def test_batch_in_flight_at_a_crash_is_replayed_after_it(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=10 << 20)
    first, written = batch(1), batch(4, requests=3)
    spool.append(first)
    WriteAheadLog(spool).begin(written)
    assert len(spool) == 1  # written ahead, not spooled: the replayer leaves it alone
    (tmp_path / "00000000000000000099.inflight.tmp").write_bytes(b"otel-co")  # torn write
    reopened = Spool(str(tmp_path), max_bytes=10 << 20)  # the restart after the crash
    WriteAheadLog(reopened)
    assert len(reopened) == 2 and not any(n.endswith((".tmp", ".inflight")) for n in os.listdir(tmp_path))
    name, back = reopened.oldest()
    reopened.remove(name)
    assert back == first and reopened.oldest()[1] == written  # queued behind what was spooled
    assert reopened.request_tokens() == set(written.requests)
    assert reopened.bytes == os.path.getsize(tmp_path / reopened.oldest()[0])


def test_finished_and_kept_in_flight_batches(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=10 << 20)
    log = WriteAheadLog(spool)
    log.finish(log.begin(batch(1)))
    assert os.listdir(tmp_path) == ["rejected"]
    failed = batch(2)
    kept = log.keep(log.begin(failed))
    assert len(spool) == 1 and spool.bytes == os.path.getsize(tmp_path / kept) and spool.oldest()[1] == failed
    assert spool.append(batch(1)) > kept  # numbers keep growing
