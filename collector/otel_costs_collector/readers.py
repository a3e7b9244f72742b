"""The readers beside the write path, wired onto the collector's HTTP app: the query API,
budgets, reconciliation with the providers' bills, revenue and margins, anomalies and
forecasts, re-pricing, and the dashboard; and the jobs they run every few seconds (``jobs``: "budgets",
"reconcile", "revenue", "anomalies"), started and stopped by the server."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any, Callable

from aiohttp import web

from otel_costs_collector.alerting import Webhook
from otel_costs_collector.anomalies.api import add_anomaly_routes
from otel_costs_collector.anomalies.detector import KINDS, AnomalyDetector, Thresholds
from otel_costs_collector.auth import TokenAuth
from otel_costs_collector.budgets.alerts import BudgetEvaluator
from otel_costs_collector.budgets.api import add_budget_routes
from otel_costs_collector.config import CollectorConfig
from otel_costs_collector.dashboard.routes import add_dashboard_routes
from otel_costs_collector.metrics import Metrics
from otel_costs_collector.periodic import Periodic
from otel_costs_collector.reconcile.api import add_reconcile_routes
from otel_costs_collector.reconcile.puller import Reconciler
from otel_costs_collector.reports.api import add_query_routes
from otel_costs_collector.reprice.api import add_reprice_routes
from otel_costs_collector.reprice.run import Repricer
from otel_costs_collector.revenue.api import add_revenue_routes
from otel_costs_collector.revenue.puller import RevenuePuller
from otel_costs_collector.storage.client import open_client

__all__ = ["Readers"]


class Readers:
    """Builds every reader from ``config``; ``add_routes`` puts them on the app. The jobs are
    not started here. Call from the event loop."""

    def __init__(
        self,
        config: CollectorConfig,
        client: Callable[[], Any],
        auth: TokenAuth | None,
        metrics: Metrics,
        clock: Callable[[], datetime],
        live_prices: str = "",
    ):
        """``live_prices``: the price table the collector prices new calls with (a re-price
        reads the overrides file again and says when it differs)."""
        cfg = self.config = config
        self._client, self._auth, self._metrics, self._clock = client, auth, metrics, clock
        self.webhook = (
            Webhook(str(cfg.budget_webhook_url), cfg.budget_webhook_format) if cfg.budget_webhook_url else None
        )
        rates = cfg.fx_rates()
        self.rates = rates
        self.budgets = BudgetEvaluator(
            client, cfg.db, thresholds=cfg.budget_thresholds, webhook=self.webhook, clock=clock, rates=rates
        )
        self.jobs: dict[str, Periodic] = {
            "budgets": Periodic("budget evaluation", self.budgets.evaluate, cfg.budget_interval_s)
        }
        self.settle = timedelta(hours=cfg.reconcile_settle_h)
        self.reconciler: Reconciler | None = None
        if cfg.reconcile_keys():
            self.reconciler = Reconciler(
                client,
                cfg.db,
                cfg.reconcile_keys(),
                bases=cfg.reconcile_bases(),
                band=cfg.reconcile_band,
                settle=self.settle,
                webhook=self.webhook,
                clock=clock,
            )
            self.jobs["reconcile"] = Periodic("reconciliation", self._reconcile, cfg.reconcile_interval_s)
        self.anomalies = AnomalyDetector(
            client,
            cfg.db,
            thresholds=Thresholds(cfg.anomaly_min_usd, cfg.anomaly_min_ratio),
            webhook=self.webhook,
            clock=clock,
        )
        self.jobs["anomalies"] = Periodic("anomaly evaluation", self._anomalies, cfg.anomaly_interval_s)
        # Re-pricing updates rows in place (ALTER … UPDATE): on one server or chDB, not a cluster yet.
        # A run has a connection of its own (chDB: a handle on the one engine): queries never wait behind it.
        connect = partial(open_client, cfg.target)
        self.repricer = None if cfg.cluster else Repricer(connect, cfg.db, cfg.prices_file, live_prices, owns=True)
        self.revenue: RevenuePuller | None = None  # pulls Stripe when a key is set
        if cfg.stripe_key:
            self.revenue = RevenuePuller(
                client, cfg.db, cfg.stripe_key, base=cfg.stripe_api_base, tenant_key=cfg.stripe_tenant_key, clock=clock
            )
            self.jobs["revenue"] = Periodic("revenue pull", self.revenue.cycle, cfg.revenue_interval_s)

    def add_routes(self, app: web.Application) -> None:
        cfg, client, auth = self.config, self._client, self._auth
        add_query_routes(app, client, cfg.db, auth)
        add_budget_routes(app, self.budgets, cfg.budget_timezone, auth, wake=self.jobs["budgets"].wake)
        add_reconcile_routes(app, client, cfg.db, self.reconciler, auth, self.settle, cfg.openai_projects)
        add_anomaly_routes(app, self.anomalies, client, cfg.db, auth, self._clock)
        add_revenue_routes(app, client, cfg.db, self.revenue, auth, self.rates)
        add_reprice_routes(app, self.repricer, client, cfg.db, auth)
        add_dashboard_routes(
            app, client, cfg.db, self.budgets, auth, self.reconciler, self.settle, self.rates, self.anomalies
        )

    def _reconcile(self) -> float | None:
        assert self.reconciler is not None
        wait = self.reconciler.cycle()
        for provider, (_, rate) in self.reconciler.capture_rates.items():
            self._metrics.capture_rate.labels(provider).set(float(rate))
        return wait

    def _anomalies(self) -> None:
        self.anomalies.evaluate()
        for kind in KINDS:
            self._metrics.anomalies.labels(kind).set(len([a for a in self.anomalies.recent if a["kind"] == kind]))
