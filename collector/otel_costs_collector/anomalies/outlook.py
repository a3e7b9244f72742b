"""Where this UTC month's spend will end, in total and per feature (``GET /v1/forecast``,
``otel-costs forecast``): otel_costs_collector/anomalies/forecast.py over the hourly rollups."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from otel_costs_collector.anomalies.detector import HISTORY_DAYS, KINDS, hourly_series
from otel_costs_collector.anomalies.forecast import Projection, month_bounds, project
from otel_costs_collector.reports.query import money_text

__all__ = ["month_forecast", "MAX_FEATURES"]

#: Features projected at most: the month's most expensive so far.
MAX_FEATURES = 50


def month_forecast(client: Any, db: str, now: datetime) -> dict[str, Any]:
    """The month of ``now``: ``total`` and ``features`` (most expensive first), each with what was
    spent, what is expected by the month's end and the interval (None without enough history).
    Raises on a storage error."""
    now = now.astimezone(timezone.utc)
    start, end = month_bounds(now)
    since = start - timedelta(days=HISTORY_DAYS)
    shown: dict[str, Any] = {"month_start": start.date().isoformat(), "month_end": end.date().isoformat()}
    (total_series, total_first) = hourly_series(client, db, KINDS["total"], since, now + timedelta(hours=1))
    series = total_series.get("", {})
    shown["total"] = _shown("", series, project(series, total_first.get(""), start, now, end), start, now)
    features, firsts = hourly_series(client, db, KINDS["feature"], since, now + timedelta(hours=1))
    rows = [_shown(name, s, project(s, firsts.get(name), start, now, end), start, now) for name, s in features.items()]
    rows.sort(key=lambda r: (-Decimal(r["spent_usd"]), r["feature"]))
    shown["features"] = rows[:MAX_FEATURES]
    return shown


def _shown(
    name: str, series: dict[datetime, Any], p: Projection | None, start: datetime, now: datetime
) -> dict[str, Any]:
    spent = sum((v for h, v in series.items() if start <= h < now), Decimal(0))
    return {
        "feature": name,
        "spent_usd": money_text(spent),
        "expected_usd": money_text(p.expected) if p else None,
        "low_usd": money_text(p.low) if p else None,
        "high_usd": money_text(p.high) if p else None,
        "method": p.method if p else None,
    }
