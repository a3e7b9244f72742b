"""Mapping in worker processes: the same payload and outcomes as in the collector's process,
a damaged batch refused as such, a dead worker replaced (its batch retryable), and no worker
left behind when the collector is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from otel_costs.pricing import Pricer
from otel_costs_collector.pipeline import batch_file
from otel_costs_collector.pipeline.batch_writer import map_rows
from otel_costs_collector.pipeline.map_workers import MapWorkers, WorkerLost

from ..spans import SEMCONV, sdk_request

BARE = {k: v for k, v in SEMCONV.items() if not k.startswith("otel_costs.")}


def batch() -> bytes:
    bodies = [
        sdk_request([dict(SEMCONV), dict(BARE), {"http.request.method": "GET"}]).SerializeToString(),
        sdk_request([dict(BARE)], priced=False).SerializeToString(),
    ]
    return batch_file.encode(
        [batch_file.Record(b, tenant, f"tok-{i}") for i, (b, tenant) in enumerate(zip(bodies, [None, "acme"]))]
    )


@pytest.fixture
def workers():
    pool = MapWorkers(1, None)
    yield pool
    pool.close()


def test_a_worker_maps_exactly_as_the_collector_process(workers):
    data = batch()
    mapped = workers.map(data)
    assert mapped == map_rows(data, Pricer())
    rows, outcomes = mapped.rows, mapped.outcomes
    assert len(rows) == 3 and [(o.received, o.accepted, o.non_genai) for o in outcomes] == [(3, 2, 1), (1, 1, 0)]


def test_a_damaged_batch_is_refused_as_such(workers):
    with pytest.raises(ValueError, match="truncated"):
        workers.map(batch()[:-7])


def test_a_dead_worker_is_replaced_and_its_batch_can_be_retried(workers):
    pid = workers._pool.submit(os.getpid).result()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(WorkerLost):  # a ConnectionError: retried, then spooled
        for _ in range(50):  # until the pool has noticed
            workers.map(batch())
            time.sleep(0.1)
    assert len(workers.map(batch())[0]) == 3


def test_workers_leave_with_a_killed_collector():
    code = (
        "import os, sys; from otel_costs_collector.pipeline.map_workers import MapWorkers; w = MapWorkers(2, None); "
        "print(*sorted({w._pool.submit(os.getpid).result() for _ in range(20)}), flush=True); "
        "os.kill(os.getpid(), 9)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pids = [int(p) for p in out.stdout.split()]
    assert pids and out.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if running(p)]


def running(pid: int) -> bool:
    """Alive, not a zombie (the machine's init may be slow to reap orphans)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
