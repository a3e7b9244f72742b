"""Cost anomalies, detected every few minutes: per feature, tenant and model, and in total, the
spend of the last complete UTC hour and of the last 24 hours against their baseline
(otel_costs_collector/anomalies/baseline.py), from the hourly rollups.

An anomaly records its window, the spend and the baseline (and which method made it), its
impact in dollars and percent, the top contributors — the tenants, users, models and releases
whose spend rose most against the baseline's windows — and what changed (calls × tokens per
call × price per token, and the model mix: otel_costs_collector/reports/compare.py), with links
to the calls behind it. It is recorded in ``anomalies`` before the webhook is called and again
once it took it, as budget alerts are, so it is sent once, also across restarts.

Threading: ``evaluate()`` does blocking storage and webhook I/O on the caller's thread, one
cycle at a time (a lock); ``recent`` is replaced whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Callable
from urllib.parse import urlencode

from otel_costs_collector.alerting import Webhook, deliver
from otel_costs_collector.anomalies.baseline import HOUR, Baseline, baseline, is_anomaly, window_spend
from otel_costs_collector.budgets.model import version_stamp
from otel_costs_collector.reports.compare import change, figures
from otel_costs_collector.reports.query import money_text
from otel_costs_collector.sql import load

__all__ = ["AnomalyDetector", "Thresholds", "KINDS", "HISTORY_DAYS", "MAX_SCOPES", "hourly_series"]

_log = logging.getLogger("otel_costs.collector")
#: Scope kind → the hourly rollups' column ("" is the total), as reports name them.
KINDS = {"total": "''", "feature": "feature", "tenant": "tenant_id", "model": "model"}
_FILTER = {"feature": "feature", "tenant": "tenant", "model": "model"}
#: Days of hourly history read for baselines (four weeks and the window).
HISTORY_DAYS = 30
#: Scope values evaluated per kind: the most expensive of the last day.
MAX_SCOPES = 200
WINDOWS = {"hour": 1, "day": 24}
_CONTRIBUTORS = ("tenant", "user", "model", "version")
_TOP = 3
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Thresholds:
    """An anomaly rises at least ``min_usd`` and ``min_ratio`` of its baseline above it."""

    min_usd: Decimal = Decimal(5)
    min_ratio: Decimal = Decimal(1)
    weeks: int = 4


class AnomalyDetector:
    """See the module docstring."""

    def __init__(
        self,
        client: Callable[[], Any],
        database: str,
        *,
        thresholds: Thresholds = Thresholds(),
        webhook: Webhook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self._client, self._db, self._thresholds = client, database, thresholds
        self._webhook, self._clock = webhook, clock
        self._lock = threading.Lock()
        self._fired: dict[str, dict[str, Any] | None] = {}  # id → undelivered anomaly, None once delivered
        self._starts: dict[str, datetime] = {}  # id → its window's start
        self._loaded = False
        #: The anomalies of the last day (newest first), for the gauge and the dashboard.
        self.recent: tuple[dict[str, Any], ...] = ()

    def evaluate(self) -> list[dict[str, Any]]:
        """One cycle: the anomalies found now that were not found before (also delivered).
        Raises on a storage error."""
        with self._lock:
            client = self._client()
            end = self._clock().astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
            if not self._loaded:
                for doc, delivered in self._list(client, end - timedelta(days=2)):
                    self._fired[doc["id"]] = None if delivered else doc
                    self._starts[doc["id"]] = _instant(doc["start"])
                self._loaded = True
            found = []
            for kind, column in KINDS.items():
                series, first = self._series(client, column, end)
                for scope in _busiest(series, end):
                    for window, hours in WINDOWS.items():
                        anomaly = self._judge(client, kind, scope, window, hours, series[scope], first[scope], end)
                        if anomaly is not None and anomaly["id"] not in self._fired:
                            found.append(anomaly)
            for anomaly in found:
                self._record(client, anomaly, delivered=0)
                self._fired[anomaly["id"]] = anomaly
                self._starts[anomaly["id"]] = _instant(anomaly["start"])
                _log.warning("%s", anomaly["message"], extra={"fields": {"anomaly": anomaly}})
            deliver(self._fired, self._webhook, lambda _, a: self._record(client, a, delivered=1), "anomaly")
            since = end - timedelta(days=1)
            self.recent = tuple(doc for doc, _ in self._list(client, since))
            for key in [k for k, v in self._fired.items() if v is None and self._starts.get(k, end) < since]:
                del self._fired[key]  # memory stays bounded: a past window is never judged again
                self._starts.pop(key, None)
            return found

    def since(self, start: datetime) -> list[dict[str, Any]]:
        """The anomalies whose window started at or after ``start``, newest first. Raises on a storage error."""
        return [doc for doc, _ in self._list(self._client(), start)]

    def _list(self, client: Any, since: datetime) -> list[tuple[dict[str, Any], bool]]:
        text = load(__package__, "anomalies_list", db=self._db)
        rows = client.query(text, parameters={"since": since.replace(tzinfo=None)}).result_rows
        return [(json.loads(doc), bool(delivered)) for _, doc, delivered, _ in rows]

    def _series(
        self, client: Any, column: str, end: datetime
    ) -> tuple[dict[str, dict[datetime, Decimal]], dict[str, datetime]]:
        return hourly_series(client, self._db, column, end - timedelta(days=HISTORY_DAYS), end)

    def _judge(
        self,
        client: Any,
        kind: str,
        scope: str,
        window: str,
        hours: int,
        series: dict[datetime, Decimal],
        first: datetime,
        end: datetime,
    ) -> dict[str, Any] | None:
        start = end - hours * HOUR
        expected = baseline(series, first, start, hours, self._thresholds.weeks)
        if expected is None:
            return None
        actual = window_spend(series, start, hours)
        t = self._thresholds
        if not is_anomaly(actual, expected.value, t.min_usd, t.min_ratio):
            return None
        ident = hashlib.sha256(f"{kind}\0{scope}\0{window}\0{start.isoformat()}".encode()).hexdigest()[:24]
        if ident in self._fired:
            return {"id": ident}
        return _anomaly(
            ident,
            kind,
            scope,
            window,
            start,
            end,
            actual,
            expected,
            self._detail(client, kind, scope, start, hours, expected),
        )

    def _detail(
        self, client: Any, kind: str, scope: str, start: datetime, hours: int, expected: Baseline
    ) -> dict[str, Any]:
        """Contributors and what changed: the window against the mean of the baseline's windows."""
        mine = [start + i * HOUR for i in range(hours)]
        before = [s + i * HOUR for s in expected.windows for i in range(hours)]
        text = load(
            __package__,
            "window_detail",
            db=self._db,
            scope="1" if kind == "total" else f"{KINDS[kind]} = {{scope:String}}",
        )
        params = {"hours": [h.replace(tzinfo=None) for h in mine + before], "scope": scope}
        now: dict[str, Any] = {"calls": 0, "tokens": 0, "cost": _ZERO, "models": {}, "first": ""}
        then: dict[str, Any] = {"calls": 0, "tokens": 0, "cost": _ZERO, "models": {}, "first": ""}
        rises: dict[str, dict[str, list[Decimal]]] = {c: {} for c in _CONTRIBUTORS}
        windows = Decimal(len(expected.windows))
        inside = set(mine)
        for hour, tenant, user, model, version, calls, tokens, cost in client.query(
            text, parameters=params
        ).result_rows:
            hour = hour.replace(tzinfo=timezone.utc)
            side, share = (now, Decimal(1)) if hour in inside else (then, 1 / windows)
            side["calls"] += Decimal(calls) * share
            side["tokens"] += Decimal(tokens) * share
            side["cost"] += Decimal(cost) * share
            side["models"][model] = side["models"].get(model, _ZERO) + Decimal(calls) * share
            for name, value in zip(_CONTRIBUTORS, (tenant, user, model, version)):
                cell = rises[name].setdefault(value, [_ZERO, _ZERO])
                cell[0 if hour in inside else 1] += Decimal(cost) * share
        contributors = {
            name: [
                {"value": v, "actual_usd": money_text(a), "expected_usd": money_text(b), "rise_usd": money_text(a - b)}
                for v, (a, b) in sorted(values.items(), key=lambda kv: (kv[1][1] - kv[1][0], kv[0]))[:_TOP]
                if a > b
            ]
            for name, values in rises.items()
        }
        return {"contributors": contributors, "change": change(figures("baseline", then), figures("window", now))}

    def _record(self, client: Any, anomaly: dict[str, Any], delivered: int) -> None:
        client.insert(
            f"`{self._db}`.anomalies",
            [
                [
                    anomaly["id"],
                    _instant(anomaly["start"]).replace(tzinfo=None),
                    anomaly["kind"],
                    anomaly["scope"],
                    Decimal(anomaly["impact_usd"]),
                    json.dumps(anomaly),
                    delivered,
                    version_stamp(),
                ]
            ],
            column_names=["id", "window_start", "kind", "scope", "impact_usd", "doc", "delivered", "updated_at"],
            settings={"async_insert": 0},
        )


