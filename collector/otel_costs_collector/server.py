"""Wires the collector — storage, schema, the write pipeline's stages, the receivers, the
readers — and stops it gracefully, in reverse order (stop accepting, flush, close)."""

from __future__ import annotations

import asyncio
import logging
import os
import os.path
import signal
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from typing import Any, Awaitable, Callable

from aiohttp import web

from otel_costs import __version__
from otel_costs.pricing import Pricer
from otel_costs_collector.anomalies.detector import AnomalyDetector
from otel_costs_collector.auth import TokenAuth
from otel_costs_collector.budgets.alerts import BudgetEvaluator
from otel_costs_collector.config import CollectorConfig
from otel_costs_collector.logs import configure_logging
from otel_costs_collector.mapping.calls import CallIndex
from otel_costs_collector.memory import quiet_gc, return_large_buffers
from otel_costs_collector.metrics import Metrics
from otel_costs_collector.pipeline.batch_writer import Insert, WriterPool, assess, refused, writer
from otel_costs_collector.pipeline.batcher import Batcher
from otel_costs_collector.pipeline.held import HeldCalls
from otel_costs_collector.pipeline.map_workers import MapWorkers
from otel_costs_collector.pipeline.retry import Retrying
from otel_costs_collector.pipeline.settling import Settling
from otel_costs_collector.pipeline.spool import Spool
from otel_costs_collector.pipeline.spooling import Spooling
from otel_costs_collector.pipeline.types import BatchStage, WriteFunction
from otel_costs_collector.pipeline.write_ahead import WriteAheadLog
from otel_costs_collector.preflight import check_startup
from otel_costs_collector.readers import Readers
from otel_costs_collector.receive.connections import raise_open_files_limit, serve_http
from otel_costs_collector.receive.dedup import RecentRequests, load_recent_tokens
from otel_costs_collector.receive.ingest import Ingest
from otel_costs_collector.receive.otlp_grpc import start_grpc
from otel_costs_collector.receive.otlp_http import build_app
from otel_costs_collector.reconcile.puller import Reconciler
from otel_costs_collector.reprice.run import prices_label, recover
from otel_costs_collector.revenue.puller import RevenuePuller
from otel_costs_collector.sql import load as sql
from otel_costs_collector.storage.client import clear_owner, open_client, write_owner
from otel_costs_collector.storage.schema import migrate
from otel_costs_collector.tls import ssl_context, tls_pems

__all__ = ["Collector", "run"]

