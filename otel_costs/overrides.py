"""Price overrides: fine-tuned, self-hosted and negotiated prices from a TOML file, which win
over genai-prices (the Pricer asks :meth:`PriceOverrides.match` first). Loading validates
everything and names every problem; matching is pure and thread-safe."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tomllib
from dataclasses import dataclass
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
_OVERRIDE_KEYS = {"provider", "model", *_OVERRIDE_PRICE_KEYS.values()}


@dataclass(frozen=True)
class _Override:
    provider: str  # glob, lower-case; "*" matches any (and no) provider
    model: str  # glob, lower-case
    table: PriceTable


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

    The first matching entry wins. Raises :class:`PriceOverridesError` naming every
    problem (unknown keys, negative or non-numeric prices, missing model).
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
            where = f"{where} ({model})"
            provider = entry.get("provider", "*")
            if not isinstance(provider, str) or not provider.strip():
                problems.append(f"{where}: 'provider' must be a non-empty string")
                continue
            prices: dict[str, Decimal | None] = {}
            for field, key in _OVERRIDE_PRICE_KEYS.items():
                prices[field] = _override_price(entry.get(key), f"{where}: {key}", problems)
            if prices["input"] is None or prices["output"] is None:
                problems.append(f"{where}: 'input_per_mtok' and 'output_per_mtok' are required")
                continue
            table = PriceTable(
                prices["input"],
                prices["output"],
                prices["cache_read"],
                prices["cache_write"],
                prices["reasoning"],
                prices["per_kilo_requests"],
            )
            entries.append(_Override(provider.strip().lower(), model.strip().lower(), table))
        if problems:
            raise PriceOverridesError(f"{origin}: invalid price overrides:\n  " + "\n  ".join(problems))
        return cls(entries, version, origin)

    def match(self, provider: str | None, model: str) -> PriceTable | None:
        prov = (provider or "").lower()
        name = model.lower()
        for entry in self._entries:
            if entry.provider != "*" and not fnmatch.fnmatchcase(prov, entry.provider):
                continue
            if fnmatch.fnmatchcase(name, entry.model):
                return entry.table
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
