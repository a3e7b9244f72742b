"""What a re-price is asked to do (:class:`RepriceRequest`, from the CLI's flags or the API's
body), and what it found (:class:`Summary`: per UTC day, model and tenant, calls touched and
their cost before and after). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal, localcontext
from typing import Any, Mapping

from otel_costs_collector.reconcile.report import ReconcileError, ReconcileQuery
from otel_costs_collector.reprice.prices import ONLY

__all__ = ["EXACT", "money", "MAX_GROUPS", "RepriceError", "RepriceRequest", "Summary"]

#: The most (day, model, tenant) groups a summary lists; its totals always count every call.
MAX_GROUPS = 10_000
_FIELDS = {"since", "from", "to", "model", "only", "dry_run", "by"}
#: Sums of Decimal(38, 18) amounts, exact: wider than the default 28 digits.
EXACT = Context(prec=80)
_PLACES = Decimal(1).scaleb(-18)
_ACTOR = re.compile(r"^[\w.@:+ -]{1,128}$")


def money(amount: Decimal) -> str:
    """An amount (USD) as the API shows money: 18 decimal places, as storage holds it."""
    return format(amount.quantize(_PLACES, context=EXACT), "f")


class RepriceError(ValueError):
    """A request that cannot run; the message lists every problem."""


@dataclass(frozen=True)
class RepriceRequest:
    """Whole UTC days ``day_from`` … ``day_to`` (inclusive); ``model``: only the calls reports
    show under that model ("" every model); ``only``: "all" or "unpriced"; ``actor``: who asked."""

    day_from: date
    day_to: date
    model: str = ""
    only: str = "all"
    dry_run: bool = True
    actor: str = "api"

    @classmethod
    def parse(cls, params: Mapping[str, Any], now: datetime | None = None) -> "RepriceRequest":
        """From ``since`` (like 30d) or ``from``/``to`` (ISO dates; ``to`` exclusive, as in
        reports), ``model``, ``only``, ``dry_run`` (default true) and ``by``. Raises
        RepriceError naming every problem."""
        problems = [f"unknown field {name!r}" for name in sorted(set(params) - _FIELDS)]
        times = {k: str(params[k]) for k in ("since", "from", "to") if params.get(k) not in (None, "")}
        days = None
        if not times:
            problems.append("say which days: since (like 30d) or from/to (ISO dates)")
        else:
            try:  # whole UTC days, as reconciliation and margins take them
                days = ReconcileQuery.parse(times, now)
            except ReconcileError as exc:
                problems.append(str(exc))
        only = str(params.get("only") or "all")
        if only not in ONLY:
            problems.append(f"only must be one of {', '.join(ONLY)}, not {only!r}")
        model = params.get("model") or ""
        if not isinstance(model, str) or len(model) > 256:
            problems.append("model must be a model name (at most 256 characters)")
        dry_run = params.get("dry_run", True)
        if isinstance(dry_run, str):
            dry_run = dry_run.lower() not in ("0", "false", "no")
        elif not isinstance(dry_run, bool):
            problems.append("dry_run must be true or false")
        actor = str(params.get("by") or "api")
        if not _ACTOR.match(actor):
            problems.append("by must be a name (letters, digits, . @ : + - and spaces; at most 128)")
        day_from = day_to = date.min
        if days is not None:
            today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
            day_from, day_to = days.start, min(days.end - timedelta(days=1), today)
            if day_to < day_from:
                problems.append("the range starts after today")
        if problems:
            raise RepriceError("; ".join(problems))
        return cls(day_from, day_to, model, only, bool(dry_run), actor)

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in naive UTC, as queries take them."""
        return (
            datetime.combine(self.day_from, datetime.min.time()),
            datetime.combine(self.day_to + timedelta(days=1), datetime.min.time()),
        )

    def doc(self) -> dict[str, Any]:
        return {
            "from": self.day_from.isoformat(),
            "to": (self.day_to + timedelta(days=1)).isoformat(),  # exclusive, as given
            "model": self.model or None,
            "only": self.only,
            "dry_run": self.dry_run,
        }


@dataclass
class Summary:
    """Calls touched and their cost (USD) before and after, per (day, model, tenant); calls
    kept as they were, by reason. Bounded: at most :data:`MAX_GROUPS` groups."""

    groups: dict[tuple[date, str, str], list[Any]] = field(default_factory=dict)
    rows: int = 0
    before: Decimal = Decimal(0)
    after: Decimal = Decimal(0)
    kept: dict[str, int] = field(default_factory=dict)
    truncated: bool = False

    def add(self, day: date, model: str, tenant: str, copies: int, before: Decimal, after: Decimal) -> None:
        with localcontext(EXACT):
            before, after = before * copies, after * copies
            self.rows += copies
            self.before += before
            self.after += after
            group = self.groups.get((day, model, tenant))
            if group is None:
                if len(self.groups) >= MAX_GROUPS:
                    self.truncated = True
                    return
                group = self.groups[(day, model, tenant)] = [0, Decimal(0), Decimal(0)]
            group[0] += copies
            group[1] += before
            group[2] += after

    def keep(self, reason: str, copies: int) -> None:
        self.kept[reason] = self.kept.get(reason, 0) + copies

    def doc(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "cost_before": money(self.before),
            "cost_after": money(self.after),
            "difference": money(EXACT.subtract(self.after, self.before)),
            "kept": dict(sorted(self.kept.items())),
            "truncated": self.truncated,
            "changes": [
                {
                    "day": day.isoformat(),
                    "model": model,
                    "tenant": tenant,
                    "rows": n,
                    "cost_before": money(before),
                    "cost_after": money(after),
                    "difference": money(EXACT.subtract(after, before)),
                }
                for (day, model, tenant), (n, before, after) in sorted(self.groups.items())
            ],
        }
