"""Budgets: what they are, their calendar periods, and where they are kept.

A budget caps the spend of a scope — a tenant, a user, a feature, or a combination (user
u within tenant t) — per calendar period (daily, weekly from Monday, monthly) in a time
zone. Hard budgets are enforced by the SDK before a call; soft ones only alert. A *ratio*
budget (``max_ratio``) caps a tenant's AI cost (or one feature's) at a share of the tenant's
revenue in the period (otel_costs_collector/revenue): it only alerts, and its periods are UTC
(revenue is spread over UTC days).
Budgets live in ClickHouse next to the data (migration 0006); every change is a new row.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from otel_costs_collector.sql import load as sql

__all__ = ["Budget", "BudgetError", "PERIODS", "DEFAULT_THRESHOLDS", "period_bounds", "BudgetStore", "version_stamp"]

PERIODS = ("daily", "weekly", "monthly")
DEFAULT_THRESHOLDS: tuple[int, ...] = (50, 75, 90, 100)
MAX_AMOUNT = Decimal("1e12")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_MAX_SCOPE_VALUE = 256


class BudgetError(ValueError):
    """An invalid budget; the message names every problem."""


@dataclass(frozen=True)
class Budget:
    id: str
    amount_usd: Decimal
    period: str
    tenant_id: str = ""  # '' = any
    user_id: str = ""
    feature: str = ""
    timezone: str = "UTC"
    hard: bool = True
    thresholds: tuple[int, ...] = ()  # percent; () = the collector's default
    max_ratio: Decimal = Decimal(0)  # > 0: a ratio budget (AI cost / revenue); amount_usd is 0 then

    @property
    def is_ratio(self) -> bool:
        return self.max_ratio > 0

    @classmethod
    def parse(cls, doc: Mapping[str, Any], *, budget_id: str | None = None, default_timezone: str = "UTC") -> "Budget":
        """A budget from JSON-like input (API body, CLI flags). Fields: id, amount_usd,
        period, tenant, user, feature, timezone, hard, thresholds. Raises BudgetError
        naming every problem."""
        problems: list[str] = []
        known = {
            "id",
            "amount_usd",
            "period",
            "tenant",
            "user",
            "feature",
            "timezone",
            "hard",
            "thresholds",
            "max_ratio",
        }
        for key in doc:
            if key not in known:
                problems.append(f"unknown field {str(key)[:64]!r} (use {', '.join(sorted(known))})")
        bid = budget_id if budget_id is not None else doc.get("id")
        if not isinstance(bid, str) or not _ID.match(bid):
            problems.append("id: 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit")
        ratio = Decimal(0)
        if doc.get("max_ratio") not in (None, ""):
            ratio = _ratio(doc, problems)
            amount = Decimal(0)
        else:
            amount = _amount(doc.get("amount_usd"), problems)
        period = doc.get("period")
        if period not in PERIODS:
            problems.append(f"period: {str(period)[:32]!r} is not one of {', '.join(PERIODS)}")
        scope = {}
        for key in ("tenant", "user", "feature"):
            value = doc.get(key)
            if value is None:
                value = ""
            if not isinstance(value, str) or len(value) > _MAX_SCOPE_VALUE:
                problems.append(f"{key}: a string of at most {_MAX_SCOPE_VALUE} characters")
                value = ""
            scope[key] = value
        if not any(scope.values()):
            problems.append("scope: set at least one of tenant, user, feature")
        tz = doc.get("timezone") or ("UTC" if ratio else default_timezone)
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"timezone: unknown time zone {str(tz)[:64]!r}")
        hard = doc.get("hard", not ratio)
        if not isinstance(hard, bool):
            problems.append("hard: true or false")
        thresholds = doc.get("thresholds") or ()
        if isinstance(thresholds, str):
            thresholds = [t for t in thresholds.split(",") if t.strip()]
        if isinstance(thresholds, (list, tuple)):
            parsed_thresholds = parse_thresholds(thresholds, problems)
        else:
            problems.append("thresholds: a list of percents, or a comma-separated string")
            parsed_thresholds = ()
        if problems:
            raise BudgetError("invalid budget: " + "; ".join(problems))
        assert isinstance(bid, str) and isinstance(period, str)
        return cls(
            id=bid,
            amount_usd=amount,
            period=period,
            tenant_id=scope["tenant"],
            user_id=scope["user"],
            feature=scope["feature"],
            timezone=str(tz),
            hard=hard,
            thresholds=parsed_thresholds,
            max_ratio=ratio,
        )

    def applies_to(self, tenant: str, user: str, feature: str) -> bool:
        """Whether calls attributed to (tenant, user, feature) count against this budget."""
        return (
            (not self.tenant_id or self.tenant_id == tenant)
            and (not self.user_id or self.user_id == user)
            and (not self.feature or self.feature == feature)
        )

    def scope(self) -> dict[str, str]:
        return {k: v for k, v in (("tenant", self.tenant_id), ("user", self.user_id), ("feature", self.feature)) if v}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.scope(),
            **({} if self.is_ratio else {"amount_usd": _plain(self.amount_usd)}),  # as entered: storage pads
            "period": self.period,
            "timezone": self.timezone,
            "hard": self.hard,
            "thresholds": list(self.thresholds),
            **({"max_ratio": _plain(self.max_ratio)} if self.is_ratio else {}),
        }


def parse_thresholds(values: Sequence[Any], problems: list[str]) -> tuple[int, ...]:
    out = []
    for raw in values:
        try:
            value = int(str(raw).strip())
        except ValueError:
            problems.append(f"thresholds: {str(raw)[:16]!r} is not a whole percent")
            continue
        if not 1 <= value <= 1000:
            problems.append(f"thresholds: {value} is outside 1..1000 percent")
        out.append(value)
    return tuple(sorted(set(out)))


def _ratio(doc: Mapping[str, Any], problems: list[str]) -> Decimal:
    """A ratio budget's max_ratio, and what such a budget may not have."""
    raw = doc["max_ratio"]
    ratio = Decimal(0)
    try:
        ratio = Decimal(str(raw).strip()) if not isinstance(raw, (bool, float)) else Decimal("NaN")
    except InvalidOperation:
        ratio = Decimal("NaN")
    if not ratio.is_finite() or not 0 < ratio <= 1000:
        problems.append(f"max_ratio: {str(raw)[:32]!r} is not a share of revenue above 0 (0.3 is 30 %)")
        ratio = Decimal(0)
    if doc.get("amount_usd") not in (None, ""):
        problems.append("amount_usd: a budget has either amount_usd or max_ratio, not both")
    if not doc.get("tenant"):
        problems.append("tenant: a ratio budget is of one tenant (revenue is a tenant's)")
    if doc.get("user"):
        problems.append("user: a ratio budget is of a tenant or a tenant's feature, not a user")
    if doc.get("hard") is True:
        problems.append("hard: a ratio budget only alerts (the SDK cannot know revenue)")
    if (doc.get("timezone") or "UTC") != "UTC":
        problems.append("timezone: a ratio budget's periods are UTC (revenue is spread over UTC days)")
    return ratio


