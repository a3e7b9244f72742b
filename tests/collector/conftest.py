"""Collector fixtures: a real collector (grpcio + aiohttp on loopback) over real storage.

Storage is embedded chDB; with ``CLICKHOUSE_URL`` set, the storage-parametrised tests run
against that ClickHouse server too. chDB holds one data path per process, so the whole
session shares one path and each test gets its own database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import uuid

import pytest

from otel_costs_collector.config import CollectorConfig
from otel_costs_collector.server import Collector

_counter = itertools.count()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory):
    return str(tmp_path_factory.mktemp("chdb") / "data")


STORAGES = [
    "chdb",
    pytest.param(
        "server", marks=pytest.mark.skipif(not os.environ.get("CLICKHOUSE_URL"), reason="CLICKHOUSE_URL not set")
    ),
]


@pytest.fixture(params=STORAGES)
def storage(request, chdb_path):
    """The --storage value for this test: embedded chDB, or the server in CLICKHOUSE_URL."""
    return chdb_path if request.param == "chdb" else os.environ["CLICKHOUSE_URL"]


@pytest.fixture
def database():
    return f"t{next(_counter)}_{uuid.uuid4().hex[:8]}"


class Running:
    """A collector on a background event loop, driven from synchronous tests."""

    def __init__(self, config: CollectorConfig, wrap_write=None, clock=None):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.collector = Collector(config, wrap_write=wrap_write, clock=clock)
        self.call(self.collector.start())

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.collector.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.collector.http_port}"

    @property
    def db(self) -> str:
        return self.collector.config.database

    def query(self, sql: str, **params):
        return self.collector.client.query(sql.format(db=self.db), parameters=params or None).result_rows

    def stop(self):
        if self.loop.is_closed():
            return
        if self.collector.client is not None:
            self.call(self.collector.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def start_collector(storage, database, tmp_path):
    started: list[Running] = []

    def start(wrap_write=None, clock=None, **overrides) -> Running:
        fields = dict(
            storage=storage,
            database=database,
            grpc_port=0,
            http_port=0,
            batch_max_age_ms=100,
            log_format="text",
            spool_dir=str(tmp_path / "spool"),
        )
        fields.update(overrides)
        started.append(Running(CollectorConfig(**fields), wrap_write, clock))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def collector(start_collector):
    return start_collector()
