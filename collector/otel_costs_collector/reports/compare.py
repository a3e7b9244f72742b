"""What changed the cost of a feature: per feature, its figures in each release (``by=version``)
or in two ranges (``before``/``after``), and each change split into its factors. One parameter
set for ``otel-costs compare`` and ``GET /v1/compare``; the rows come from the same rollups as
every report (otel_costs_collector/reports/query.py).

For a feature in a period (a release's calls, or a range's): ``calls``; ``cost_usd``;
``cost_per_call`` = cost / calls; ``tokens_per_call`` = (input + output tokens) / calls;
``usd_per_mtok`` = cost / (input + output tokens) × 10⁶; ``models``: each model's share of the
calls. A change from one period to the next multiplies out exactly:

    cost_after / cost_before = calls ratio × tokens-per-call ratio × price-per-token ratio

(each ratio rounded half-even to 6 places for reading; the money figures are exact Decimals).
``model_change`` names the model that made most of the calls before and after, when it differs.
Releases are ordered by the first day they have calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Mapping

from otel_costs_collector.reports.query import FILTERS, ReportError, ReportQuery, money_text, run_report

__all__ = ["CompareQuery", "run_compare", "MAX_PERIODS", "figures", "change", "shown"]

#: Releases (or ranges) shown per feature at most: the latest ones.
MAX_PERIODS = 20
_RATIO = Decimal("0.000001")
_ZERO = Decimal(0)
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class CompareQuery:
    """``by`` "version": ``whole`` is the range, releases compared in order; "range": ``before``
    and ``after`` are two ranges."""

    by: str
    whole: ReportQuery | None = None
    before: ReportQuery | None = None
    after: ReportQuery | None = None

    @classmethod
    def parse(cls, params: Mapping[str, Any], now: datetime | None = None) -> "CompareQuery":
        """``by=version`` with the report's range and filters (``since`` or ``from``/``to``, feature,
        tenant, …), or ``before_from``, ``before_to``, ``after_from``, ``after_to`` (two ranges)
        with the filters. Raises ReportError naming every problem."""
        problems: list[str] = []
        filters = {k: v for k, v in params.items() if k in FILTERS and v}
        ranges = ("before_from", "before_to", "after_from", "after_to")
        unknown = set(params) - {"by", "since", "from", "to", "format", *ranges, *FILTERS}
        if unknown:
            problems.append(f"unknown parameter(s): {', '.join(sorted(str(u)[:32] for u in unknown))}")
        given = [r for r in ranges if params.get(r)]
        by = str(params.get("by") or ("range" if given else "version"))
        if by not in ("version", "range"):
            problems.append(f"by: {by[:32]!r} is not version (or give before_from/before_to/after_from/after_to)")
        try:
            if by == "range":
                if len(given) != 4:
                    raise ReportError("give before_from, before_to, after_from and after_to (ISO dates)")
                before = ReportQuery.parse(
                    {"by": "feature,model", "from": params["before_from"], "to": params["before_to"], **filters}, now
                )
                after = ReportQuery.parse(
                    {"by": "feature,model", "from": params["after_from"], "to": params["after_to"], **filters}, now
                )
                if not problems:
                    return cls("range", before=before, after=after)
            else:
                whole = {k: params[k] for k in ("since", "from", "to") if params.get(k)}
                report = ReportQuery.parse({"by": "feature,version,model,day", **whole, **filters}, now)
                if not problems:
                    return cls("version", whole=report)
        except ReportError as exc:
            problems.append(str(exc))
        raise ReportError("; ".join(problems))


def run_compare(client: Any, db: str, query: CompareQuery) -> list[dict[str, Any]]:
    """Per feature (most expensive first): ``periods`` (each release or range with its figures)
    and ``changes`` (each period against the one before it). Raises on a storage error."""
    periods: dict[str, dict[str, dict[str, Any]]] = {}  # feature → period → figures
    if query.by == "range":
        assert query.before is not None and query.after is not None
        for name, report in (("before", query.before), ("after", query.after)):
            for row in run_report(client, db, report):
                _add(periods, row["feature"], name, report.start.date().isoformat(), row)
    else:
        assert query.whole is not None
        for row in run_report(client, db, query.whole):
            _add(periods, row["feature"], row["version"], row["day"], row)
    out = []
    for feature, by_period in periods.items():
        ordered = sorted(by_period.items(), key=lambda kv: (kv[1]["first"], kv[0]))[-MAX_PERIODS:]
        made = [figures(name, f) for name, f in ordered]
        changes = [change(a, b) for a, b in zip(made, made[1:])]
        total = sum((f["cost"] for _, f in ordered), _ZERO)
        out.append((total, feature, {"feature": feature, "periods": [shown(f) for f in made], "changes": changes}))
    out.sort(key=lambda t: (-t[0], t[1]))
    return [entry for _, _, entry in out]


def _add(
    periods: dict[str, dict[str, dict[str, Any]]], feature: str, period: str, day: str, row: dict[str, Any]
) -> None:
    f = periods.setdefault(feature, {}).setdefault(
        period, {"calls": 0, "tokens": 0, "cost": _ZERO, "models": {}, "first": day}
    )
    calls = int(row["calls"])
    f["calls"] += calls
    f["tokens"] += int(row["input_tokens"]) + int(row["output_tokens"])
    f["cost"] += Decimal(row["cost_usd"])
    f["models"][row["model"]] = f["models"].get(row["model"], 0) + calls
    if day and (not f["first"] or day < f["first"]):
        f["first"] = day


def figures(name: str, f: dict[str, Any]) -> dict[str, Any]:
    """A period's figures from its sums: ``calls``, ``tokens`` (input + output), ``cost`` (Decimal),
    ``models`` (model → calls) and ``first`` (its first day, "" when unknown)."""
    calls, tokens, cost = f["calls"], f["tokens"], f["cost"]
    models = sorted(f["models"].items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "period": name,
        "first_day": f["first"] or None,
        "calls": calls,
        "cost": cost,
        "tokens": tokens,
        "cost_per_call": cost / calls if calls else None,
        "tokens_per_call": Decimal(tokens) / calls if calls else None,
        "usd_per_mtok": cost * _MILLION / tokens if tokens else None,
        "models": [(m, calls_of) for m, calls_of in models],
    }


def shown(f: dict[str, Any]) -> dict[str, Any]:
    """A period's figures as JSON (exact decimal strings)."""
    calls = f["calls"]
    return {
        "period": f["period"],
        "first_day": f["first_day"],
        "calls": calls,
        "cost_usd": money_text(f["cost"]),
        "cost_per_call": _text(f["cost_per_call"]),
        "tokens_per_call": _text(f["tokens_per_call"]),
        "usd_per_mtok": _text(f["usd_per_mtok"]),
        "models": [
            {"model": m, "calls": n, "share": format((Decimal(n) / calls).quantize(_RATIO, ROUND_HALF_EVEN), "f")}
            for m, n in f["models"]
        ],
    }


