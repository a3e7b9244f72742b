"""Charts as inline SVG, rendered on the server: pure functions, data in, markup out.

Why server-rendered SVG and not a JavaScript charting library: the page then works with
no script at all, ships no assets to vendor or update, prints, and shows exactly the
numbers the tables under it show (both come from the same rows). Every label is escaped.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Mapping, Sequence

__all__ = ["stacked_bars", "hbars", "PALETTE", "for_people", "exact"]

# Colour-blind-safe (Okabe–Ito), then greys for the rest.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999", "#666666")


def for_people(amount: Decimal) -> str:
    """Money as people read it: cents from a dollar up (``$9.15``, ``$1,204.50``), two
    significant digits below (``$0.0078``), so small costs stay apart. Exact amounts go in
    tables, tooltips, CSV and JSON."""
    if not amount:
        return "$0"
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    if amount >= 1:
        return f"{sign}${amount:,.2f}"
    digits = f"{amount:.2g}" if amount >= Decimal("0.0001") else f"{amount:.2e}"
    return f"{sign}${Decimal(digits):f}" if "e" not in digits else f"{sign}${digits}"


def exact(amount: Decimal) -> str:
    """The exact amount, as tables and tooltips show it."""
    text = format(amount, "f")
    return "$" + ((text.rstrip("0").rstrip(".") if "." in text else text) or "0")


def stacked_bars(
    columns: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal]]],
    *,
    title: str,
    width: int = 720,
    height: int = 240,
    hrefs: Sequence[str] | None = None,
    markers: Mapping[str, tuple[str, str]] | None = None,
) -> str:
    """Vertical bars per column (e.g. day), stacked by series (e.g. feature); USD values.
    ``hrefs`` (one per series) make the legend's names links; ``markers`` (column → (what,
    link)) put a linked marker above a column (an anomaly that day)."""
    n = max(len(columns), 1)
    totals = [sum((values[i] for _, values in series), Decimal(0)) for i in range(len(columns))]
    top = max(totals, default=Decimal(0)) or Decimal(1)
    left, plot_h = 64, height - 28 - 10  # 28 px below the plot for the labels, 10 above
    plot_w = width - left - 8
    bar_w = plot_w / n
    parts = [
        # in a scrolling box no narrower than 0.92 × its width: 12 px text never shrinks below 11 px
        f'<div class="scroll"><svg class="chart" viewBox="0 0 {width} {height + 22 * ((len(series) + 3) // 4)}" '
        f'role="img" aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet" '
        f'style="min-width:{round(width * 0.92)}px">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (Decimal(0), Decimal("0.5"), Decimal(1)):
        y = 10 + plot_h - float(frac) * plot_h
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{for_people(top * frac)}</text>'
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
                f"<title>{escape(column)} · {escape(name or '(none)')}: {exact(value)}</title></rect>"
            )
        if markers and column in markers:
            what, link = markers[column]
            x = left + (i + 0.5) * bar_w
            parts.append(
                f'<a href="{escape(link)}" class="marker"><path d="M{x - 6:.1f},1 L{x + 6:.1f},1 L{x:.1f},10 Z" '
                f'fill="#D55E00"><title>{escape(what)}</title></path></a>'
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
            + (f'<a href="{escape(hrefs[k])}">' if hrefs is not None else "")
            + f'<text x="{x + 16:.1f}" y="{y}" class="legend">{escape(name or "(none)")}</text>'
            + ("</a>" if hrefs is not None else "")
        )
    parts.append("</svg></div>")
    return "".join(parts)


def hbars(
    rows: Sequence[tuple[str, Decimal, str]],
    *,
    title: str,
    money: bool = True,
    hrefs: Sequence[str] | None = None,
) -> str:
    """Horizontal bars, one per row (label, value, text shown at the bar's end), as HTML: its
    text keeps its size on a phone, where an SVG's would shrink with the picture. Each row's
    tooltip is the exact amount (``money``), else the text; ``hrefs`` make the labels links."""
    top = max((v for _, v, _ in rows), default=Decimal(0)) or Decimal(1)
    parts = [f'<div class="hbars" aria-label="{escape(title)}">']
    for i, (label, value, text) in enumerate(rows):
        share = float(value / top) * 100 if value > 0 else 0.0
        name = escape(label[:60] or "(none)")
        if hrefs is not None:
            name = f'<a href="{escape(hrefs[i])}">{name}</a>'
        parts.append(
            f'<div class="hbar" title="{escape(label or "(none)")}: {escape(exact(value) if money else text)}">'
            f'<span class="label">{name}</span>'
            f'<span class="track"><span class="fill" style="width:{share:.1f}%"></span></span>'
            f'<span class="value">{escape(text)}</span></div>'
        )
    parts.append("</div>")
    return "".join(parts)