_log = logging.getLogger("otel_costs.collector")
#: How long a stop waits for in-flight requests before cancelling them.
grace_seconds = 10.0


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
        """``wrap_write`` wraps the batch stages' ``write(batch)`` (fault injection in tests);
        ``clock`` is the budget evaluator's (aware UTC datetimes; tests move it)."""
        self.config = config.validate()
        self._wrap_write = wrap_write
        self.auth: TokenAuth | None = None  # loaded by start()
        self.metrics = Metrics()
        self.client: Any = None
        self.grpc_port = 0
        self.http_port = 0
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.budgets: BudgetEvaluator | None = None
        self.reconciler: Reconciler | None = None
        self.revenue: RevenuePuller | None = None  # pulls Stripe when a key is set
        self.anomalies: AnomalyDetector | None = None
        self.readers: Readers | None = None  # wired by start()
        self.calls: HeldCalls | None = None
        self._spool: Spool | None = None
        self._owner_written = False
        self._prices = ""  # the price table new calls are priced with (set by start())
        self._grace = 5.0
        # What start() started, released in reverse order by stop() (or by a start that fails).
        self._started = AsyncExitStack()

    async def start(self) -> None:
        """Raises StartupError (before anything is created) when the data directory is held,
        a port is taken, or the TLS or tokens files do not load; any other failure releases
        what was started (threads, processes, connections) before it is raised."""
        self.auth = check_startup(self.config)
        try:
            await self._start(self._started)
        except BaseException:
            await self._started.aclose()
            raise

    async def _start(self, started: AsyncExitStack) -> None:
        cfg = self.config
        pricer = Pricer(cfg.prices_file)
        self.client = await asyncio.to_thread(open_client, cfg.target)
        started.push_async_callback(self._close_client)
        started.callback(self._clear_owner)  # released after everything that writes
        applied = await asyncio.to_thread(
            migrate, self.client, db=cfg.db, cluster=cfg.cluster, raw_ttl_days=cfg.raw_ttl_days
        )
        self._prices = prices_label(pricer)
        if not cfg.cluster:  # a re-price this collector was running when it was killed: finished or rolled back
            await asyncio.to_thread(recover, self.client, cfg.db)
        index = CallIndex(cfg.attribution_wait_s)
        loaded = await asyncio.to_thread(self._recent_calls, index)
        spool = self._spool = Spool(str(cfg.spool_dir), cfg.max_spool_bytes)
        write_ahead = WriteAheadLog(spool)  # spools what a crash left in flight
        self.calls = calls = await asyncio.to_thread(
            HeldCalls, index, os.path.join(str(cfg.spool_dir), "calls"), pricer
        )
        batcher = await self._pipeline(started, pricer, spool, write_ahead, calls)
        recent = RecentRequests(cfg.dedup_window_s)
        recent.add(await asyncio.to_thread(load_recent_tokens, self.client, cfg.db, cfg.dedup_window_s))
        recent.add(spool.request_tokens())
        ingest = Ingest(batcher, pricer, self.metrics, recent, cfg.max_inflight_bytes, cfg.raw_ttl_days)
        flush = partial(asyncio.to_thread, batcher.close)
        app, per_port = await self._receivers(started, ingest, flush)
        self._readers(started, app)
        await self._serve_http(started, app, per_port, flush)
        if cfg.target.kind == "chdb":
            write_owner(
                cfg.target.location,
                cfg.host,
                self.http_port,
                os.path.abspath(str(cfg.tls_cert_file)) if cfg.tls_cert_file else None,
            )
            self._owner_written = True
        self._log_started(applied, loaded)

    async def _pipeline(
        self,
        started: AsyncExitStack,
        pricer: Pricer,
        spool: Spool,
        write_ahead: WriteAheadLog,
        calls: HeldCalls,
    ) -> Batcher:
        """The write pipeline, declared here once (otel_costs_collector/pipeline/types.py):

            Batcher → Spooling → Retrying → WriterPool → per writer: map → count once → insert
            Settling → Retrying → insert

        Each stage is started innermost first and closed outermost first; returns the batcher."""
        cfg, metrics = self.config, self.metrics
        mapper = None
        if cfg.map_workers:
            workers = await asyncio.to_thread(MapWorkers, cfg.map_workers, cfg.prices_file, cfg.raw_ttl_days)
            started.push_async_callback(asyncio.to_thread, workers.close)
            mapper = workers.map
        clients = []
        for _ in range(cfg.writers + 1):
            # Each writer has its own connection (chDB: its own handle on the one engine), so
            # batches are written concurrently and queries never wait behind an insert.
            client = await asyncio.to_thread(open_client, cfg.target)
            started.push_async_callback(asyncio.to_thread, client.close)
            clients.append(client)
        settling = Settling(
            calls,
            Retrying(Insert(clients[0], cfg.db), what="calls"),
            on_stored=metrics.calls_settled.inc,
            on_error=metrics.calls_settle_errors.inc,
        )
        pool = WriterPool(
            [writer(c, cfg.db, pricer, mapper=mapper, calls=calls, raw_ttl_days=cfg.raw_ttl_days) for c in clients[1:]]
        )
        inner: BatchStage = pool
        if self._wrap_write is not None:  # fault injection (tests, the fault harness)
            inner = WriteFunction(self._wrap_write(pool.write))
        spooling = Spooling(
            Retrying(inner),
            write_ahead,
            spool,
            lambda data: [replace(o, spooled=True) for o in assess(data, pricer, cfg.raw_ttl_days)],
            on_event=self._spool_event,
            refused=lambda data, reason: refused(data, pricer, reason),
            storage_ok=self._storage_answers,
        )
        batcher = Batcher(
            spooling,
            min_rows=cfg.batch_min_rows,
            max_age=cfg.batch_max_age_ms / 1000,
            max_queued_rows=cfg.max_queued_rows,
            on_flush=metrics.flushed,
            threads=cfg.writers,
        )
        # Settling closes last: it stores, as they are, the calls still waiting once every batch is in.
        for stage in (settling, pool, spooling, batcher):
            stage.start()
            started.push_async_callback(asyncio.to_thread, stage.close)
        metrics.spool_bytes.set(spool.bytes)
        metrics.calls_waiting.set_function(lambda: calls.index.held_rows)
        metrics.calls_suspected.set_function(lambda: calls.index.suspects)
        metrics.billed_facts_lost.set_function(lambda: calls.facts_lost)
        metrics.spool_oldest.set_function(spool.oldest_age)
        return batcher

    def _spool_event(self, kind: str, spans: int) -> None:
        metrics = self.metrics
        if kind == "written":  # rows a replay put in ClickHouse
            metrics.spans_written.inc(spans)
        elif kind == "bug":  # a write failed in our own code (logged with its traceback)
            metrics.pipeline_bugs.inc(spans)
        else:
            metrics.spool_spans.labels(kind).inc(spans)
            if self._spool is not None:
                metrics.spool_bytes.set(self._spool.bytes)

    async def _receivers(
        self, started: AsyncExitStack, ingest: Ingest, flush: Callable[[], Awaitable[None]]
    ) -> tuple[web.Application, int]:
        """Serve OTLP/gRPC; returns the HTTP app (the readers add their routes before it is
        served) and the connections allowed per port.

        A port stops while ``flush`` (the batcher's close) runs: its in-flight requests wait for
        their batch, which the flush writes at once; requests arriving meanwhile are told to
        retry (UNAVAILABLE / 503)."""
        cfg, metrics = self.config, self.metrics
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
        grpc, self.grpc_port = await start_grpc(
            ingest,
            cfg.host,
            cfg.grpc_port,
            cfg.max_request_bytes,
            self.auth,
            tls_pems(self.config),
            max_connections=per_port,
            handshake_timeout_s=cfg.connection_timeout_s,
        )
        started.push_async_callback(lambda: asyncio.gather(grpc.stop(self._grace), flush()))
        app = build_app(
            ingest,
            metrics,
            cfg.max_request_bytes,
            problems=self.problems,
            auth=self.auth,
            body_timeout_s=cfg.connection_timeout_s,
        )
        return app, per_port

    async def _serve_http(
        self, started: AsyncExitStack, app: web.Application, per_port: int, flush: Callable[[], Awaitable[None]]
    ) -> None:
        """Serve ``app`` (its routes are all added) on the HTTP port."""
        cfg, metrics = self.config, self.metrics
        # keepalive_timeout: aiohttp closes a connection that has not sent a request's
        # headers (from its start, or since its last answer) within it.
        # lingering_time: how long the unread rest of a refused body (408, 413) is drained
        # before the connection closes.
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=grace_seconds,
            keepalive_timeout=cfg.connection_timeout_s,
            lingering_time=min(2.0, cfg.connection_timeout_s),
        )
        listening: list[asyncio.Server] = []

        async def closed() -> None:  # after the runner's cleanup closed the connections
            for listener in listening:
                await listener.wait_closed()

        started.push_async_callback(closed)
        await runner.setup()
        started.push_async_callback(lambda: asyncio.gather(runner.cleanup(), flush()))
        http_server = runner.server
        assert http_server is not None
        metrics.connections.set_function(lambda: len(http_server.connections))
        listener = await serve_http(
            runner,
            cfg.host,
            cfg.http_port,
            ssl_context(self.config),
            per_port,
            cfg.connection_timeout_s,
            metrics.connections_refused.inc,
        )
        listening.append(listener)
        started.callback(listener.close)  # stop accepting; the runner's cleanup, next, closes the connections
        self.http_port = listener.sockets[0].getsockname()[1]

    def _readers(self, started: AsyncExitStack, app: web.Application) -> None:
        """The query API, budgets, reconciliation, revenue, anomalies and the dashboard, and their
        periodic jobs (otel_costs_collector/readers.py)."""
        self.readers = Readers(self.config, lambda: self.client, self.auth, self.metrics, self._clock, self._prices)
        self.readers.add_routes(app)
        r = self.readers
        self.budgets, self.reconciler, self.revenue, self.anomalies = r.budgets, r.reconciler, r.revenue, r.anomalies
        for job in r.jobs.values():
            job.start()
            started.push_async_callback(job.stop)  # a cycle in progress uses the storage client

    def _log_started(self, applied: Any, loaded: int) -> None:
        cfg = self.config
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

    def _job(self, name: str) -> Any:
        assert self.readers is not None, "start() wires the readers"
        return self.readers.jobs[name]

    async def evaluate_budgets_now(self) -> None:
        """One evaluation cycle, now (tests, and after budget changes)."""
        await self._job("budgets").run_now()

    async def reconcile_now(self) -> None:
        """One reconciliation cycle, now (tests)."""
        await self._job("reconcile").run_now()

    async def detect_anomalies_now(self) -> None:
        """One anomaly evaluation, now (tests)."""
        await self._job("anomalies").run_now()

    async def pull_revenue_now(self) -> None:
        """One revenue pull cycle, now (tests)."""
        await self._job("revenue").run_now()

    def _clear_owner(self) -> None:
        if self._owner_written:
            clear_owner(self.config.target.location)
            self._owner_written = False

    async def _close_client(self) -> None:
        if self.client is not None:
            await asyncio.to_thread(self.client.close)
            self.client = None

    async def stop(self, grace: float = 5.0) -> None:
        """Release what ``start`` started, in reverse order: the periodic jobs; the ports
        (in-flight requests are answered once their batch is stored or spooled, within
        ``grace`` seconds; new ones are told to retry: UNAVAILABLE / 503); the batcher,
        flushing what is queued; the spool's replayer; the writers; the calls still waiting
        for attribution, stored as they are; the storage connections."""
        self._grace = grace
        await self._started.aclose()
        _log.info("collector stopped")


async def _serve(config: CollectorConfig, wrap_write: Callable[[Any], Any] | None) -> None:
    collector = Collector(config, wrap_write=wrap_write)
    await collector.start()
    quiet_gc()  # what the start made stays out of every collection
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
