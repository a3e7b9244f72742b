"""How the collector's configuration reads a flag's or an environment variable's text
(otel_costs_collector/config.py): each converter raises ValueError with a message that says
what was wrong; ranges and cross-field rules are ``CollectorConfig.validate``'s."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["integer", "percents", "band", "decimal", "shown_band", "projects"]


def integer(raw: Any) -> int:
    if isinstance(raw, (bool, float)):
        raise ValueError(f"{raw!r} is not an integer")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer") from None


def percents(raw: Any) -> tuple[int, ...]:
    """``"50,75,90"`` (or a sequence) as whole percents; their range is validate()'s."""
    values = str(raw).split(",") if isinstance(raw, str) else list(raw)
    out = []
    for value in (v for v in values if str(v).strip()):
        try:
            out.append(int(str(value).strip()))
        except ValueError:
            raise ValueError(f"{str(value)[:16]!r} is not a whole percent") from None
    return tuple(out)


def band(raw: Any) -> tuple[Decimal, Decimal]:
    """``"0.97,1.03"`` (or a pair) as two Decimals; their order is validate()'s."""
    parts = str(raw).split(",") if isinstance(raw, str) else list(raw)
    try:
        low, high = (Decimal(str(p).strip()) for p in parts)
    except (ValueError, InvalidOperation):
        raise ValueError(f"{raw!r} is not two rates like 0.97,1.03 (low < high)") from None
    return low, high


def decimal(raw: Any) -> Decimal:
    try:
        return Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"{str(raw)[:32]!r} is not a number") from None


def shown_band(band: tuple[Decimal, ...]) -> str:
    return ",".join(format(x, "f") if isinstance(x, Decimal) else str(x) for x in band)


def projects(raw: Any) -> dict[str, tuple[str, str]]:
    """``"proj_abc=service:chat-api,proj_def=tenant:acme"`` (or a mapping) as project id →
    ("service" or "tenant", name)."""
    pairs: list[tuple[Any, ...]]
    if isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        pairs = [tuple(part.split("=", 1)) for part in str(raw).split(",") if part.strip()]
    out: dict[str, tuple[str, str]] = {}
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"{str(pair[0])[:40]!r} is not PROJECT_ID=service:NAME or PROJECT_ID=tenant:NAME")
        project, target = str(pair[0]).strip(), pair[1]
        if isinstance(target, str):
            kind, _, name = target.strip().partition(":")
        else:
            kind, name = target
        if not project or kind not in ("service", "tenant") or not name.strip():
            raise ValueError(f"{project[:40]!r}: map a project to service:NAME or tenant:NAME")
        out[project] = (kind, name.strip())
    return out