def hourly_series(
    client: Any, db: str, column: str, since: datetime, end: datetime
) -> tuple[dict[str, dict[datetime, Decimal]], dict[str, datetime]]:
    """Spend per scope value (``column``: one of :data:`KINDS`' columns) and UTC hour in
    ``[since, end)``, and each value's first hour with spend. Raises on a storage error."""
    text = load(__package__, "spend_by_hour", db=db, value=column)
    params = {"since": since.replace(tzinfo=None), "end": end.replace(tzinfo=None)}
    series: dict[str, dict[datetime, Decimal]] = {}
    first: dict[str, datetime] = {}
    for hour, value, cost in client.query(text, parameters=params).result_rows:
        hour = hour.replace(tzinfo=timezone.utc)
        series.setdefault(value, {})[hour] = Decimal(cost)
        if value not in first or hour < first[value]:
            first[value] = hour
    return series, first


def _busiest(series: dict[str, dict[datetime, Decimal]], end: datetime) -> list[str]:
    day = end - timedelta(days=1)
    recent = {v: window_spend(s, day, 24) for v, s in series.items()}
    return sorted((v for v in recent if recent[v] > 0), key=lambda v: (-recent[v], v))[:MAX_SCOPES]


def _anomaly(
    ident: str,
    kind: str,
    scope: str,
    window: str,
    start: datetime,
    end: datetime,
    actual: Decimal,
    expected: Baseline,
    detail: dict[str, Any],
) -> dict[str, Any]:
    impact = actual - expected.value
    percent = (impact * 100 / expected.value).quantize(Decimal("0.1"), ROUND_HALF_EVEN) if expected.value else None
    where = {"from": _iso(start), "to": _iso(end), **({_FILTER[kind]: scope} if kind in _FILTER else {})}
    name = "total spend" if kind == "total" else f"{kind} {scope or '(none)'}"
    drivers = [
        f"{c} {detail['contributors'][c][0]['value'] or '(none)'}"
        for c in ("version", "model", "tenant")
        if detail["contributors"][c]
    ]
    return {
        "id": ident,
        "type": "otel_costs.anomaly",
        "kind": kind,
        "scope": scope,
        "window": window,
        "start": _iso(start),
        "end": _iso(end),
        "actual_usd": money_text(actual),
        "expected_usd": money_text(expected.value),
        "impact_usd": money_text(impact),
        "impact_percent": None if percent is None else format(percent, "f"),
        "method": expected.method,
        "baseline_windows": len(expected.windows),
        **detail,
        "calls_url": "/v1/calls?" + urlencode({**where, "order": "cost"}),
        "dashboard_url": "/?" + urlencode(where),
        "message": (
            f"Cost anomaly: {name} spent ${actual.normalize():f} in the {window} to {_iso(end)}, "
            f"${impact.normalize():f} above the {expected.method} baseline of ${expected.value.normalize():f}"
            + (f" (+{percent}%)" if percent is not None else "")
            + (f"; driven by {', '.join(drivers)}" if drivers else "")
            + (f"; {detail['change']['summary']}" if detail["change"]["model_change"] else "")
        ),
    }


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
