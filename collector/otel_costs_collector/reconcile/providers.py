"""The providers' cost reports, read page by page into billed lines (pure parsing plus one
blocking HTTP GET per page; no storage).

* OpenAI ``GET {base}/organization/costs`` (``Authorization: Bearer <admin key>``):
  ``start_time``/``end_time`` (Unix seconds, end exclusive), ``bucket_width=1d``,
  ``group_by=line_item`` and ``group_by=project_id``, ``limit`` buckets per page (≤ 180), ``page`` = the previous
  ``next_page``. ``amount.value`` is in dollars (a number or a decimal string).
* Anthropic ``GET {base}/organizations/cost_report`` (``x-api-key``, ``anthropic-version``):
  ``starting_at``/``ending_at`` (RFC 3339), ``bucket_width=1d``, ``group_by[]=description``,
  ``limit`` ≤ 31, ``page``. ``amount`` is a decimal string **in cents**.

Both bill by UTC day. Money is exact: JSON numbers are parsed as Decimal. Errors are
:class:`ProviderError` with the provider, the HTTP status (None for a network failure or a
body of the wrong shape) and ``retry_after`` seconds when the provider asked for a pause.
Keys never appear in an error or a log line.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Iterator

from otel_costs_collector.billing_api import BillingApiError, get_json

__all__ = [
    "BilledLine",
    "ProviderError",
    "PROVIDERS",
    "DEFAULT_BASES",
    "fetch_billed",
    "canonical_model",
]

DEFAULT_BASES = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com/v1"}
PROVIDERS = tuple(DEFAULT_BASES)
ANTHROPIC_VERSION = "2023-06-01"
#: Buckets (days) asked for per page: each API's maximum.
PAGE_DAYS = {"openai": 180, "anthropic": 31}
#: Pages read for one pull at most: a provider answering has_more forever cannot stall it.
MAX_PAGES = 200
_CENT = Decimal(100)


@dataclass(frozen=True)
class BilledLine:
    """One billed amount of one UTC day: ``line`` is the provider's line item or description
    ('' for the whole day when it gives none), ``model`` the model it names ('')."""

    provider: str
    day: date
    line: str
    model: str
    amount_usd: Decimal
    project: str = ""  # the OpenAI project billed ('' when the provider names none)


class ProviderError(Exception):
    """A cost report could not be read; the message names the provider and the status."""

    def __init__(self, provider: str, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(f"{provider} cost report: {message}")
        self.provider, self.status, self.retry_after = provider, status, retry_after


def fetch_billed(provider: str, key: str, base: str, start: date, end: date) -> tuple[list[BilledLine], list[date]]:
    """Every billed line of the UTC days ``start`` … ``end`` (exclusive), and the days the
    provider answered for (a day with nothing billed is answered with no lines). Blocking;
    raises ProviderError."""
    if provider not in DEFAULT_BASES:
        raise ValueError(f"unknown provider {provider!r}")
    lines: list[BilledLine] = []
    days: list[date] = []
    for bucket_day, results in _buckets(provider, key, base.rstrip("/"), start, end):
        days.append(bucket_day)
        for result in results:
            lines.append(_line(provider, bucket_day, result))
    return lines, days


def _buckets(provider: str, key: str, base: str, start: date, end: date) -> Iterator[tuple[date, list[Any]]]:
    page: str | None = None
    for _ in range(MAX_PAGES):
        doc = _get(provider, key, base, _params(provider, start, end, page))
        data = doc.get("data")
        if not isinstance(data, list):
            raise ProviderError(provider, None, "unexpected body: no data list")
        for bucket in data:
            if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
                raise ProviderError(provider, None, "unexpected body: a bucket without results")
            day = _bucket_day(provider, bucket)
            if start <= day < end:
                yield day, bucket["results"]
        page = doc.get("next_page")
        if not doc.get("has_more") or not page:
            return
        if not isinstance(page, str):
            raise ProviderError(provider, None, "unexpected body: next_page is not a string")
    raise ProviderError(provider, None, f"more than {MAX_PAGES} pages")


def _params(provider: str, start: date, end: date, page: str | None) -> list[tuple[str, str]]:
    if provider == "openai":
        params = [
            ("start_time", str(_unix(start))),
            ("end_time", str(_unix(end))),
            ("bucket_width", "1d"),
            ("group_by", "line_item"),
            ("group_by", "project_id"),
            ("limit", str(PAGE_DAYS[provider])),
        ]
    else:
        params = [
            ("starting_at", _rfc3339(start)),
            ("ending_at", _rfc3339(end)),
            ("bucket_width", "1d"),
            ("group_by[]", "description"),
            ("limit", str(PAGE_DAYS[provider])),
        ]
    return params + ([("page", page)] if page else [])


def _get(provider: str, key: str, base: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    path = "/organization/costs" if provider == "openai" else "/organizations/cost_report"
    if provider == "openai":
        headers = {"Authorization": f"Bearer {key}"}
    else:
        headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    try:
        return get_json(f"{base}{path}?{urllib.parse.urlencode(params)}", headers)
    except BillingApiError as exc:
        if exc.status is None:
            raise ProviderError(provider, None, str(exc)) from None
        raise ProviderError(provider, exc.status, _http_problem(exc.status, exc.detail), exc.retry_after) from None


def _http_problem(status: int, detail: str) -> str:
    meaning = {
        401: "the admin key was refused (401)",
        403: "the admin key may not read cost reports (403)",
        429: "rate limited (429)",
    }.get(status, f"HTTP {status}")
    return f"{meaning}{': ' + detail if detail else ''}"


def _bucket_day(provider: str, bucket: dict[str, Any]) -> date:
    try:
        if provider == "openai":
            return datetime.fromtimestamp(int(bucket["start_time"]), timezone.utc).date()
        text = str(bucket["starting_at"]).replace("Z", "+00:00")
        return datetime.fromisoformat(text).astimezone(timezone.utc).date()
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        raise ProviderError(provider, None, "unexpected body: a bucket without a start") from None


def _line(provider: str, day: date, result: Any) -> BilledLine:
    if not isinstance(result, dict):
        raise ProviderError(provider, None, "unexpected body: a result is not an object")
    if provider == "openai":
        amount = result.get("amount")
        if not isinstance(amount, dict):
            amount = {}
        value, currency = amount.get("value"), amount.get("currency")
        line = result.get("line_item") or ""
        # "gpt-4o-mini-2024-07-18, cached input" names a model; "web search tool calls" none
        model = line.rsplit(",", 1)[0].strip() if "," in line else ""
        usd = _decimal(provider, value)
    else:
        value, currency = result.get("amount"), result.get("currency")
        line = result.get("description") or ""
        model = result.get("model") or ""
        usd = _decimal(provider, value) / _CENT  # lowest currency units: cents
    if not isinstance(currency, str) or currency.lower() != "usd":
        raise ProviderError(provider, None, f"unexpected body: currency {currency!r}, not USD")
    if not isinstance(line, str) or not isinstance(model, str):
        raise ProviderError(provider, None, "unexpected body: a line item that is not text")
    project = result.get("project_id") or ""
    if not isinstance(project, str):
        raise ProviderError(provider, None, "unexpected body: a project_id that is not text")
    return BilledLine(provider, day, line[:512], canonical_model(provider, model[:256]), usd, project[:256])


def _decimal(provider: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ProviderError(provider, None, f"unexpected body: amount {value!r} is not a number")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ProviderError(provider, None, f"unexpected body: amount {value!r} is not a number") from None
    if not amount.is_finite() or abs(amount) >= Decimal(10) ** 15:
        raise ProviderError(provider, None, f"unexpected body: amount {value!r} is not a cost")
    return amount


@lru_cache(maxsize=4096)
def canonical_model(provider: str, model: str) -> str:
    """genai-prices' id for a model name (dated snapshots and aliases share one), so a bill's
    line items and the stored calls group alike; the name itself when it is not known."""
    if not model:
        return ""
    from genai_prices import data_snapshot

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return model
    return info.id


def _unix(day: date) -> int:
    return int(datetime.combine(day, time(), timezone.utc).timestamp())


def _rfc3339(day: date) -> str:
    return datetime.combine(day, time(), timezone.utc).isoformat().replace("+00:00", "Z")
