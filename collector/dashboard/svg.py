"""Charts as inline SVG, rendered on the server: pure functions, data in, markup out.

Why server-rendered SVG and not a JavaScript charting library: the page then works with
no script at all, ships no assets to vendor or update, prints, and shows exactly the
numbers the tables under it show (both come from the same rows). Every label is escaped.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Sequence

__all__ = ["stacked_bars", "hbars", "PALETTE"]

# Colour-blind-safe (Okabe–Ito), then greys for the rest.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999", "#666666")


def _money(amount: Decimal) -> str:
    """Short labels for axes and tooltips (tables carry the exact amounts)."""
    if amount >= 100:
        return f"${amount:,.0f}"
    if amount >= 1:
        return f"${amount:,.2f}"
    return f"${float(amount):.3g}" if amount else "$0"


def stacked_bars(
    columns: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal]]],
    *,
    title: str,
    width: int = 720,
    height: int = 240,
) -> str:
    """Vertical bars per column (e.g. day), stacked by series (e.g. feature); USD values."""
    n = max(len(columns), 1)
    totals = [sum((values[i] for _, values in series), Decimal(0)) for i in range(len(columns))]
    top = max(totals, default=Decimal(0)) or Decimal(1)
    left, plot_h = 64, height - 28 - 10  # 28 px below the plot for the labels, 10 above
    plot_w = width - left - 8
    bar_w = plot_w / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height + 22 * ((len(series) + 3) // 4)}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (Decimal(0), Decimal("0.5"), Decimal(1)):
        y = 10 + plot_h - float(frac) * plot_h
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{_money(top * frac)}</text>'
        )
    for i, column in enumerate(columns):
        y = 10 + plot_h
        for k, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            h = float(value / top) * plot_h
            y -= h
            parts.append(
                f'<rect x="{left + i * bar_w + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                f"<title>{escape(column)} · {escape(name)}: {_money(value)}</title></rect>"
            )
        if n <= 16 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text x="{left + (i + 0.5) * bar_w:.1f}" y="{height - 10}" text-anchor="middle" '
                f'class="axis">{escape(column[5:] if len(column) == 10 else column)}</text>'
            )
    for k, (name, _) in enumerate(series):
        x, y = left + (k % 4) * (plot_w / 4), height + 16 + 22 * (k // 4)
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>'
            f'<text x="{x + 16:.1f}" y="{y}" class="legend">{escape(name or "(none)")}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def hbars(rows: Sequence[tuple[str, Decimal, str]], *, title: str, width: int = 720) -> str:
    """Horizontal bars, one per row (label, value, text shown at the bar's end)."""
    bar_h, gap, label_w = 22, 6, 220
    height = max(len(rows), 1) * (bar_h + gap) + gap
    top = max((v for _, v, _ in rows), default=Decimal(0)) or Decimal(1)
    plot_w = width - label_w - 180
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>'
    ]
    for i, (label, value, text) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(float(value / top) * plot_w, 1.0 if value else 0.0)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" class="label">'
            f"{escape(label[:40] or '(none)')}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{PALETTE[0]}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" class="value">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
