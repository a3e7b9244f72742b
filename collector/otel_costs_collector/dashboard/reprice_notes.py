"""The dashboard's notes on re-pricing: a note per day of the range whose calls were re-priced
(who, when, with which prices; the totals before and after for an admin), and, beside calls
with no known price, the command that prices them once a price is added."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any

from otel_costs_collector.dashboard.svg import for_people

__all__ = ["fix_command", "repriced_notes"]


def repriced_notes(days: list[dict[str, Any]], admin: bool) -> list[str]:
    """``days``: otel_costs_collector.reprice.versions.repriced_days rows. A tenant's view says
    that a day was re-priced, not what every tenant's calls cost before and after."""
    out = []
    for d in days:
        when = escape(d["at"][:16].replace("T", " "))
        text = f"Costs of {escape(d['day'])} were re-priced on {when} UTC by {escape(d['by'])}"
        if admin:
            before, after = Decimal(d["cost_before"]), Decimal(d["cost_after"])
            text += (
                f": {d['rows']:,} call{'s' if d['rows'] != 1 else ''}, {escape(for_people(before))} → "
                f"{escape(for_people(after))} (prices {escape(d['prices'])}; run <code>{escape(d['run'])}</code>, "
                f"<code>otel-costs reprice --show {escape(d['run'])}</code> lists the old versions)"
            )
        out.append(f'<p class="note" data-testid="repriced">{text}.</p>')
    return out


def fix_command(start: datetime, end: datetime, models: list[str]) -> str:
    """The command that re-prices a range's unpriced calls (whole UTC days; one model when the
    calls are of one), once their price is in the overrides file."""
    first = start.date().isoformat()
    last = (end - timedelta(microseconds=1)).date() + timedelta(days=1)
    model = f" --model '{models[0]}'" if len(models) == 1 and "'" not in models[0] else ""
    return f"otel-costs reprice --from {first} --to {last.isoformat()}{model} --only unpriced"
