"""The wiring (otel_costs_collector/server.py): a start that fails releases what it started,
in reverse order, and the same storage and spool start again."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import threading

import httpx
import pytest

from otel_costs_collector import server
from otel_costs_collector.config import CollectorConfig
from otel_costs_collector.server import Collector


async def _port_taken(*args, **kwargs):
    # What binding raises when another process took the port between the start-up check and the bind.
    raise OSError(98, "[Errno 98] address already in use (taken after the start-up check)")


@pytest.mark.parametrize("map_workers", [0, 1], ids=["mapping in process", "a mapping worker"])
def test_a_failed_start_releases_what_it_started(
    storage, database, tmp_path, monkeypatch, start_collector, map_workers
):
    fields = dict(storage=storage, database=database, spool_dir=str(tmp_path / "spool"), log_format="text")
    threads_before = set(threading.enumerate())
    children_before = set(multiprocessing.active_children())
    monkeypatch.setattr(server, "serve_http", _port_taken)
    collector = Collector(CollectorConfig(grpc_port=0, http_port=0, map_workers=map_workers, **fields))
    with pytest.raises(OSError, match="address already in use"):
        asyncio.run(collector.start())
    # The gRPC port it had bound is free again; no thread or mapping process is left behind.
    assert collector.grpc_port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", collector.grpc_port))
    left = [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert not [name for name in left if name.startswith("otel-costs")], left
    assert set(multiprocessing.active_children()) <= children_before
    assert collector.client is None
    monkeypatch.undo()
    # The same storage, database and spool serve a collector again.
    again = start_collector(map_workers=map_workers)
    assert httpx.get(again.http_url + "/healthz").status_code == 200
