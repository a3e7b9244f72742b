"""Budget evaluation and alerts: every few seconds, each budget's spend in its current
period from the rollups; an alert per threshold crossed, fired once per budget and period.

Exactly once across restarts: a crossed threshold is first recorded in ``budget_alerts``
(undelivered), then posted to the webhook, then recorded as delivered. After a restart the
recorded ones are not fired again; undelivered ones are retried every cycle until the
webhook takes them. (A crash between the webhook's answer and the second record resends
that one alert: the receiver may see it twice, never zero times.)

Threading: ``evaluate()`` does blocking storage and webhook I/O; the collector runs it on a
worker thread, one cycle at a time. ``statuses`` is replaced as a whole, so readers on the event loop see one
consistent snapshot.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

from otel_costs_collector.alerting import Webhook, deliver
from otel_costs_collector.anomalies.detector import HISTORY_DAYS
from otel_costs_collector.anomalies.forecast import Projection, project
from otel_costs_collector.budgets.model import DEFAULT_THRESHOLDS, Budget, BudgetStore, period_bounds, version_stamp
from otel_costs_collector.reports.query import money_text
from otel_costs_collector.revenue.store import revenue_days
from otel_costs_collector.sql import load as sql

__all__ = ["BudgetStatus", "BudgetEvaluator"]

_log = logging.getLogger("otel_costs.collector")
_HUNDRED = Decimal(100)
#: The threshold a forecast alert is recorded under in budget_alerts (real thresholds are 1..1000 %).
FORECAST = 0
_ZERO = Decimal(0)


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period_start: datetime  # UTC
    resets_at: datetime  # UTC: the end of the period
    spend_usd: Decimal
    revenue_usd: Decimal | None = None  # a ratio budget's: the tenant's revenue in the period
    forecast: Projection | None = None  # the period's spend projected to its end (None: too little history)

    @property
    def crosses_on(self) -> date | None:
        """The UTC day the projected spend reaches the limit, when it does before the period ends."""
        return self.forecast.crossing(self.limit_usd) if self.forecast is not None else None

    @property
    def limit_usd(self) -> Decimal:
        """What the spend is held to: amount_usd, or max_ratio × the period's revenue."""
        if self.budget.is_ratio:
            return self.budget.max_ratio * max(self.revenue_usd or _ZERO, _ZERO)
        return self.budget.amount_usd

    @property
    def percent(self) -> Decimal:
        """Spend as a percent of the limit; a spend against a limit of 0 (no revenue) is 1000 %."""
        if not self.limit_usd:
            return Decimal("1000.00") if self.spend_usd > 0 else Decimal("0.00")
        return (self.spend_usd * _HUNDRED / self.limit_usd).quantize(Decimal("0.01"))

    @property
    def exceeded(self) -> bool:
        return self.spend_usd >= self.limit_usd and (self.spend_usd > 0 or not self.budget.is_ratio)

    def crossed(self, threshold: int) -> bool:
        """Whether the spend reached ``threshold`` percent of the limit."""
        if not self.limit_usd:
            return self.spend_usd > 0
        return self.spend_usd * _HUNDRED >= self.limit_usd * threshold

    def to_json(self) -> dict[str, Any]:
        ratio = {}
        if self.budget.is_ratio:
            revenue = self.revenue_usd or _ZERO
            ratio = {
                "revenue_usd": money_text(revenue),
                "limit_usd": money_text(self.limit_usd),
                "ratio": format((self.spend_usd / revenue).quantize(Decimal("0.000001")), "f") if revenue > 0 else None,
            }
        forecast = None
        if self.forecast is not None:
            crosses = self.crosses_on
            forecast = {
                "expected_usd": money_text(self.forecast.expected),
                "low_usd": money_text(self.forecast.low),
                "high_usd": money_text(self.forecast.high),
                "method": self.forecast.method,
                "crosses_limit_on": crosses.isoformat() if crosses else None,
            }
        return {
            **self.budget.to_json(),
            "spend_usd": money_text(self.spend_usd),
            "percent": str(self.percent),
            "exceeded": self.exceeded,
            "period_start": _iso(self.period_start),
            "resets_at": _iso(self.resets_at),
            **ratio,
            "forecast": forecast,
        }


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class BudgetEvaluator:
    """Computes every budget's status and fires threshold alerts. See the module docstring."""

    def __init__(
        self,
        client: Callable[[], Any],
        database: str,
        *,
        thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
        webhook: Webhook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        rates: Mapping[str, Decimal] | None = None,
    ):
        """``rates``: USD per unit of each currency, for ratio budgets' revenue."""
        self._client = client
        self._rates = dict(rates or {})
        self._forecasts: dict[str, tuple[Any, Projection | None]] = {}  # budget id → (inputs, projection)
        self._revenues: dict[str, tuple[Any, Decimal]] = {}  # ratio budget id → (inputs, revenue)
        self._db = database
        self._thresholds = tuple(thresholds)
        self._webhook = webhook
        self._clock = clock
        self._fired: dict[tuple[str, datetime, int], dict[str, Any] | None] = {}  # None: delivered
        self._loaded = False
        self._cycle = threading.Lock()  # one cycle at a time: the loop's and one asked for
        self.statuses: tuple[BudgetStatus, ...] = ()
        self.evaluated_at: datetime | None = None

    def store(self) -> BudgetStore:
        return BudgetStore(self._client(), self._db)

    def evaluate(self) -> tuple[BudgetStatus, ...]:
        """One cycle: spend per budget, new alerts, delivery of undelivered ones. Raises on
        storage errors (the caller logs and retries next cycle)."""
        with self._cycle:
            self._prune()
            return self._evaluate()

    def _evaluate(self) -> tuple[BudgetStatus, ...]:
        now = self._clock()
        client = self._client()
        if not self._loaded:
            self._load_fired(client, now)
        statuses = self._statuses(client, now)
        for status in statuses:
            budget, start = status.budget, status.period_start
            crossed = [
                (budget.id, start.replace(tzinfo=None), threshold)
                for threshold in sorted(budget.thresholds or self._thresholds)
                if status.crossed(threshold)
            ]
            new = [key for key in crossed if key not in self._fired]
            if not new:
                continue
            # Several thresholds crossed at once (a budget set below what was already spent,
            # a burst): one alert, for the highest; the lower ones count as told.
            for key in new[:-1]:
                self._record(client, key, status.spend_usd, status.limit_usd, delivered=1)
                self._fired[key] = None
            alert = _alert(status, new[-1][2])
            self._record(client, new[-1], status.spend_usd, status.limit_usd, delivered=0)
            self._fired[new[-1]] = alert
            _log.warning("%s", alert["message"], extra={"fields": {"alert": alert}})
        for status in statuses:  # early: the period's projected spend reaches the limit before it ends
            key = (status.budget.id, status.period_start.replace(tzinfo=None), FORECAST)
            if status.crosses_on is not None and not status.exceeded and key not in self._fired:
                alert = _forecast_alert(status)
                self._record(client, key, status.spend_usd, status.limit_usd, delivered=0)
                self._fired[key] = alert
                _log.warning("%s", alert["message"], extra={"fields": {"alert": alert}})
        self.statuses = tuple(statuses)
        self.evaluated_at = now
        self._deliver(client)
        return self.statuses

    def statuses_now(self) -> tuple[BudgetStatus, ...]:
        """Every budget's spend in its current period, now, without alerting (``budget list``
        on storage no collector holds). Raises on a storage error."""
        return self._statuses(self._client(), self._clock())

    def _statuses(self, client: Any, now: datetime) -> tuple[BudgetStatus, ...]:
        statuses = []
        budgets = self.store().list()
        ids = {b.id for b in budgets}
        self._forecasts = {k: v for k, v in self._forecasts.items() if k in ids}
        self._revenues = {k: v for k, v in self._revenues.items() if k in ids}
        for budget in budgets:
            start, end = period_bounds(budget.period, budget.timezone, now)
            revenue = self._revenue(client, budget, start, end) if budget.is_ratio else None
            spend = self._spend(client, budget, start, end)
            status = BudgetStatus(budget, start, end, spend, revenue)
            forecast = self._forecast(client, budget, start, end, now, status.limit_usd)
            statuses.append(BudgetStatus(budget, start, end, spend, revenue, forecast))
        return tuple(statuses)

    def status_for(self, tenant: str, user: str, feature: str, *, tenant_only: bool = False) -> list[BudgetStatus]:
        """The budgets that apply to calls of this tenant, user and feature. ``tenant_only``
        (a tenant's token): only budgets scoped to that tenant — a budget over all tenants
        shows their spend, and its id and amount are the operator's."""
        return [
            s
            for s in self.statuses
            if s.budget.applies_to(tenant, user, feature) and (not tenant_only or s.budget.tenant_id == tenant)
        ]

    def _spend(self, client: Any, budget: Budget, start: datetime, end: datetime) -> Decimal:
        on_hour = start.minute == 0 and start.second == 0 and end.minute == 0
        text = sql(__package__, "budget_spend_hourly" if on_hour else "budget_spend_raw", db=self._db)
        params = {
            "start": start.replace(tzinfo=None),
            "end": end.replace(tzinfo=None),
            "tenant": budget.tenant_id,
            "user": budget.user_id,
            "feature": budget.feature,
        }
        value = client.query(text, parameters=params).result_rows[0][0]
        return Decimal(value or 0)

    def _forecast(
        self, client: Any, budget: Budget, start: datetime, end: datetime, now: datetime, limit: Decimal
    ) -> Projection | None:
        """The period's spend projected to its end; recomputed once an hour per budget (the
        hourly history it reads changes by the hour)."""
        key = (budget, start, now.replace(minute=0, second=0, microsecond=0), limit)
        cached = self._forecasts.get(budget.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        since = start - timedelta(days=HISTORY_DAYS)
        text = sql(__package__, "budget_spend_by_hour", db=self._db)
        params = {
            "since": since.replace(tzinfo=None),
            "end": end.replace(tzinfo=None),
            "tenant": budget.tenant_id,
            "user": budget.user_id,
            "feature": budget.feature,
        }
        series = {
            hour.replace(tzinfo=timezone.utc): Decimal(cost)
            for hour, cost in client.query(text, parameters=params).result_rows
        }
        first = min(series) if series else None
        projection = project(series, first, start, now, end, amounts=(limit,) if limit > 0 else ())
        self._forecasts[budget.id] = (key, projection)
        return projection

    def _revenue(self, client: Any, budget: Budget, start: datetime, end: datetime) -> Decimal:
        """The tenant's revenue in USD over the period's UTC days (revenue in a currency
        without a rate does not count: OTEL_COSTS_FX_RATES_FILE)."""
        key = (budget.tenant_id, start, self._clock().replace(second=0, microsecond=0))
        cached = self._revenues.get(budget.id)
        if cached is not None and cached[0] == key:  # revenue changes with pulls and imports: once a minute
            return cached[1]
        rates = {"USD": Decimal(1), **self._rates}
        total = _ZERO
        for _, _, currency, _, amount in revenue_days(client, self._db, start.date(), end.date(), budget.tenant_id):
            if currency in rates:
                total += Decimal(amount) * rates[currency]
        self._revenues[budget.id] = (key, total)
        return total

    def _load_fired(self, client: Any, now: datetime) -> None:
        since = (now - timedelta(days=40)).replace(tzinfo=None, microsecond=0)
        text = sql(__package__, "budget_alerts_list", db=self._db)
        for budget_id, start, threshold, delivered, spend, amount in client.query(
            text, parameters={"since": since}
        ).result_rows:
            key = (budget_id, start.replace(tzinfo=None), int(threshold))
            self._fired[key] = (
                None
                if delivered
                else {
                    "budget_id": budget_id,
                    "threshold": int(threshold),
                    "spend_usd": str(spend),
                    "amount_usd": str(amount),
                    "period_start": _iso(start.replace(tzinfo=timezone.utc)),
                    "message": f"budget {budget_id} crossed {threshold}%",
                }
            )
        self._loaded = True

    def _record(
        self, client: Any, key: tuple[str, datetime, int], spend: Decimal, amount: Decimal, delivered: int
    ) -> None:
        client.insert(
            f"`{self._db}`.budget_alerts",
            [[key[0], key[1], key[2], spend, amount, delivered, version_stamp()]],
            column_names=[
                "budget_id",
                "period_start",
                "threshold",
                "spend_usd",
                "amount_usd",
                "delivered",
                "updated_at",
            ],
            settings={"async_insert": 0},
        )

    def _deliver(self, client: Any) -> None:
        def record(key: Any, alert: dict[str, Any]) -> None:
            self._record(client, key, Decimal(alert["spend_usd"]), Decimal(alert["amount_usd"]), delivered=1)

        deliver(self._fired, self._webhook, record, "budget")

    def _prune(self, keep_days: int = 40) -> None:
        """Forget alert state of periods that started long ago (memory stays bounded)."""
        cutoff = (self._clock() - timedelta(days=keep_days)).replace(tzinfo=None)
        for key in [k for k, v in self._fired.items() if v is None and k[1] < cutoff]:
            del self._fired[key]


def _forecast_alert(status: BudgetStatus) -> dict[str, Any]:
    b, f = status.budget, status.forecast
    assert f is not None and status.crosses_on is not None
    scope = ", ".join(f"{k}={v}" for k, v in b.scope().items())
    return {
        "type": "otel_costs.budget.forecast",
        "budget_id": b.id,
        "scope": b.scope(),
        "threshold": FORECAST,
        "spend_usd": str(status.spend_usd),
        "amount_usd": str(status.limit_usd),
        "expected_usd": str(f.expected),
        "low_usd": str(f.low),
        "high_usd": str(f.high),
        "method": f.method,
        "crosses_on": status.crosses_on.isoformat(),
        "period": b.period,
        "period_start": _iso(status.period_start),
        "resets_at": _iso(status.resets_at),
        "hard": b.hard,
        "message": (
            f"Budget {b.id} ({scope}; {b.period}): at this pace it crosses 100% on {status.crosses_on.isoformat()} "
            f"(${status.spend_usd.normalize():f} spent of ${status.limit_usd.normalize():f}; "
            f"${f.expected.normalize():f} expected by {_iso(status.resets_at)})"
        ),
    }


def _alert(status: BudgetStatus, threshold: int) -> dict[str, Any]:
    b = status.budget
    scope = ", ".join(f"{k}={v}" for k, v in b.scope().items())
    kind = "hard" if b.hard else "soft"
    if b.is_ratio:
        revenue = status.revenue_usd or _ZERO
        return {
            "type": "otel_costs.budget.ratio",
            "budget_id": b.id,
            "scope": b.scope(),
            "threshold": threshold,
            "spend_usd": str(status.spend_usd),
            "amount_usd": str(status.limit_usd),
            "revenue_usd": str(revenue),
            "max_ratio": str(b.max_ratio),
            "percent": str(status.percent),
            "period": b.period,
            "period_start": _iso(status.period_start),
            "resets_at": _iso(status.resets_at),
            "hard": False,
            "message": (
                f"Budget {b.id} ({scope}; AI cost at most {b.max_ratio.normalize():f} of revenue, {b.period}): "
                f"AI cost ${status.spend_usd.normalize():f} against revenue ${revenue.normalize():f} is "
                f"{status.percent}% of the cap; crossed {threshold}%; resets {_iso(status.resets_at)}"
            ),
        }
    return {
        "type": "otel_costs.budget.threshold",
        "budget_id": b.id,
        "scope": b.scope(),
        "threshold": threshold,
        "spend_usd": str(status.spend_usd),
        "amount_usd": str(b.amount_usd),
        "percent": str(status.percent),
        "period": b.period,
        "period_start": _iso(status.period_start),
        "resets_at": _iso(status.resets_at),
        "hard": b.hard,
        "message": (
            f"Budget {b.id} ({scope}; {kind}, {b.period}) at {status.percent}% "
            f"(${status.spend_usd.normalize():f} of ${b.amount_usd.normalize():f}); crossed {threshold}%; "
            f"resets {_iso(status.resets_at)}"
        ),
    }
