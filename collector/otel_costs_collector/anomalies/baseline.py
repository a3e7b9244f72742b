"""What spend to expect in a window, and whether what came is an anomaly. Pure: series in,
verdicts out, no I/O.

A *series* maps the start of each UTC hour to the spend in it (hours without calls absent).
A window is ``hours`` hours ending at ``end`` (the last hour, 1, or the last day, 24).

* **Seasonal** when the scope has two weeks of history before the window: the median of the
  same window 1, 2, … ``weeks`` weeks earlier (the weeks within its history) — a Monday-morning
  peak is expected on Monday mornings.
* **Trailing median** otherwise, when it has at least :data:`MIN_TRAILING` windows of history
  before: the median of the windows just before (24 of them for an hour, 7 for a day).
* Otherwise no baseline: too little history to tell a spike from a start.

An anomaly is spend above the baseline by at least ``min_usd`` **and** by at least
``min_ratio`` of the baseline (both: cents never page, and neither does a large account's
normal noise). Only rises are flagged: a drop in cost is not a cost problem.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Mapping

__all__ = ["Baseline", "baseline", "window_spend", "is_anomaly", "MIN_TRAILING", "SEASONAL_HISTORY"]

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
#: History a scope needs before a window for a seasonal baseline.
SEASONAL_HISTORY = timedelta(days=14)
#: Windows of history a trailing median needs.
MIN_TRAILING = 3
_TRAILING = {1: 24, 24: 7}  # window hours → windows in the trailing median
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Baseline:
    value: Decimal  # the spend expected in the window (USD)
    method: str  # "seasonal" or "trailing median"
    windows: tuple[datetime, ...]  # the starts of the windows it is the median of


def window_spend(series: Mapping[datetime, Decimal], start: datetime, hours: int) -> Decimal:
    """The spend of ``hours`` hours from ``start``."""
    return sum((series.get(start + i * HOUR, _ZERO) for i in range(hours)), _ZERO)


def baseline(
    series: Mapping[datetime, Decimal], first: datetime, start: datetime, hours: int, weeks: int = 4
) -> Baseline | None:
    """The expected spend of the window of ``hours`` hours from ``start``, for a scope whose
    first spend was in hour ``first``; None without enough history (see the module docstring)."""
    if first <= start - SEASONAL_HISTORY:
        starts = tuple(start - k * WEEK for k in range(1, weeks + 1) if start - k * WEEK >= first)
        return Baseline(_median([window_spend(series, s, hours) for s in starts]), "seasonal", starts)
    width = hours * HOUR
    starts = tuple(start - k * width for k in range(1, _TRAILING[hours] + 1) if start - k * width >= first)
    if len(starts) < MIN_TRAILING:
        return None
    return Baseline(_median([window_spend(series, s, hours) for s in starts]), "trailing median", starts)


def is_anomaly(actual: Decimal, expected: Decimal, min_usd: Decimal, min_ratio: Decimal) -> bool:
    """Whether ``actual`` is above ``expected`` by ``min_usd`` and by ``min_ratio`` of it."""
    rise = actual - expected
    return rise >= min_usd and rise >= expected * min_ratio and rise > 0


def _median(values: list[Decimal]) -> Decimal:
    return Decimal(statistics.median(values)) if values else _ZERO