def _amount(raw: Any, problems: list[str]) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
        problems.append("amount_usd: a decimal string or an integer (not a float: money is exact)")
        return Decimal(0)
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        problems.append(f"amount_usd: {str(raw)[:32]!r} is not a number")
        return Decimal(0)
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
        problems.append(f"amount_usd: must be more than 0 and at most {MAX_AMOUNT}")
        return Decimal(0)
    if amount.as_tuple().exponent < -18:  # type: ignore[operator]
        problems.append("amount_usd: at most 18 decimal places")
    return amount


def period_bounds(period: str, tz_name: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the calendar period containing ``now`` (an aware datetime),
    in time zone ``tz_name``; weeks start on Monday. Daylight-saving days are 23 or 25 h."""
    tz = ZoneInfo(tz_name)
    local = now.astimezone(tz)
    day = local.date()
    if period == "daily":
        first, nxt = day, day + timedelta(days=1)
    elif period == "weekly":
        first = day - timedelta(days=day.weekday())
        nxt = first + timedelta(days=7)
    elif period == "monthly":
        first = day.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
    else:
        raise BudgetError(f"unknown period {period!r}")

    def midnight(d: Any) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(timezone.utc)

    return midnight(first), midnight(nxt)


_last_stamp = datetime.min.replace(tzinfo=timezone.utc)
_stamp_lock = threading.Lock()


def version_stamp() -> datetime:
    """Wall-clock time for a row's ``updated_at`` (the newest row wins), strictly
    increasing within this process so two changes never tie."""
    global _last_stamp
    with _stamp_lock:
        now = datetime.now(timezone.utc)
        _last_stamp = now if now > _last_stamp else _last_stamp + timedelta(microseconds=1)
        return _last_stamp


@dataclass
class BudgetStore:
    """Budgets in ClickHouse. Thread-safety: as the client's (one caller at a time for chDB)."""

    client: Any
    database: str

    def list(self) -> list[Budget]:
        rows = self.client.query(sql(__package__, "budgets_list", db=self.database)).result_rows
        return [
            Budget(
                id=r[0],
                tenant_id=r[1],
                user_id=r[2],
                feature=r[3],
                amount_usd=Decimal(r[4]),
                period=r[5],
                timezone=r[6],
                hard=bool(r[7]),
                thresholds=tuple(int(t) for t in r[8]),
                max_ratio=Decimal(r[9]),
            )
            for r in rows
        ]

    def put(self, budget: Budget) -> None:
        self._insert(budget, deleted=0)

    def delete(self, budget_id: str) -> bool:
        """Remove a budget; False if there was none with that id."""
        current = {b.id: b for b in self.list()}
        if budget_id not in current:
            return False
        self._insert(current[budget_id], deleted=1)
        return True

    def _insert(self, b: Budget, deleted: int) -> None:
        self.client.insert(
            f"`{self.database}`.budgets",
            [
                [
                    b.id,
                    b.tenant_id,
                    b.user_id,
                    b.feature,
                    b.amount_usd,
                    b.period,
                    b.timezone,
                    int(b.hard),
                    list(b.thresholds),
                    b.max_ratio,
                    deleted,
                    version_stamp(),
                ]
            ],
            column_names=[
                "id",
                "tenant_id",
                "user_id",
                "feature",
                "amount_usd",
                "period",
                "timezone",
                "hard",
                "thresholds",
                "max_ratio",
                "deleted",
                "updated_at",
            ],
            settings={"async_insert": 0},
        )


def _plain(amount: Decimal) -> str:
    text = format(amount, "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"
