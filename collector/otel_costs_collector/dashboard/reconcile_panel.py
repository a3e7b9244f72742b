"""The dashboard's "Tracked vs billed" panel: per UTC day and provider, what the provider
billed, what was tracked, the gap and the capture rate, for the operator (admin viewers)
when the collector pulls the providers' cost reports (otel_costs_collector/reconcile)."""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Any

__all__ = ["tracked_vs_billed"]


def tracked_vs_billed(rows: list[dict[str, Any]], band: tuple[Decimal, Decimal]) -> str:
    """The panel's HTML for reconciliation rows by day and provider (newest day first)."""
    low, high = band
    out = ['<section class="panel" id="reconciliation"><h2>Tracked vs billed</h2>']
    if not rows:
        out.append('<p class="empty">No provider cost report pulled for this range yet.</p></section>')
        return "".join(out)
    gaps = []
    body = []
    for r in sorted(rows, key=lambda r: (r["day"], r["provider"]), reverse=True):
        rate = Decimal(r["capture_rate"]) if r["capture_rate"] is not None else None
        off = rate is not None and not low <= rate <= high
        if off and r["complete"]:
            gaps.append(f"{r['provider']} on {r['day']}: ${Decimal(r['untracked_usd']):f} untracked ({rate:%})")
        body.append(
            f'<tr class="{"gap" if off else ""}"><td>{escape(r["day"])}</td><td>{escape(r["provider"])}</td>'
            f'<td class="num">{escape(r["billed_usd"])}</td><td class="num">{escape(r["tracked_usd"])}</td>'
            f'<td class="num">{escape(r["untracked_usd"])}</td>'
            f'<td class="num">{escape(r["capture_rate"] or "–")}</td>'
            f'<td class="num">{escape(r["attributed_usd"])}</td>'
            f"<td>{'complete' if r['complete'] else 'may still change'}</td></tr>"
        )
    if gaps:
        out.append(
            f'<p class="warn" role="alert" data-testid="reconcile-gap">Capture rate outside {low:f}–{high:f}: '
            + "; ".join(escape(g) for g in gaps)
            + "</p>"
        )
    out.append(
        '<table data-panel="reconciliation"><thead><tr><th>day (UTC)</th><th>provider</th><th>billed (USD)</th>'
        "<th>tracked (USD)</th><th>untracked (USD)</th><th>capture rate</th><th>attributed (USD)</th>"
        f"<th>status</th></tr></thead><tbody>{''.join(body)}</tbody></table></section>"
    )
    return "".join(out)
