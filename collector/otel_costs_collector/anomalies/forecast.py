"""Where spend will end: what was spent so far in a period plus what each of its remaining hours
is expected to cost, from the same baselines as anomalies (otel_costs_collector/anomalies/
baseline.py), with an interval. Pure: series in, projection out.

Each remaining hour expects the median of the same hour of the week over the past ``weeks``
weeks when the scope has two weeks of history (seasonal), else the median of the same hour of
the day over the past seven days (trailing median; at least three of them). The interval sums
the smallest and the largest of those samples instead. Without enough history there is no
projection. The hour in progress counts what it spent so far, or what it is expected to
spend if that is more.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Mapping

from otel_costs_collector.anomalies.baseline import HOUR, MIN_TRAILING, SEASONAL_HISTORY, WEEK

__all__ = ["Projection", "project", "month_bounds"]

_DAY = timedelta(days=1)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Projection:
    spent: Decimal  # from the period's start to now
    expected: Decimal  # spent + the remaining hours' medians
    low: Decimal
    high: Decimal
    method: str  # "seasonal" or "trailing median"
    crosses: tuple[tuple[Decimal, date], ...] = ()  # (amount, the UTC day the expected spend reaches it)

    def crossing(self, amount: Decimal) -> date | None:
        """The UTC day the expected spend reaches ``amount`` (asked of :func:`project`), if it does."""
        return dict((a, d) for a, d in self.crosses).get(amount)


def project(
    series: Mapping[datetime, Decimal],
    first: datetime | None,
    start: datetime,
    now: datetime,
    end: datetime,
    *,
    weeks: int = 4,
    amounts: tuple[Decimal, ...] = (),
) -> Projection | None:
    """The spend of ``[start, end)`` projected from hourly ``series`` (hour start → USD) at
    ``now``, for a scope whose first spend was in hour ``first``; None without enough history.
    ``amounts``: the days the expected spend reaches each (a budget's limit)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    spent = sum((v for h, v in series.items() if start <= h < now), _ZERO)
    if first is None:
        return None
    seasonal = first <= hour - SEASONAL_HISTORY
    step = WEEK if seasonal else _DAY
    count = weeks if seasonal else 7
    if not seasonal and first > hour - MIN_TRAILING * _DAY:
        return None
    expected = low = high = spent
    reached: dict[Decimal, date] = {a: start.date() for a in amounts if spent >= a}
    h = hour
    while h < end:
        # The same hour of the past weeks (or days) before now: a remaining hour three weeks
        # ahead takes the last `count` weeks too, not weeks that have not happened.
        back = -(-(h - hour + HOUR) // step)  # the fewest steps back that land before this hour
        samples = [series.get(t, _ZERO) for t in (h - k * step for k in range(back, back + count)) if t >= first]
        median = Decimal(statistics.median(samples)) if samples else _ZERO
        smallest, largest = min(samples, default=_ZERO), max(samples, default=_ZERO)
        so_far = series.get(h, _ZERO) if h == hour else _ZERO  # the hour in progress: what it spent so far
        expected += max(median - so_far, _ZERO)
        low += max(smallest - so_far, _ZERO)
        high += max(largest - so_far, _ZERO)
        for a in amounts:
            if a not in reached and expected >= a:
                reached[a] = h.date()
        h += HOUR
    return Projection(
        spent, expected, low, high, "seasonal" if seasonal else "trailing median", tuple(sorted(reached.items()))
    )


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding ``now``: [start, end)."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first, (first + timedelta(days=32)).replace(day=1)
