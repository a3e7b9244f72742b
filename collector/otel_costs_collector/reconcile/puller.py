"""Pulls the providers' cost reports into ``provider_costs`` and alerts when a complete
day's capture rate (tracked / billed) leaves the band.

A cycle pulls, per provider with a key, every day from the oldest one in the last
:data:`LOOKBACK_DAYS` that is not yet complete (never pulled, or last pulled before it
settled) up to today, and writes each day the provider answered for in full, under a new
pull id: readers take a day's newest pull only (otel_costs_collector/reconcile/report.py), so a
re-pulled day replaces the old figures and nothing is counted twice, across pulls,
restarts or concurrent pulls. A provider's error (a refused key, a rate limit, an outage, a
body of the wrong shape) is logged once when it starts, with the provider and the HTTP
status, and the pull is tried again next cycle, or after the provider's ``retry-after``.
Nothing here touches ingestion.

Alerts: once per provider and UTC day, recorded in ``reconcile_alerts`` before the webhook
is called and again when it took the alert, as budget alerts are
(otel_costs_collector/budgets/alerts.py), through the same webhook and formats.

Threading: ``cycle()`` and ``pull()`` do blocking HTTP and storage I/O on the caller's
thread, one at a time (a lock); ``capture_rates`` is replaced whole.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Mapping

from otel_costs_collector.alerting import Webhook, deliver
from otel_costs_collector.budgets.model import version_stamp
from otel_costs_collector.reconcile.providers import DEFAULT_BASES, ProviderError, fetch_billed
from otel_costs_collector.reconcile.report import DEFAULT_SETTLE, capture_rate, day_figures
from otel_costs_collector.sql import load

__all__ = ["Reconciler", "PullResult", "LOOKBACK_DAYS", "DEFAULT_BAND"]

_log = logging.getLogger("otel_costs.collector")
#: How far back a cycle looks for days that are not complete yet (and alerts).
LOOKBACK_DAYS = 31
DEFAULT_BAND = (Decimal("0.97"), Decimal("1.03"))
_COLUMNS = ["provider", "day", "pull_id", "pulled_at", "line", "model", "amount_usd", "project"]


@dataclass(frozen=True)
class PullResult:
    provider: str
    days: int = 0  # days written
    lines: int = 0
    error: str = ""  # what went wrong, when it did
    retry_after: float | None = None


class Reconciler:
    """See the module docstring. ``keys``: provider → admin key (providers without one are
    not pulled); ``bases``: provider → API base URL (default: the providers' own)."""

    def __init__(
        self,
        client: Callable[[], Any],
        database: str,
        keys: Mapping[str, str],
        *,
        bases: Mapping[str, str] | None = None,
        band: tuple[Decimal, Decimal] = DEFAULT_BAND,
        settle: timedelta = DEFAULT_SETTLE,
        webhook: Webhook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self._client, self._db = client, database
        self._keys = {p: k for p, k in keys.items() if k}
        self._bases = {**DEFAULT_BASES, **(bases or {})}
        self._band, self._settle, self._webhook, self._clock = band, settle, webhook, clock
        self._lock = threading.Lock()
        self._failing: dict[str, str] = {}  # provider → the error last logged
        self._not_before: dict[str, float] = {}  # provider → monotonic time of its next try
        self._fired: dict[tuple[str, date], dict[str, Any] | None] = {}  # None: delivered
        self._loaded = False
        #: provider → (the last complete day with a bill, its capture rate)
        self.capture_rates: dict[str, tuple[date, Decimal]] = {}

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(sorted(self._keys))

    @property
    def band(self) -> tuple[Decimal, Decimal]:
        return self._band

    def cycle(self) -> float | None:
        """Pull what is not complete, then alert. Returns the seconds until a provider asked
        to be tried again, if one did. Raises on a storage error."""
        with self._lock:
            now = self._clock()
            today = now.date()
            pulled = self._pulled_days(today - timedelta(days=LOOKBACK_DAYS))
            waits = []
            for provider in self.providers:
                start = next(
                    (
                        day
                        for day in (today - timedelta(days=LOOKBACK_DAYS - i) for i in range(LOOKBACK_DAYS + 1))
                        if not self._settled(day, pulled.get((provider, day)))
                    ),
                    today,
                )
                result = self._pull(provider, start, today + timedelta(days=1))
                if result.retry_after is not None:
                    waits.append(result.retry_after)
            self._evaluate(today)
            return min(waits) if waits else None

    def pull(self, start: date, end: date, *, alert: bool = True) -> list[PullResult]:
        """Pull the UTC days ``start`` … ``end`` (exclusive) from every provider with a key,
        now (``otel-costs reconcile pull``), then alert unless ``alert`` is False (a pull
        by the CLI leaves alerts to the collector, which has the webhook). Errors are in
        the results, not raised; raises on a storage error."""
        with self._lock:
            self._not_before.clear()
            results = [self._pull(provider, start, end) for provider in self.providers]
            if alert:
                self._evaluate(self._clock().date())
            return results

    def _pull(self, provider: str, start: date, end: date) -> PullResult:
        if time.monotonic() < self._not_before.get(provider, 0.0):
            return PullResult(provider, error="waiting for the provider's retry-after")
        try:
            lines, days = fetch_billed(provider, self._keys[provider], self._bases[provider], start, end)
        except ProviderError as exc:
            if self._failing.get(provider) != str(exc):
                _log.error("%s; retrying later", exc, extra={"fields": {"provider": provider, "status": exc.status}})
                self._failing[provider] = str(exc)
            if exc.retry_after is not None:
                self._not_before[provider] = time.monotonic() + exc.retry_after
            return PullResult(provider, error=str(exc), retry_after=exc.retry_after)
        if self._failing.pop(provider, None) is not None:
            _log.info("%s cost report read again", provider)
        pull_id, at = uuid.uuid4().hex, version_stamp()
        rows = [[provider, day, pull_id, at, "", "", Decimal(0), ""] for day in days]
        rows += [[provider, x.day, pull_id, at, x.line, x.model, x.amount_usd, x.project] for x in lines]
        if rows:
            # One insert: a day's rows of this pull are all visible, or none are.
            self._client().insert(
                f"`{self._db}`.provider_costs", rows, column_names=_COLUMNS, settings={"async_insert": 0}
            )
        return PullResult(provider, days=len(days), lines=len(lines))

    def _pulled_days(self, since: date) -> dict[tuple[str, date], datetime]:
        text = load(__package__, "pulled_days", db=self._db)
        rows = self._client().query(text, parameters={"since": since}).result_rows
        return {(p, d): at.replace(tzinfo=timezone.utc) for p, d, at in rows}

    def _settled(self, day: date, pulled_at: datetime | None) -> bool:
        settled_at = datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc) + self._settle
        return pulled_at is not None and pulled_at >= settled_at

    def _evaluate(self, today: date) -> None:
        """Alerts for complete days out of the band, and the capture-rate gauge."""
        client = self._client()
        since = today - timedelta(days=LOOKBACK_DAYS)
        if not self._loaded:
            self._load_fired(client, since)
        figures = day_figures(
            client, self._db, since, today + timedelta(days=1), settle=self._settle, now=self._clock()
        )
        per_day: dict[tuple[str, date], list[Any]] = {}
        for (provider, day, _, _), (billed, tracked, _, complete) in figures.items():
            entry = per_day.setdefault((provider, day), [Decimal(0), Decimal(0), complete])
            entry[0] += billed
            entry[1] += tracked
        rates = {}
        low, high = self._band
        for (provider, day), (billed, tracked, complete) in sorted(per_day.items(), key=lambda kv: kv[0][1]):
            rate = capture_rate(tracked, billed)
            if not complete or rate is None:
                continue
            rates[provider] = (day, rate)
            if low <= rate <= high or (provider, day) in self._fired:
                continue
            alert = _alert(provider, day, billed, tracked, rate, self._band)
            self._record(client, provider, day, billed, tracked, delivered=0)
            self._fired[(provider, day)] = alert
            _log.warning("%s", alert["message"], extra={"fields": {"alert": alert}})
        self.capture_rates = rates
        self._deliver(client)
        for key in [k for k, v in self._fired.items() if v is None and k[1] < since]:
            del self._fired[key]  # memory stays bounded

    def _load_fired(self, client: Any, since: date) -> None:
        text = load(__package__, "alerts_list", db=self._db)
        for provider, day, delivered, billed, tracked in client.query(text, parameters={"since": since}).result_rows:
            rate = capture_rate(Decimal(tracked), Decimal(billed)) or Decimal(0)
            self._fired[(provider, day)] = (
                None if delivered else _alert(provider, day, Decimal(billed), Decimal(tracked), rate, self._band)
            )
        self._loaded = True

    def _record(self, client: Any, provider: str, day: date, billed: Decimal, tracked: Decimal, delivered: int) -> None:
        client.insert(
            f"`{self._db}`.reconcile_alerts",
            [[provider, day, billed, tracked, delivered, version_stamp()]],
            column_names=["provider", "day", "billed_usd", "tracked_usd", "delivered", "updated_at"],
            settings={"async_insert": 0},
        )

    def _deliver(self, client: Any) -> None:
        def record(key: Any, alert: dict[str, Any]) -> None:
            provider, day = key
            billed, tracked = Decimal(alert["billed_usd"]), Decimal(alert["tracked_usd"])
            self._record(client, provider, day, billed, tracked, delivered=1)

        deliver(self._fired, self._webhook, record, "reconciliation")


def _alert(
    provider: str, day: date, billed: Decimal, tracked: Decimal, rate: Decimal, band: tuple[Decimal, Decimal]
) -> dict[str, Any]:
    gap = billed - tracked
    return {
        "type": "otel_costs.reconcile.capture_rate",
        "provider": provider,
        "day": day.isoformat(),
        "billed_usd": format(billed.normalize(), "f"),
        "tracked_usd": format(tracked.normalize(), "f"),
        "untracked_usd": format(gap.normalize(), "f"),
        "capture_rate": format(rate, "f"),
        "band": [format(band[0], "f"), format(band[1], "f")],
        "message": (
            f"{provider} {day.isoformat()}: tracked ${tracked.normalize():f} of ${billed.normalize():f} billed "
            f"(capture rate {rate:f}, outside {band[0]:f}–{band[1]:f}); untracked ${gap.normalize():f}"
        ),
    }
