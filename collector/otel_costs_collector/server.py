"""Wires the collector: storage → schema → writer → batcher → receivers, and stops it
gracefully (stop accepting, flush, close)."""

from __future__ import annotations

import asyncio
import logging
import os
import os.path
import signal
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from aiohttp import web

from otel_costs import __version__
from otel_costs.pricing import Pricer
from otel_costs_collector.alerting import Webhook
from otel_costs_collector.auth import TokenAuth
from otel_costs_collector.budgets.alerts import BudgetEvaluator
from otel_costs_collector.budgets.api import add_budget_routes
from otel_costs_collector.config import CollectorConfig
from otel_costs_collector.dashboard.routes import add_dashboard_routes
from otel_costs_collector.logs import configure_logging
from otel_costs_collector.mapping.calls import CallIndex
from otel_costs_collector.memory import return_large_buffers
from otel_costs_collector.metrics import Metrics
from otel_costs_collector.periodic import Periodic
from otel_costs_collector.pipeline.batch_writer import BatchWriter, WriterPool, assess, refused
from otel_costs_collector.pipeline.batcher import Batcher
from otel_costs_collector.pipeline.held import HeldCalls
from otel_costs_collector.pipeline.map_workers import MapWorkers
from otel_costs_collector.pipeline.retry import Retrying
from otel_costs_collector.pipeline.spool import Spool
from otel_costs_collector.pipeline.spooling import Spooling
from otel_costs_collector.pipeline.types import BatchSink, WriteFunction
from otel_costs_collector.pipeline.write_ahead import WriteAheadLog
from otel_costs_collector.preflight import check_startup
from otel_costs_collector.receive.connections import raise_open_files_limit, serve_http
from otel_costs_collector.receive.dedup import RecentRequests, load_recent_tokens
from otel_costs_collector.receive.ingest import Ingest
from otel_costs_collector.receive.otlp_grpc import start_grpc
from otel_costs_collector.receive.otlp_http import build_app
from otel_costs_collector.reconcile.api import add_reconcile_routes
from otel_costs_collector.reconcile.puller import Reconciler
from otel_costs_collector.reports.api import add_query_routes
from otel_costs_collector.sql import load as sql
from otel_costs_collector.storage.client import clear_owner, open_client, write_owner
from otel_costs_collector.storage.insert import ClickHouseWriter
from otel_costs_collector.storage.schema import migrate
from otel_costs_collector.tls import ssl_context, tls_pems

__all__ = ["Collector", "run"]

_log = logging.getLogger("otel_costs.collector")
#: How long a stop waits for in-flight requests before cancelling them.
grace_seconds = 10.0


def _no_wrap(write: Callable[[bytes, str], Any]) -> Callable[[bytes, str], Any]:
    return write


