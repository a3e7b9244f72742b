"""Price overrides: fine-tuned, self-hosted and negotiated prices from a TOML file, which win
over genai-prices (the Pricer asks :meth:`PriceOverrides.match` first). Loading validates
everything and names every problem; matching is pure and thread-safe."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .price_table import PriceTable

__all__ = ["PriceOverrides", "PriceOverridesError", "PRICES_FILE_ENV"]

#: Environment variable naming the price overrides file (TOML).
PRICES_FILE_ENV = "OTEL_COSTS_PRICES_FILE"


class PriceOverridesError(ValueError):
    """The overrides file is unreadable or invalid; the message lists every problem."""


_OVERRIDE_PRICE_KEYS = {
    "input": "input_per_mtok",
    "output": "output_per_mtok",
    "cache_read": "cache_read_per_mtok",
    "cache_write": "cache_write_per_mtok",
    "reasoning": "reasoning_per_mtok",
    "per_kilo_requests": "per_thousand_requests",
}
_OVERRIDE_KEYS = {"provider", "model", "id", "from", "until", *_OVERRIDE_PRICE_KEYS.values()}


@dataclass(frozen=True)
class _Override:
    provider: str  # glob, lower-case; "*" matches any (and no) provider
    model: str  # glob, lower-case
    table: PriceTable
    ident: str = ""  # the entry's id (rows record it: which price they used)
    start: int | None = None  # in force from this instant (ns since the epoch), inclusive; None: always
    end: int | None = None  # until this instant, exclusive; None: no end

    def in_force(self, at_ns: int) -> bool:
        return (self.start is None or self.start <= at_ns) and (self.end is None or at_ns < self.end)


class PriceOverrides:
    """User prices from a TOML file, one ``[[model]]`` table each::

        [[model]]
        provider = "openai"                  # optional glob; default "*"
        model = "ft:gpt-4o-mini:acme:*"      # glob, case-insensitive
        input_per_mtok = "0.30"              # USD per million tokens (string or number)
        output_per_mtok = "1.20"
        cache_read_per_mtok = "0.15"         # optional; without it cache reads bill as input
        cache_write_per_mtok = "0.375"       # optional
        reasoning_per_mtok = "1.20"          # optional; without it reasoning bills as output
        per_thousand_requests = "0"          # optional flat fee
        id = "acme-2026"                     # optional; default "#<n> <model>": rows record it
        from = 2026-11-01                    # optional: in force from this date (UTC) or instant …
        until = 2027-01-01                   # … until this one, exclusive (a temporary rate)

    A call is priced with the first matching entry in force at the call's own time, so a rate
    that starts or ends changes no call made before. Two entries for the same provider and
    model whose dates overlap are refused. Raises :class:`PriceOverridesError` naming every
    problem (unknown keys, negative or non-numeric prices, missing model, an end before its
    start, overlapping dates).
    """

    def __init__(self, entries: list[_Override], version: str, path: str | None = None):
        self._entries = entries
        self.version = version
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "PriceOverrides":
        """Read and validate an overrides file. Raises PriceOverridesError."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise PriceOverridesError(f"{p}: cannot read price overrides: {exc}") from None
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PriceOverridesError(f"{p}: not valid TOML: {exc}") from None
        version = "sha256:" + hashlib.sha256(raw).hexdigest()[:12]
        return cls.from_dict(doc, version=version, origin=str(p))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, version: str = "inline", origin: str = "overrides") -> "PriceOverrides":
        problems: list[str] = []
        unknown_top = set(doc) - {"model"}
        if unknown_top:
            problems.append(f"unknown top-level keys {sorted(unknown_top)} (expected [[model]])")
        models = doc.get("model", [])
        if not isinstance(models, list):
            problems.append("'model' must be an array of tables ([[model]])")
            models = []
        entries: list[_Override] = []
        for i, entry in enumerate(models, 1):
            where = f"[[model]] #{i}"
            if not isinstance(entry, dict):
                problems.append(f"{where}: must be a table")
                continue
            unknown = set(entry) - _OVERRIDE_KEYS
            if unknown:
                problems.append(f"{where}: unknown keys {sorted(unknown)}")
            model = entry.get("model")
            if not isinstance(model, str) or not model.strip():
                problems.append(f"{where}: 'model' must be a non-empty string")
                continue
            given_id = entry.get("id")
            where = f"{where} ({model}{', id ' + repr(given_id) if isinstance(given_id, str) else ''})"
            provider = entry.get("provider", "*")
            if not isinstance(provider, str) or not provider.strip():
                problems.append(f"{where}: 'provider' must be a non-empty string")
                continue
            prices: dict[str, Decimal | None] = {}
            for field, key in _OVERRIDE_PRICE_KEYS.items():
                prices[field] = _override_price(entry.get(key), f"{where}: {key}", problems)
            if prices["input"] is None or prices["output"] is None:
                missing = [k for k in ("input_per_mtok", "output_per_mtok") if entry.get(k) is None]
                if missing:  # (a price given but invalid was named above)
                    verb = "is" if len(missing) == 1 else "are"
                    problems.append(f"{where}: {' and '.join(repr(k) for k in missing)} {verb} required")
                continue
            table = PriceTable(
                prices["input"],
                prices["output"],
                prices["cache_read"],
                prices["cache_write"],
                prices["reasoning"],
                prices["per_kilo_requests"],
            )
            ident = entry.get("id", f"#{i} {model.strip()}")
            if not isinstance(ident, str) or not ident.strip() or len(ident) > 128:
                problems.append(f"{where}: 'id' must be a non-empty string of at most 128 characters")
                continue
            start = _instant(entry.get("from"), f"{where}: from", problems)
            end = _instant(entry.get("until"), f"{where}: until", problems)
            if start is not None and end is not None and end <= start:
                problems.append(f"{where}: 'until' must be after 'from'")
                continue
            entries.append(_Override(provider.strip().lower(), model.strip().lower(), table, ident.strip(), start, end))
        for a, b in ((a, b) for n, a in enumerate(entries) for b in entries[n + 1 :]):
            if (a.provider, a.model) == (b.provider, b.model) and _overlap(a, b):
                problems.append(
                    f"entries {a.ident!r} and {b.ident!r} price {a.provider}/{a.model} over overlapping dates"
                )
        if problems:
            raise PriceOverridesError(f"{origin}: invalid price overrides:\n  " + "\n  ".join(problems))
        return cls(entries, version, origin)

    def match(self, provider: str | None, model: str, at_ns: int | None = None) -> PriceTable | None:
        """The price table of the first entry matching (provider, model) in force at ``at_ns``
        (ns since the epoch; None: now), or None."""
        found = self.entry(self.candidates(provider, model), at_ns)
        return found[0] if found else None

    def candidates(self, provider: str | None, model: str) -> tuple[_Override, ...]:
        """The entries whose globs match (provider, model), in the file's order (cacheable)."""
        prov = (provider or "").lower()
        name = model.lower()
        return tuple(
            e
            for e in self._entries
            if (e.provider == "*" or fnmatch.fnmatchcase(prov, e.provider)) and fnmatch.fnmatchcase(name, e.model)
        )

    @staticmethod
    def entry(candidates: tuple[_Override, ...], at_ns: int | None) -> tuple[PriceTable, str] | None:
        """(table, entry id) of the first of ``candidates`` in force at ``at_ns`` (None: now)."""
        at = time.time_ns() if at_ns is None else at_ns
        for e in candidates:
            if e.in_force(at):
                return e.table, e.ident
        return None


def _override_price(value: Any, where: str, problems: list[str]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        problems.append(f"{where}: must be a number or a decimal string, got {type(value).__name__}")
        return None
    try:
        # str() first: a TOML float 0.3 must mean Decimal("0.3"), not its binary expansion.
        price = Decimal(str(value).strip())
    except InvalidOperation:
        problems.append(f"{where}: {value!r} is not a decimal number")
        return None
    if not price.is_finite() or price < 0:
        problems.append(f"{where}: {value!r} must be a finite, non-negative price")
        return None
    return price


def _instant(value: Any, where: str, problems: list[str]) -> int | None:
    """A TOML date or date-time, or an ISO string, as ns since the epoch (dates and naive
    times are UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{where}: {value[:40]!r} is not a date (2026-11-01) or date-time")
            return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    if not isinstance(value, datetime):
        problems.append(f"{where}: must be a date or a date-time")
        return None
    moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _overlap(a: _Override, b: _Override) -> bool:
    low = max(a.start if a.start is not None else -1, b.start if b.start is not None else -1)
    high = min(a.end if a.end is not None else 1 << 80, b.end if b.end is not None else 1 << 80)
    return low < high
