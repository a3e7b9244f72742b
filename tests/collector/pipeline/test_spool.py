"""The spool's files: exact round trip, in order, bounded in bytes; files it cannot read or did
not write are moved aside, never misread."""

from __future__ import annotations

import os

import pytest

from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.spool import Spool, SpoolFull
from otel_costs_collector.pipeline.types import Batch

from ..spans import SEMCONV, sdk_request


def batch(n=3, requests=1, tenant=None, **extra):
    """A batch of ``requests`` requests of ``n`` spans each."""
    records = []
    for _ in range(requests):
        body = sdk_request([dict(SEMCONV, **extra) for _ in range(n)]).SerializeToString()
        records.append(batch_file.Record(body, tenant, batch_file.request_token(body, tenant)))
    return Batch.of(records, n * requests)


def test_spool_round_trip_is_exact_and_ordered(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=10 << 20)
    first, second = batch(2, requests=2, tenant="acme", **{"otel_costs.tag.plan": "pro"}), batch(3)
    spool.append(first)
    spool.append(second)
    name, back = spool.oldest()
    assert back == first  # the bytes as received, both tokens, the span count
    assert [(tenant, t) for _, tenant, t in batch_file.decode(back.data)] == [("acme", t) for t in first.requests]
    spool.remove(name)
    assert spool.oldest()[1] == second
    reopened = Spool(str(tmp_path), max_bytes=10 << 20)  # as after a restart
    assert len(reopened) == 1 and reopened.bytes == spool.bytes > 0


def test_spool_is_bounded(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    with pytest.raises(SpoolFull):
        for _ in range(1000):
            spool.append(batch(20))
    assert spool.bytes <= 1 << 20


def test_unreadable_spool_file_is_moved_aside(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    spool.append(batch(1))
    (name,) = [n for n in os.listdir(tmp_path) if n.endswith(".batch")]
    (tmp_path / name).write_bytes((tmp_path / name).read_bytes()[:-5])  # torn framing
    assert spool.oldest() is None
    assert name in os.listdir(tmp_path / "rejected")
    assert "unreadable" in (tmp_path / "rejected" / (name + ".reason.txt")).read_text()


def test_spool_of_an_earlier_version_is_moved_aside_not_misread(tmp_path):
    (tmp_path / "00000000000000000007.batch.json").write_text('{"token": "t", "columns": [], "data": []}')
    spool = Spool(str(tmp_path), max_bytes=10 << 20)
    assert len(spool) == 0 and spool.oldest() is None
    assert "earlier version" in (tmp_path / "rejected" / "00000000000000000007.batch.json.reason.txt").read_text()
    assert spool.append(batch(1)) == "00000000000000000008.batch"  # never reuses its number