def change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed from one period's :func:`figures` to another's (see the module docstring)."""

    def ratio(a: Decimal | int | None, b: Decimal | int | None) -> str | None:
        if a is None or b is None or not b:
            return None
        return format((Decimal(a) / Decimal(b)).quantize(_RATIO, ROUND_HALF_EVEN), "f")

    top_before = before["models"][0][0] if before["models"] else ""
    top_after = after["models"][0][0] if after["models"] else ""
    out = {
        "from": before["period"],
        "to": after["period"],
        "cost_delta_usd": money_text(after["cost"] - before["cost"]),
        "cost_ratio": ratio(after["cost"], before["cost"]),
        "calls_ratio": ratio(after["calls"], before["calls"]),
        "tokens_per_call_ratio": ratio(after["tokens_per_call"], before["tokens_per_call"]),
        "price_per_token_ratio": ratio(after["usd_per_mtok"], before["usd_per_mtok"]),
        "cost_per_call_ratio": ratio(after["cost_per_call"], before["cost_per_call"]),
        "model_change": {"from": top_before, "to": top_after} if top_before != top_after else None,
    }
    out["summary"] = _summary(out)
    return out


def _summary(c: dict[str, Any]) -> str:
    words = f"{c['from'] or '(none)'} → {c['to'] or '(none)'}"
    if c["cost_per_call_ratio"] is not None:
        words += f": cost per call ×{Decimal(c['cost_per_call_ratio']).normalize():f}"
    if c["model_change"]:
        words += f" — model {c['model_change']['from'] or '(none)'} → {c['model_change']['to'] or '(none)'}"
    return words


def _text(value: Decimal | None) -> str | None:
    return None if value is None else money_text(value)