class Collector:
    """One collector. ``await start()`` then ``await stop()``; not restartable.

    After ``start``, ``grpc_port`` and ``http_port`` hold the bound ports and ``client``
    the clickhouse-connect client for queries (the writers have connections of their own;
    chDB: handles on the one engine this process owns).
    """

    def __init__(
        self,
        config: CollectorConfig,
        *,
        wrap_write: Callable[[Any], Any] | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        """``wrap_write`` wraps the storage write (fault injection in tests); ``clock`` is
        the budget evaluator's (aware UTC datetimes; tests move it)."""
        self.config = config.validate()
        self._wrap_write = wrap_write or _no_wrap
        self._store: Spooling | None = None
        self.auth: TokenAuth | None = None  # loaded by start()
        self.metrics = Metrics()
        self.client: Any = None
        self._writer_clients: list[Any] = []
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: Any = None
        self._http: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._batcher: Batcher | None = None
        self._map_workers: MapWorkers | None = None
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.budgets: BudgetEvaluator | None = None
        self.reconciler: Reconciler | None = None
        self._periodic: dict[str, Periodic] = {}  # "budgets", "reconcile": jobs run every few seconds
        self.calls: HeldCalls | None = None
        self._spool: Spool | None = None
        self._settler: threading.Thread | None = None
        self._settle_write: Callable[[list[list[Any]], str], None] | None = None
        self._settle_stop = threading.Event()

    async def start(self) -> None:
        """Raises StartupError (before anything is created) when the data directory is held,
        a port is taken, or the TLS or tokens files do not load."""
        cfg = self.config
        self.auth = check_startup(cfg)
        pricer = Pricer(cfg.prices_file)
        self.client = await asyncio.to_thread(open_client, cfg.target)
        applied = await asyncio.to_thread(
            migrate, self.client, db=cfg.db, cluster=cfg.cluster, raw_ttl_days=cfg.raw_ttl_days
        )
        spool = Spool(str(cfg.spool_dir), cfg.max_spool_bytes)
        write_ahead = WriteAheadLog(spool)  # spools what a crash left in flight
        if cfg.map_workers:
            self._map_workers = await asyncio.to_thread(MapWorkers, cfg.map_workers, cfg.prices_file, cfg.raw_ttl_days)
        mapper = self._map_workers.map if self._map_workers is not None else None
        index = CallIndex(cfg.attribution_wait_s)
        loaded = await asyncio.to_thread(self._recent_calls, index)
        self.calls = await asyncio.to_thread(HeldCalls, index, os.path.join(str(cfg.spool_dir), "calls"))
        writers = []
        for _ in range(cfg.writers + 1):
            # Each writer has its own connection (chDB: its own handle on the one engine), so
            # batches are written concurrently and queries never wait behind an insert.
            client = await asyncio.to_thread(open_client, cfg.target)
            self._writer_clients.append(client)
        for client in self._writer_clients[1:]:
            writers.append(BatchWriter(client, cfg.db, pricer, mapper, self.calls, cfg.raw_ttl_days))
        self._settle_write = ClickHouseWriter(self._writer_clients[0], cfg.db).write
        self._settler = threading.Thread(
            target=self._settle_calls, args=(self._settle_write,), name="otel-costs-calls", daemon=True
        )
        self._settler.start()
        pool = WriterPool(writers)
        metrics = self.metrics

        def spool_event(kind: str, spans: int) -> None:
            if kind == "written":  # rows a replay put in ClickHouse
                metrics.spans_written.inc(spans)
                return
            if kind == "bug":  # a write failed in our own code (logged with its traceback)
                metrics.pipeline_bugs.inc(spans)
                return
            metrics.spool_spans.labels(kind).inc(spans)
            metrics.spool_bytes.set(spool.bytes)

        metrics.spool_bytes.set(spool.bytes)
        metrics.calls_waiting.set_function(lambda: index.held_rows)
        metrics.calls_suspected.set_function(lambda: index.suspects)
        metrics.spool_oldest.set_function(spool.oldest_age)
        self._spool = spool
        # The write pipeline, inside out (otel_costs_collector/pipeline/types.py): map, count once and
        # insert on a free writer → retry what is not permanent → write ahead, spool what
        # storage cannot take now, replay it in order. The batcher calls the outermost.
        sink: BatchSink = pool
        if self._wrap_write is not _no_wrap:  # fault injection (tests, the fault harness)
            sink = WriteFunction(self._wrap_write(pool.write))
        self._store = Spooling(
            Retrying(sink),
            write_ahead,
            spool,
            lambda data: [replace(o, spooled=True) for o in assess(data, pricer, cfg.raw_ttl_days)],
            on_event=spool_event,
            refused=lambda data, reason: refused(data, pricer, reason),
            storage_ok=self._storage_answers,
        )
        self._batcher = Batcher(
            self._store,
            min_rows=cfg.batch_min_rows,
            max_age=cfg.batch_max_age_ms / 1000,
            max_queued_rows=cfg.max_queued_rows,
            on_flush=self.metrics.flushed,
            threads=cfg.writers,
        )
        recent = RecentRequests(cfg.dedup_window_s)
        recent.add(await asyncio.to_thread(load_recent_tokens, self.client, cfg.db, cfg.dedup_window_s))
        recent.add(spool.request_tokens())
        ingest = Ingest(self._batcher, pricer, self.metrics, recent, cfg.max_inflight_bytes, cfg.raw_ttl_days)
        open_files = raise_open_files_limit()
        # Two capped ports, the storage engine's files and the spool fit under the limit.
        per_port = max(16, min(cfg.max_connections, (open_files - 256) // 2))
        if per_port < cfg.max_connections:
            _log.warning(
                "open-files limit %d allows %d connections per port, below OTEL_COSTS_MAX_CONNECTIONS %d",
                open_files,
                per_port,
                cfg.max_connections,
            )
        self._grpc, self.grpc_port = await start_grpc(
            ingest,
            cfg.host,
            cfg.grpc_port,
            cfg.max_request_bytes,
            self.auth,
            tls_pems(self.config),
            max_connections=per_port,
            handshake_timeout_s=cfg.connection_timeout_s,
        )
        app = build_app(
            ingest,
            self.metrics,
            cfg.max_request_bytes,
            problems=self.problems,
            auth=self.auth,
            body_timeout_s=cfg.connection_timeout_s,
        )
        add_query_routes(app, lambda: self.client, cfg.db, self.auth)
        webhook = Webhook(str(cfg.budget_webhook_url), cfg.budget_webhook_format) if cfg.budget_webhook_url else None
        self.budgets = BudgetEvaluator(
            lambda: self.client, cfg.db, thresholds=cfg.budget_thresholds, webhook=webhook, clock=self._clock
        )
        budgets = self._periodic["budgets"] = Periodic(
            "budget evaluation", self.budgets.evaluate, cfg.budget_interval_s
        )
        add_budget_routes(app, self.budgets, cfg.budget_timezone, self.auth, wake=budgets.wake)
        settle = timedelta(hours=cfg.reconcile_settle_h)
        if cfg.reconcile_keys():
            self.reconciler = Reconciler(
                lambda: self.client,
                cfg.db,
                cfg.reconcile_keys(),
                bases=cfg.reconcile_bases(),
                band=cfg.reconcile_band,
                settle=settle,
                webhook=webhook,
                clock=self._clock,
            )
            self._periodic["reconcile"] = Periodic("reconciliation", self._reconcile, cfg.reconcile_interval_s)
        add_reconcile_routes(app, lambda: self.client, cfg.db, self.reconciler, self.auth, settle)
        add_dashboard_routes(app, lambda: self.client, cfg.db, self.budgets, self.auth, self.reconciler, settle)
        for job in self._periodic.values():
            job.start()
        # keepalive_timeout: aiohttp closes a connection that has not sent a request's
        # headers (from its start, or since its last answer) within it.
        # lingering_time: how long the unread rest of a refused body (408, 413) is drained
        # before the connection closes.
        self._http = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=grace_seconds,
            keepalive_timeout=cfg.connection_timeout_s,
            lingering_time=min(2.0, cfg.connection_timeout_s),
        )
        await self._http.setup()
        http_server = self._http.server
        assert http_server is not None
        metrics.connections.set_function(lambda: len(http_server.connections))
        self._listener = await serve_http(
            self._http,
            cfg.host,
            cfg.http_port,
            ssl_context(self.config),
            per_port,
            cfg.connection_timeout_s,
            metrics.connections_refused.inc,
        )
        self.http_port = self._listener.sockets[0].getsockname()[1]
        if cfg.target.kind == "chdb":
            write_owner(
                cfg.target.location,
                cfg.host,
                self.http_port,
                os.path.abspath(str(cfg.tls_cert_file)) if cfg.tls_cert_file else None,
            )
        scheme = "https" if cfg.tls_cert_file else "http"
        shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host
        dashboard = f"{scheme}://{shown}:{self.http_port}/"
        _log.info(
            "otel-costs %s collector started: OTLP gRPC on %s:%d, OTLP/HTTP on %s:%d, storage %s "
            "(database %s), dashboard %s",
            __version__,
            cfg.host,
            self.grpc_port,
            cfg.host,
            self.http_port,
            cfg.target.describe(),
            cfg.db,
            dashboard,
            extra={
                "fields": {
                    "version": __version__,
                    "grpc": f"{cfg.host}:{self.grpc_port}",
                    "http": f"{cfg.host}:{self.http_port}",
                    "storage": cfg.target.describe(),
                    "database": cfg.db,
                    "dashboard": dashboard,
                    "migrations_applied": applied,
                    "calls_loaded": loaded,
                }
            },
        )

    def problems(self) -> list[str]:
        """Why the collector is not healthy now (empty: it is): storage has not taken a
        spooled batch for longer than ``health_spool_age_s``."""
        age = self._spool.oldest_age() if self._spool is not None else 0.0
        limit = self.config.health_spool_age_s
        if age > limit:
            return [f"a spooled batch has waited {age:.0f} s for storage (OTEL_COSTS_HEALTH_SPOOL_AGE_S {limit} s)"]
        return []

    def _storage_answers(self) -> bool:
        """Whether storage answers a query now (a batch that keeps failing is then tried request by
        request, in case one of them is at fault)."""
        try:
            self.client.query("SELECT 1")
            return True
        except Exception:
            return False

    def _recent_calls(self, index: CallIndex) -> int:
        """Remember the calls stored in the last ``keep_s`` (a restart): returns how many."""
        rows = self.client.query(
            sql(__package__, "recent_calls", db=self.config.db),
            parameters={"window": int(index.keep_s), "limit": index.max_nodes},
        ).result_rows
        index.load(rows)
        return len(rows)

    def _settle_calls(self, write: Callable[[list[list[Any]], str], None]) -> None:
        """Store the calls whose wait for an ancestor is over, twice a second."""
        assert self.calls is not None
        failing = False
        while not self._settle_stop.wait(0.5):
            try:
                self.calls.settle(write)
                failing = False
            except Exception as exc:  # storage down: the rows stay journaled, tried again
                if not failing:
                    _log.error("storing calls that waited for attribution failed: %s", exc)
                failing = True

    async def evaluate_budgets_now(self) -> None:
        """One evaluation cycle, now (tests, and after budget changes)."""
        await self._periodic["budgets"].run_now()

    def _reconcile(self) -> float | None:
        assert self.reconciler is not None
        wait = self.reconciler.cycle()
        for provider, (_, rate) in self.reconciler.capture_rates.items():
            self.metrics.capture_rate.labels(provider).set(float(rate))
        return wait

    async def reconcile_now(self) -> None:
        """One reconciliation cycle, now (tests)."""
        await self._periodic["reconcile"].run_now()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, flush what is queued, answer in-flight requests, close storage.

        The three run together: in-flight requests wait for the flush that the batcher's
        close performs; requests arriving meanwhile are told to retry (UNAVAILABLE / 503).
        """
        for job in self._periodic.values():
            await job.stop()  # a cycle in progress uses the storage client closed below
        steps = []
        if self._grpc is not None:
            steps.append(self._grpc.stop(grace))
        if self._listener is not None:
            self._listener.close()  # stop accepting; cleanup() below closes the connections
        if self._http is not None:
            steps.append(self._http.cleanup())
        if self._batcher is not None:
            steps.append(asyncio.to_thread(self._batcher.close))
        await asyncio.gather(*steps)
        if self._listener is not None:
            await self._listener.wait_closed()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
        if self._settler is not None and self.calls is not None and self._settle_write is not None:
            self._settle_stop.set()
            await asyncio.to_thread(self._settler.join, 10)
            try:  # what was acknowledged is stored, attributed or not (a crash keeps the journal)
                stored = await asyncio.to_thread(self.calls.settle, self._settle_write, True)
                if stored:
                    _log.info("stopping: stored %d calls that were waiting for attribution", stored)
            except Exception as exc:
                _log.error("calls waiting for attribution stay journaled until the next start: %s", exc)
        if self._map_workers is not None:
            await asyncio.to_thread(self._map_workers.close)
            self._map_workers = None
        if self.config.target.kind == "chdb":
            clear_owner(self.config.target.location)
        for client in self._writer_clients:
            await asyncio.to_thread(client.close)
        self._writer_clients = []
        if self.client is not None:
            await asyncio.to_thread(self.client.close)
            self.client = None
        _log.info("collector stopped")


async def _serve(config: CollectorConfig, wrap_write: Callable[[Any], Any] | None) -> None:
    collector = Collector(config, wrap_write=wrap_write)
    await collector.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _log.info("stopping: flushing queued spans")
    await collector.stop()


def run(config: CollectorConfig, wrap_write: Callable[[Any], Any] | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully."""
    configure_logging(config.log_format)
    return_large_buffers()
    asyncio.run(_serve(config, wrap_write))
