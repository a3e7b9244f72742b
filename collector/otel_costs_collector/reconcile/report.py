"""Tracked vs billed, per UTC day, provider and model: one parameter set for
``otel-costs reconcile`` and ``GET /v1/reconciliation``, one reading of storage.

Billed: the newest pull of each day from the providers' cost reports (``provider_costs``).
Tracked: the costs the collector counted (the daily rollups), for the same day and provider,
each model on its own row whether or not the bill names it that day (models compared as
genai-prices' ids; a model the bill is silent on has billed 0), and the project whose key the
calls used when ``projects`` maps their service or tenant to an OpenAI project. The model ''
holds line items that name no model (web search) and tracked cost with no model.
Only providers whose reports were pulled for the range appear. A day is ``complete`` when
it was pulled at least ``settle`` after it ended (the providers change a day's figures for a
while after it ends). Exact decimal strings throughout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Mapping

from otel_costs_collector.reconcile.providers import canonical_model
from otel_costs_collector.reports.query import money_text
from otel_costs_collector.sql import load

__all__ = ["ReconcileError", "ReconcileQuery", "run_reconciliation", "DIMENSIONS", "DEFAULT_SETTLE", "capture_rate"]

DIMENSIONS = ("day", "provider", "model", "project")
DEFAULT_BY = ("day", "provider")
DEFAULT_SINCE = "30d"
#: How long after a UTC day ends its figures may still change at the provider.
DEFAULT_SETTLE = timedelta(hours=24)
MAX_DAYS = 366 * 3
_SINCE = re.compile(r"^(\d{1,4})([dw])$")
_RATE = Decimal("0.000001")
#: OpenAI project id → ("service" or "tenant", name): whose calls use that project's key.
Projects = Mapping[str, tuple[str, str]]


class ReconcileError(ValueError):
    """A parameter is invalid; the message names every one."""


@dataclass(frozen=True)
class ReconcileQuery:
    start: date  # UTC day, inclusive
    end: date  # UTC day, exclusive
    by: tuple[str, ...] = DEFAULT_BY

    @classmethod
    def parse(cls, params: Mapping[str, Any], now: datetime | None = None) -> "ReconcileQuery":
        """``since`` (``30d``, ``4w``: today and the days before it) or ``from``/``to``
        (ISO dates, ``to`` exclusive, default tomorrow), and ``by`` (comma-separated
        day, provider, model, project). Raises ReconcileError naming every problem."""
        problems: list[str] = []
        unknown = set(params) - {"since", "from", "to", "by", "format"}
        if unknown:
            problems.append(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
        by = tuple(p.strip() for p in str(params.get("by") or ",".join(DEFAULT_BY)).split(",") if p.strip())
        wrong = [p for p in by if p not in DIMENSIONS]
        if wrong or len(set(by)) != len(by) or not by:
            problems.append(f"by: a comma-separated list of {', '.join(DIMENSIONS)}, each once")
        since, start_raw, end_raw = params.get("since"), params.get("from"), params.get("to")
        start, end = today - timedelta(days=29), today + timedelta(days=1)
        if since and (start_raw or end_raw):
            problems.append("since: give either since or from/to, not both")
        elif start_raw or end_raw:
            if not start_raw:
                problems.append("from: required with to")
            start = _day(start_raw, "from", problems) if start_raw else start
            end = _day(end_raw, "to", problems) if end_raw else end
        else:
            m = _SINCE.match(str(since or DEFAULT_SINCE))
            if m is None:
                problems.append(f"since: {str(since)[:40]!r} is not like 30d or 4w")
            else:
                days = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
                start = today - timedelta(days=max(days, 1) - 1)
        if start >= end:
            problems.append("from: must be before to")
        elif (end - start).days > MAX_DAYS:
            problems.append(f"the range is longer than {MAX_DAYS} days")
        if problems:
            raise ReconcileError("; ".join(problems))
        return cls(start, end, by)


def _day(raw: Any, name: str, problems: list[str]) -> date:
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        problems.append(f"{name}: {str(raw)[:40]!r} is not a date like 2026-11-01")
        return date(1970, 1, 1)


def capture_rate(tracked: Decimal, billed: Decimal) -> Decimal | None:
    """tracked / billed to six places; None when nothing was billed."""
    return (tracked / billed).quantize(_RATE) if billed else None


def run_reconciliation(
    client: Any,
    db: str,
    query: ReconcileQuery,
    *,
    settle: timedelta = DEFAULT_SETTLE,
    now: datetime | None = None,
    projects: Projects | None = None,
) -> list[dict[str, Any]]:
    """The rows of ``query``, in order of their keys (days oldest first). ``projects``: OpenAI
    project id → ("service" or "tenant", its name), whose calls are that project's. Raises on a
    storage error."""
    now = now or datetime.now(timezone.utc)
    days = day_figures(client, db, query.start, query.end, settle=settle, now=now, projects=projects)
    providers = {provider for provider, _, _, _ in days}
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for (provider, day, model, project), (billed, tracked, attributed, _) in days.items():
        values = {"day": day, "provider": provider, "model": model, "project": project}
        key = tuple(values[d] for d in query.by)
        group = groups.setdefault(key, [Decimal(0), Decimal(0), Decimal(0), set()])
        group[0] += billed
        group[1] += tracked
        group[2] += attributed
        group[3].update(
            (p, d)
            for p in ([provider] if "provider" in query.by else providers)
            for d in ([day] if "day" in query.by else _days(query.start, query.end))
        )
    complete_days = {(p, d) for (p, d, _, _), figure in days.items() if figure[3]}
    rows = []
    for key in sorted(groups):
        billed, tracked, attributed, covered = groups[key]
        # complete when every day it covers, of every provider it covers, is final
        complete = covered <= complete_days
        if not billed and not tracked:
            continue  # pulled, nothing billed and nothing called: nothing to say
        rate = capture_rate(tracked, billed)
        row: dict[str, Any] = {d: (k.isoformat() if isinstance(k, date) else k) for d, k in zip(query.by, key)}
        row.update(
            billed_usd=money_text(billed),
            tracked_usd=money_text(tracked),
            untracked_usd=money_text(billed - tracked),
            capture_rate=None if rate is None else format(rate, "f"),
            attributed_usd=money_text(attributed),
            complete=complete,
        )
        rows.append(row)
    return rows


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def day_figures(
    client: Any,
    db: str,
    start: date,
    end: date,
    *,
    settle: timedelta,
    now: datetime,
    projects: Projects | None = None,
) -> dict[tuple[str, date, str, str], tuple[Decimal, Decimal, Decimal, bool]]:
    """(provider, day, model, project) → (billed, tracked, attributed, complete) for every
    provider pulled in the range; every day a provider was pulled has an entry (the model and
    project '' at least). Raises on a storage error."""
    params = {"start": start, "end": end}
    pulled: dict[tuple[str, date], datetime] = {}
    figures: dict[tuple[str, date, str, str], list[Any]] = {}
    for provider, day, model, project, billed, pulled_at in client.query(
        load(__package__, "billed_days", db=db), parameters=params
    ).result_rows:
        pulled[(provider, day)] = pulled_at.replace(tzinfo=timezone.utc)
        figures.setdefault((provider, day, model, project), [Decimal(0), Decimal(0), Decimal(0)])[0] += Decimal(billed)
    providers = sorted({p for p, _ in pulled})
    if not providers:
        return {}
    whose = {(kind, name): project for project, (kind, name) in (projects or {}).items()}
    text = load(__package__, "tracked_days", db=db)
    for provider, day, raw_model, service, tenant, tracked, attributed in client.query(
        text, parameters={**params, "providers": providers}
    ).result_rows:
        model = canonical_model(provider, raw_model)
        project = whose.get(("service", service)) or whose.get(("tenant", tenant)) or "" if provider == "openai" else ""
        figure = figures.setdefault((provider, day, model, project), [Decimal(0), Decimal(0), Decimal(0)])
        figure[1] += Decimal(tracked)
        figure[2] += Decimal(attributed)
    out = {}
    for (provider, day, model, project), (billed, tracked, attributed) in figures.items():
        at = pulled.get((provider, day))
        end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc)
        complete = at is not None and at >= end_of_day + settle and now >= end_of_day + settle
        out[(provider, day, model, project)] = (billed, tracked, attributed, complete)
    return out
